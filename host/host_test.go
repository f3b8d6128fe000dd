package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const first = uint32(58752000)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CDPD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestHost(t testing.TB, l *lab, mod func(*Options)) *Host {
	t.Helper()
	o := Options{
		Registry: l.realRegistry(t), Logger: testLogger(t), DrainTimeout: 5 * time.Second,
		BackoffInitial: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond,
		CheckpointInterval: 10 * time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	h := New(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Tests that expect a clean drain check Close themselves; here a pipeline failing
		// while draining (the panicking one) is expected.
		if err := h.Close(ctx); err != nil {
			t.Logf("closing the host: %v", err)
		}
	})
	return h
}

// waitLong bounds how long a condition may take to come true on a loaded machine.
const waitLong = 30 * time.Second

func apply(t testing.TB, h *Host, kind loader.EventKind, p *loader.Pipeline) {
	t.Helper()
	if err := h.Apply(context.Background(), loader.Event{Kind: kind, Pipeline: p}); err != nil {
		t.Fatalf("%s %s: %v", kind, p.Name, err)
	}
}

func status(h *Host, name string) string {
	p, ok := h.Get(name)
	if !ok {
		return "absent"
	}
	return p.Info().Status
}

func seqRange(a, b uint32) []uint32 {
	var out []uint32
	for s := a; s <= b; s++ {
		out = append(out, s)
	}
	return out
}

func TestUpdate(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	a := def("a", fsSource(ds.Dir, first, 0), procs(latestLedger()), procs(comp_("Record")))
	b := def("b", fsSource(ds.Dir, first, 0), procs(latestLedger()), procs(comp_("Record")))
	apply(t, h, loader.Add, a)
	apply(t, h, loader.Add, b)
	pa, _ := h.Get("a")
	pb, _ := h.Get("b")
	testutil.Eventually(t, waitLong, "a running", func() bool { return pa.Info().CurrentLedger > first })
	runA, runB := pa.currentRun(), pb.currentRun()

	// A broken config keeps the old version running.
	broken := def("a", fsSource(ds.Dir, first, 0),
		procs(comp_("LatestLedger", "network", "no-such-network")), procs(comp_("Record")))
	err := h.Apply(context.Background(), loader.Event{Kind: loader.Update, Pipeline: broken})
	var le *loader.Error
	if !errors.As(err, &le) || le.Pipeline != "a" || le.Line != broken.Processors[0].Line ||
		!strings.Contains(err.Error(), fmt.Sprintf("configs/a.yaml:%d: pipeline a: processor 1 (LatestLedger)", broken.Processors[0].Line)) {
		t.Fatalf("broken update: %v", err)
	}
	in := pa.Info()
	if in.Generation != 1 || in.ConfigHash != a.Hash || pa.currentRun() != runA || in.Status != StatusRunning {
		t.Fatalf("after a broken update: %+v", in)
	}
	if !strings.Contains(in.LastError, "update rejected") {
		t.Errorf("last error %q", in.LastError)
	}

	// A new version that cannot start: the old one comes back.
	failing := def("a", fsSource(ds.Dir, first, 0), procs(latestLedger()),
		procs(comp_("Record", "fail_start", true)))
	err = h.Apply(context.Background(), loader.Event{Kind: loader.Update, Pipeline: failing})
	if err == nil || !strings.Contains(err.Error(), "injected start failure") || !strings.Contains(err.Error(), "configs/a.yaml:5: pipeline a: starting consumer Record") {
		t.Fatalf("failing update: %v", err)
	}
	testutil.Eventually(t, waitLong, "old a back", func() bool { return pa.Info().Status == StatusRunning })
	if in := pa.Info(); in.Generation != 1 || in.ConfigHash != a.Hash {
		t.Fatalf("after a failed start: %+v", in)
	}

	// A good update: generation bumped, only that pipeline restarted, no ledger lost.
	good := def("a", fsSource(ds.Dir, first, 0), procs(latestLedger(), comp_("Tag")), procs(comp_("Record")))
	apply(t, h, loader.Update, good)
	in = pa.Info()
	if in.Generation != 2 || in.ConfigHash != good.Hash || pa.Definition() != good {
		t.Fatalf("after update: %+v", in)
	}
	testutil.Eventually(t, waitLong, "a's new version progresses", func() bool { return pa.GetMetrics()["processor.Tag.events_in"] >= 3 })
	if pb.currentRun() != runB || pb.Info().Generation != 1 {
		t.Errorf("b was restarted by a's update")
	}
	// Same content again: a no-op.
	runA2 := pa.currentRun()
	apply(t, h, loader.Update, good)
	if pa.currentRun() != runA2 || pa.Info().Generation != 2 {
		t.Errorf("an unchanged update restarted the pipeline")
	}
	// b saw every ledger once, in order, undisturbed.
	testutil.Eventually(t, waitLong, "b read everything", func() bool { return pb.Info().CurrentLedger == ds.Last })
	if got := l.Consumed("b/Record"); !slices.Equal(got, seqRange(first, ds.Last)) {
		t.Errorf("b consumed %v", got)
	}
}

// Remove drains: every ledger the source emitted reaches the consumer, then the metrics go.
func TestRemoveDrains(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.BufferSize = 3 })
	removed := make(chan string, 1)
	h.opts.OnRemoved = func(name string) { removed <- name }
	p := def("drain", fsSource(ds.Dir, first, 0), procs(latestLedger()),
		procs(comp_("Record", "delay", "20ms"), comp_("Record")))
	apply(t, h, loader.Add, p)
	pp, _ := h.Get("drain")
	emittedNow := func() int64 { return int64(pp.GetMetrics()["source.FSBufferedStorageSourceAdapter.events_out"]) }
	testutil.Eventually(t, waitLong, "ledgers in flight", func() bool { return emittedNow() >= 4 })
	consumedBefore := len(l.Consumed("drain/Record"))
	apply(t, h, loader.Remove, p)
	if name := <-removed; name != "drain" {
		t.Fatalf("OnRemoved(%q)", name)
	}
	emitted := emittedNow()
	if int(emitted) <= consumedBefore {
		t.Errorf("nothing was in flight: emitted %d, consumed %d before the removal", emitted, consumedBefore)
	}
	for _, c := range []string{"drain/Record", "drain/Record_2"} {
		if got := l.Consumed(c); !slices.Equal(got, seqRange(first, first+uint32(emitted)-1)) {
			t.Errorf("%s consumed %v, source emitted %d", c, got, emitted)
		}
	}
	t.Logf("removed with %d ledgers in flight (%d emitted)", int(emitted)-consumedBefore, emitted)
	if _, ok := h.Get("drain"); ok {
		t.Error("removed pipeline still listed")
	}
	if pp.Info().Status != StatusStopped {
		t.Errorf("status %s", pp.Info().Status)
	}
	// Re-adding the name runs it again.
	apply(t, h, loader.Add, p)
	pp2, _ := h.Get("drain")
	testutil.Eventually(t, waitLong, "re-added pipeline runs", func() bool { return pp2.Info().CurrentLedger > 0 })
	if pp2 == pp || pp2.Info().Generation != 1 {
		t.Error("re-added pipeline is not a new handle")
	}
}

// A consumer stuck forever in Consume: the drain is cut at the deadline and reported, and it
// does not hold up another pipeline's Apply. The host runs in a synctest bubble, whose clock
// moves only when every goroutine in it is blocked: the drain deadline cannot pass while the
// other pipeline still works, however slow the machine.
func TestStuckConsumerDrainDeadline(t *testing.T) {
	ds := sharedDatastore(t)
	synctest.Test(t, func(t *testing.T) {
		l := newLab()
		h := newTestHost(t, l, func(o *Options) { o.DrainTimeout = 1500 * time.Millisecond })
		defer close(l.release)
		stuck := def("stuck", fsSource(ds.Dir, first, 0), nil, procs(comp_("Record", "block", true)))
		apply(t, h, loader.Add, stuck)
		if key := <-l.blocked; key != "stuck/Record" {
			t.Fatal(key)
		}
		ps, _ := h.Get("stuck")
		removeErr := make(chan error, 1)
		go func() {
			removeErr <- h.Apply(context.Background(), loader.Event{Kind: loader.Remove, Pipeline: stuck})
		}()
		testutil.Eventually(t, waitLong, "stuck pipeline stopping", func() bool { return ps.version().stopped() })
		// Meanwhile another pipeline is added, runs to completion and is removed.
		other := def("other", fsSource(ds.Dir, first, first+2), procs(latestLedger()), procs(comp_("Record")))
		apply(t, h, loader.Add, other)
		testutil.Eventually(t, waitLong, "other completed", func() bool { return status(h, "other") == StatusCompleted })
		apply(t, h, loader.Remove, other)
		select {
		case err := <-removeErr:
			t.Fatalf("the stuck removal returned before other's changes: %v", err)
		default:
		}
		if got := l.Consumed("other/Record"); !slices.Equal(got, seqRange(first, first+2)) {
			t.Errorf("other consumed %v", got)
		}
		err := <-removeErr
		if err == nil || !strings.Contains(err.Error(), "drain deadline exceeded") || !strings.Contains(err.Error(), "consumer Record busy") {
			t.Fatalf("stuck removal: %v", err)
		}
		if !strings.Contains(ps.Info().LastError, "drain deadline exceeded after 1.5s") {
			t.Errorf("last error %q", ps.Info().LastError)
		}
		if _, ok := h.Get("stuck"); ok {
			t.Error("stuck pipeline still listed")
		}
	})
}

func TestGathererLabelsAndRemoval(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	apply(t, h, loader.Add, def("g1", fsSource(ds.Dir, first, first+1), procs(latestLedger()), procs(comp_("Record"))))
	// g2 decodes fully, in two processors, twice each: once per ledger is what happens.
	apply(t, h, loader.Add, def("g2", fsSource(ds.Dir, first, first+1), procs(comp_("Decode"), comp_("Decode")), procs(comp_("Record"))))
	testutil.Eventually(t, waitLong, "completed", func() bool { return status(h, "g1") == StatusCompleted && status(h, "g2") == StatusCompleted })
	series := func() map[string]map[string]float64 { // metric name -> pipeline -> value (unlabelled sum)
		mfs, err := h.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				pl := ""
				for _, lp := range m.Label {
					if lp.GetName() == "pipeline" {
						pl = lp.GetValue()
					}
				}
				if pl == "" {
					t.Errorf("%s series without pipeline label", mf.GetName())
				}
				if out[mf.GetName()] == nil {
					out[mf.GetName()] = map[string]float64{}
				}
				out[mf.GetName()][pl] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return out
	}
	s := series()
	for _, name := range []string{"cdp_pipeline_ledgers_processed_total", "cdp_pipeline_current_ledger",
		"cdp_pipeline_component_events_in_total", "cdp_pipeline_component_events_out_total",
		"cdp_pipeline_component_errors_total", "cdp_pipeline_component_latency_seconds",
		"cdp_pipeline_restarts_total", "cdp_pipeline_full_decodes_total"} {
		if _, ok := s[name]["g1"]; !ok {
			t.Errorf("%s of g1 missing", name)
		}
		if _, ok := s[name]["g2"]; !ok {
			t.Errorf("%s of g2 missing", name)
		}
	}
	if v := s["cdp_pipeline_ledgers_processed_total"]["g1"]; v != 2 {
		t.Errorf("g1 processed %v", v)
	}
	if v := s["cdp_pipeline_current_ledger"]["g2"]; v != float64(first+1) {
		t.Errorf("g2 current %v", v)
	}
	if d1, d2 := s["cdp_pipeline_full_decodes_total"]["g1"], s["cdp_pipeline_full_decodes_total"]["g2"]; d1 != 0 || d2 != 2 {
		t.Errorf("full decodes: g1 %v (view only), g2 %v (2 ledgers)", d1, d2)
	}
	if _, ok := s["cdp_pipeline_source_lag_seconds"]["g1"]; !ok { // the source's own metric, same registry
		t.Errorf("source metrics not gathered: %v", sortedNames(s))
	}
	apply(t, h, loader.Remove, def("g1", comp_("MemSource"), nil, nil))
	for name, byPipe := range series() {
		if _, ok := byPipe["g1"]; ok {
			t.Errorf("%s of removed g1 still gathered", name)
		}
		if _, ok := byPipe["g2"]; !ok && strings.HasPrefix(name, "cdp_pipeline_") {
			t.Errorf("%s of g2 gone", name)
		}
	}
}

// 200 add/remove cycles of one name leave no goroutine behind.
func TestAddRemoveCyclesLeakNothing(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	for i := range 200 {
		p := def("cycle", fsSource(ds.Dir, first+uint32(i%fixtureCount), 0), procs(latestLedger()), procs(comp_("Record")))
		apply(t, h, loader.Add, p)
		if i%10 == 9 { // mostly removed while starting up, sometimes after data flowed
			pp, _ := h.Get("cycle")
			testutil.Eventually(t, waitLong, "a ledger", func() bool { return pp.Info().CurrentLedger != 0 })
		}
		apply(t, h, loader.Remove, p)
	}
	if n := len(h.Pipelines()); n != 0 {
		t.Fatalf("%d pipelines left", n)
	}
	goleak.VerifyNone(t)
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Many concurrent changes of different names do not serialize on one lock.
func TestConcurrentApply(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := def(fmt.Sprintf("p%d", i), comp_("MemSource", "start_ledger", first, "end_ledger", first+1), nil, procs(comp_("Record")))
			for range 5 {
				if err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: p}); err != nil {
					t.Error(err)
				}
				if err := h.Apply(context.Background(), loader.Event{Kind: loader.Remove, Pipeline: p}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(h.Pipelines()); n != 0 {
		t.Errorf("%d left", n)
	}
}
