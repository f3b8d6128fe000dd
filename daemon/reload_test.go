package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// gateConsumer accepts every ledger; its Close waits until gate is closed (nil: at once), so
// that removing its pipeline is a slow drain.
type gateConsumer struct{ gate <-chan struct{} }

func (gateConsumer) Consume(context.Context, *ledger.Ledger, []component.Record) error { return nil }
func (gateConsumer) Flush(context.Context) error                                       { return nil }
func (g gateConsumer) Close(context.Context) error {
	if g.gate != nil {
		<-g.gate
	}
	return nil
}

// testDaemon is a daemon without its actors: a host of the builtin components plus
// GateConsumer (closes when gate is closed) and NopConsumer, and the reload metrics.
func testDaemon(t *testing.T, gate <-chan struct{}) *daemon {
	t.Helper()
	reg, err := builtin.Registry()
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]<-chan struct{}{"GateConsumer": gate, "NopConsumer": nil} {
		err := reg.AddConsumer(func(map[string]any, component.Env) (component.Consumer, error) { return gateConsumer{g}, nil }, name)
		if err != nil {
			t.Fatal(err)
		}
	}
	w, err := loader.NewWatcher(loader.Options{Dir: t.TempDir()}) // never run: no config errors
	if err != nil {
		t.Fatal(err)
	}
	client, err := control.NewClient(control.Config{}) // no control plane
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		log:     slog.New(slog.DiscardHandler),
		host:    host.New(host.Options{Registry: reg, DrainTimeout: time.Minute}),
		client:  client,
		watcher: w,
		ready:   make(chan struct{}),
		ids:     map[string]string{},
		reload:  newReloadMetrics(promauto.With(prometheus.NewRegistry())),
	}
	t.Cleanup(func() {
		d.batches.Wait()
		if err := d.host.Close(context.Background()); err != nil {
			t.Errorf("closing the host: %v", err)
		}
	})
	return d
}

// testPipeline reads ledgers first..first+1 of ds into a consumer of type cons.
func testPipeline(name string, ds *fixture.Datastore, cons string, extra map[string]any) *loader.Pipeline {
	cfg := map[string]any{"path": ds.Dir, "network": "pubnet", "start_ledger": int(ds.First), "end_ledger": int(ds.First + 1)}
	for k, v := range extra {
		cfg[k] = v
	}
	return &loader.Pipeline{Name: name, File: name + ".yaml", Line: 1, Hash: strings.Repeat(name[:1], 12) + cons,
		Source:    loader.Component{Type: "FSBufferedStorageSourceAdapter", Config: cfg, Line: 3},
		Consumers: []loader.Component{{Type: cons, Config: map[string]any{}, Line: 6}}}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// A slow batch that finishes after a newer quick one does not take the reload gauges back to
// its configuration: batch 2 removes a pipeline whose drain waits, batch 3 adds another one;
// the gauges show batch 3 before and after batch 2 finished.
func TestReloadGaugesNeverGoBack(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	d := testDaemon(t, gate)
	ctx := context.Background()
	slow, quick := testPipeline("slow", ds, "GateConsumer", nil), testPipeline("quick", ds, "NopConsumer", nil)
	const hash1, hash2, hash3 = "111111111111", "222222222222", "333333333333"
	d.onBatch(ctx, loader.Batch{Initial: true, Events: []loader.Event{{Kind: loader.Add, Pipeline: slow}}, Hash: hash1})
	// Running: its consumer is built, so the removal waits in its Close (removed while it was
	// still starting, it would have had no consumer to close).
	testutil.Eventually(t, 30*time.Second, "slow running", func() bool {
		p, ok := d.host.Get("slow")
		return ok && p.Info().Status == host.StatusRunning
	})
	d.onBatch(ctx, loader.Batch{Events: []loader.Event{{Kind: loader.Remove, Pipeline: slow}}, Hash: hash2})
	d.onBatch(ctx, loader.Batch{Events: []loader.Event{{Kind: loader.Add, Pipeline: quick}}, Hash: hash3})
	testutil.Eventually(t, 30*time.Second, "batch 3 shown", func() bool { return gaugeValue(t, d.reload.hash) == hashGauge(hash3) })
	if _, ok := d.host.Get("slow"); !ok {
		t.Fatal("batch 2 finished before its drain was released: the test shows nothing")
	}
	close(gate)
	d.batches.Wait() // batch 2 finished too
	if _, ok := d.host.Get("slow"); ok {
		t.Fatal("batch 2 did not remove its pipeline")
	}
	if got := gaugeValue(t, d.reload.hash); got != hashGauge(hash3) {
		t.Errorf("cdpd_config_hash = %v after the older batch 2 finished, want batch 3's %v (batch 2's is %v)",
			got, hashGauge(hash3), hashGauge(hash2))
	}
	if got := gaugeValue(t, d.reload.ok); got != 1 {
		t.Errorf("cdpd_config_last_reload_successful = %v", got)
	}
}

// The host's own state says why a pipeline does not run: a first version that does not build
// is listed as failed with its error until a good version replaces it.
func TestAPIShowsRefusedFirstVersion(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := testDaemon(t, nil)
	ctx := context.Background()
	broken := testPipeline("p", ds, "NopConsumer", map[string]any{"network": "no-such-network"})
	d.onBatch(ctx, loader.Batch{Initial: true, Events: []loader.Event{{Kind: loader.Add, Pipeline: broken}}, Hash: "aaaaaaaaaaaa"})
	st := d.pipelineStatuses()
	if len(st) != 1 {
		t.Fatalf("statuses %+v, want the one refused pipeline", st)
	}
	s := st[0]
	if s.Name != "p" || s.Status != host.StatusFailed || s.Health != host.HealthUnhealthy || s.File != "p.yaml" ||
		!strings.Contains(s.ConfigError, "p.yaml:3: pipeline p: source") || s.LastError != s.ConfigError || s.Generation != 0 {
		t.Errorf("refused first version: %+v", s)
	}
	if got := gaugeValue(t, d.reload.ok); got != 0 {
		t.Errorf("cdpd_config_last_reload_successful = %v after a refused change", got)
	}

	good := testPipeline("p", ds, "NopConsumer", nil)
	d.onBatch(ctx, loader.Batch{Events: []loader.Event{{Kind: loader.Update, Pipeline: good}}, Hash: "bbbbbbbbbbbb"})
	d.batches.Wait()
	s = d.pipelineStatuses()[0]
	if s.ConfigError != "" || s.Generation != 1 || s.ConfigHash != good.Hash {
		t.Errorf("after a good version: %+v", s)
	}
	if got := gaugeValue(t, d.reload.ok); got != 1 {
		t.Errorf("cdpd_config_last_reload_successful = %v after a good change", got)
	}
}
