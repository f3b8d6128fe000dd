package source

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The SDK's RPCLedgerBackend never closes its jrpc2 client (rpcclient.Client has Close,
		// the backend's Close does not call it): one parked goroutine per RPC stream run.
		goleak.IgnoreAnyFunction("github.com/creachadair/jrpc2.(*Client).accept"),
		// Started by the opencensus package's init (a GCS client dependency), process-wide.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testEnv is a pipeline Env with a fresh registry and a decode counter.
func testEnv(t testing.TB) (component.Env, *prometheus.Registry, *atomic.Int64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var decodes ledger.Decodes
	return component.Env{
		Pipeline: "test", Name: "source", Logger: slog.New(slog.DiscardHandler),
		Metrics: reg, Now: time.Now, Decodes: &decodes,
	}, reg, &decodes.Performed
}

// sourceCtors builds each source of this package from a config map (decoded strictly), under
// the type names host/builtin's table gives them.
var sourceCtors = map[string]func(map[string]any, component.Env) (component.Source, error){
	"BufferedStorageSourceAdapter":    construct(NewBufferedStorage),
	"FSBufferedStorageSourceAdapter":  construct(NewFS),
	"GCSBufferedStorageSourceAdapter": construct(NewGCS),
	"S3BufferedStorageSourceAdapter":  construct(NewS3),
	"RPCSourceAdapter":                construct(NewRPC),
	"SorobanSourceAdapter":            construct(NewSoroban),
}

func construct[C any](ctor func(*C, component.Env) (component.Source, error)) func(map[string]any, component.Env) (component.Source, error) {
	return func(cfg map[string]any, env component.Env) (component.Source, error) {
		return component.Construct(ctor, cfg, env)
	}
}

func newSource(t *testing.T, typeName string, cfg map[string]any, env component.Env) component.Source {
	t.Helper()
	s, err := sourceCtors[typeName](cfg, env)
	if err != nil {
		t.Fatalf("constructing %s: %v", typeName, err)
	}
	return s
}

// runBounded runs s from `from` to its end and returns what it emitted.
func runBounded(t *testing.T, s component.Source, from uint32) []*ledger.Ledger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, ok := s.(component.Starter); ok {
		if err := st.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	var got []*ledger.Ledger
	if err := s.Run(ctx, from, func(l *ledger.Ledger) error {
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return got
}

// checkLedgers asserts got holds exactly the ledgers want, with the bytes the fixture holds.
func checkLedgers(t *testing.T, ds *fixture.Datastore, got []*ledger.Ledger, want []uint32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("emitted %d ledgers %v, want %d %v", len(got), seqs(got), len(want), want)
	}
	real, err := fixture.RealLedgers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		if l.Sequence() != want[i] {
			t.Fatalf("ledger %d is %d, want %d (all: %v)", i, l.Sequence(), want[i], seqs(got))
		}
		raw, err := ds.RawLedger(l.Sequence())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.Raw(), raw) {
			t.Fatalf("ledger %d: bytes differ from the fixture's", l.Sequence())
		}
		if r, ok := real[l.Sequence()]; ok && !bytes.Equal(l.Raw(), r) {
			t.Fatalf("real ledger %d: bytes differ from the SDK's", l.Sequence())
		}
	}
}

func seqs(ls []*ledger.Ledger) []uint32 {
	out := make([]uint32, len(ls))
	for i, l := range ls {
		out[i] = l.Sequence()
	}
	return out
}

func seqRange(from, to uint32) []uint32 {
	var out []uint32
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// gauge returns the value of the gauge (or summary count) name in reg, and whether it exists.
func gauge(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetType() {
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_SUMMARY:
			return float64(m.GetSummary().GetSampleCount()), true
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}
