package host

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// Pooled ledgers (ledger.CopyPooled in host/source, released by the run once every consumer is
// done): the buffers are recycled in a real pipeline, the output is the same as without the
// pool, and every path that drops a ledger releases it exactly once (a double release panics in
// ledger; under -race released buffers are poisoned, so a use after release shows up as
// decode errors or different records).

// captured is what Capture consumers kept: per "<pipeline>/<consumer>", the records. They are
// rendered after the pipeline ended, when every ledger buffer went back to the pool (poisoned
// under -race, reused by later ledgers): records that alias a ledger's bytes would differ.
type captured struct {
	mu   sync.Mutex
	recs map[string][]component.Record
}

type captureConsumer struct {
	c   *captured
	key string
}

func (c *captured) newConsumer(cfg map[string]any, env component.Env) (component.Consumer, error) {
	var none struct{}
	return &captureConsumer{c: c, key: env.Pipeline + "/" + env.Name}, component.Decode(cfg, &none)
}

// recordLine is a record's kind, natural key and JSON: what a sink would store.
func recordLine(r component.Record) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s %s", r.RecordKind(), r.NaturalKey(), b), nil
}

func (c *captureConsumer) Consume(_ context.Context, l *ledger.Ledger, recs []component.Record) error {
	if seq, err := l.View().LedgerSequence(); err != nil || seq != l.Sequence() { // readable while held
		return fmt.Errorf("ledger %d unreadable in Consume: %d, %v", l.Sequence(), seq, err)
	}
	c.c.mu.Lock()
	c.c.recs[c.key] = append(c.c.recs[c.key], recs...)
	c.c.mu.Unlock()
	return nil
}

func (c *captureConsumer) Flush(context.Context) error { return nil }
func (c *captureConsumer) Close(context.Context) error { return nil }

// outstanding is the number of pooled ledgers not released yet (process-wide).
func outstanding() int64 {
	s := ledger.ReadPoolStats()
	return s.Copies - s.Released
}

func waitReleased(t *testing.T, base int64) {
	t.Helper()
	testutil.Eventually(t, waitLong, "every pooled ledger released", func() bool { return outstanding() <= base })
}

// unpooled runs processor typ over the fixture ledgers lo..hi wrapped without a copy (the
// bytes stay put): the reference output.
func unpooled(t *testing.T, typ string, lo, hi uint32) []string {
	t.Helper()
	reg, err := builtin.Registry()
	if err != nil {
		t.Fatal(err)
	}
	pr, err := reg.NewProcessor(typ, map[string]any{"network": "pubnet"}, component.Env{
		Pipeline: "ref", Name: typ, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ds := sharedDatastore(t)
	var out []string
	for seq := lo; seq <= hi; seq++ {
		raw, err := ds.RawLedger(seq)
		if err != nil {
			t.Fatal(err)
		}
		l, err := ledger.New(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := pr.Process(context.Background(), l, nil)
		if err != nil {
			t.Fatalf("%s on ledger %d: %v", typ, seq, err)
		}
		for _, r := range recs {
			s, err := recordLine(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func TestPooledLedgersRecycledWithIdenticalOutput(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	c := &captured{recs: map[string][]component.Record{}}
	reg := l.realRegistry(t)
	if err := reg.AddConsumer(c.newConsumer, "Capture"); err != nil {
		t.Fatal(err)
	}
	defer ledger.SetPoisoning(ledger.SetPoisoning(true))
	h := newTestHost(t, l, func(o *Options) { o.Registry = reg; o.BufferSize = 2 })
	base, before := outstanding(), ledger.ReadPoolStats()

	lo, hi := first, first+fixtureCount-1
	types := []string{"LatestLedger", "ContractEvent", "TokenTransfer"}
	for _, typ := range types {
		apply(t, h, loader.Add, def("pool-"+typ, fsSource(ds.Dir, lo, hi),
			procs(comp_(typ, "network", "pubnet")), procs(comp_("Capture"), comp_("Capture"))))
	}
	for _, typ := range types {
		testutil.Eventually(t, waitLong, typ+" completed", func() bool { return status(h, "pool-"+typ) == StatusCompleted })
	}
	waitReleased(t, base)
	after := ledger.ReadPoolStats()
	copies, reused := after.Copies-before.Copies, after.Reused-before.Reused
	t.Logf("%d pooled copies, %d of them into a recycled buffer", copies, reused)
	// Three pipelines over one datastore: one copy per ledger when they share one reader
	// throughout, up to one per pipeline when one started behind the shared stream.
	if copies < fixtureCount || copies > 3*fixtureCount {
		t.Errorf("%d pooled copies for %d ledgers read by 3 pipelines", copies, fixtureCount)
	}
	if reused == 0 {
		t.Error("no buffer was recycled")
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, typ := range types {
		want := unpooled(t, typ, lo, hi)
		if len(want) == 0 {
			t.Fatalf("%s: no records in the fixture ledgers", typ)
		}
		for _, name := range []string{"Capture", "Capture_2"} {
			var got []string
			for _, r := range c.recs["pool-"+typ+"/"+name] {
				s, err := recordLine(r)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: %d records differ from the unpooled path's %d", typ, name, len(got), len(want))
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Errorf("first difference, record %d:\n got %.300s\nwant %.300s", i, got[i], want[i])
						break
					}
				}
			}
		}
		t.Logf("%s: %d records identical on both consumers", typ, len(want))
	}
}

// Every way a ledger can leave a pipeline releases it: a processor that panics (restarts), a
// removal that drains, a drain cut at its deadline with ledgers queued, no consumers at all.
func TestPooledLedgersReleasedOnEveryPath(t *testing.T) {
	ds := sharedDatastore(t)
	defer ledger.SetPoisoning(ledger.SetPoisoning(true))
	for _, tc := range []struct {
		name  string
		opts  func(*Options)
		p     *loader.Pipeline
		until func(*testing.T, *Host, *Pipeline)
	}{
		{
			name: "processor panics",
			p: def("pool-panic", fsSource(ds.Dir, first, 0), procs(latestLedger(), comp_("Panic")),
				procs(comp_("Record"), comp_("Record"))),
			until: func(t *testing.T, _ *Host, p *Pipeline) {
				testutil.Eventually(t, waitLong, "2 restarts", func() bool { return p.Info().Restarts >= 2 })
			},
		},
		{
			name: "removed while flowing",
			p: def("pool-drain", fsSource(ds.Dir, first, 0), procs(latestLedger(), comp_("Tag")),
				procs(comp_("Record", "delay", "5ms"), comp_("Record"), comp_("Record"))),
			until: func(t *testing.T, _ *Host, p *Pipeline) {
				testutil.Eventually(t, waitLong, "ledgers flowing", func() bool { return p.Info().CurrentLedger >= first+2 })
			},
		},
		{
			name: "drain cut at the deadline",
			opts: func(o *Options) { o.DrainTimeout = 200 * time.Millisecond; o.BufferSize = 3 },
			p: def("pool-cut", fsSource(ds.Dir, first, 0), procs(latestLedger()),
				procs(comp_("Record", "delay", "150ms"), comp_("Record"))),
			until: func(t *testing.T, _ *Host, p *Pipeline) {
				testutil.Eventually(t, waitLong, "a full buffer", func() bool { return p.GetMetrics()["source.FSBufferedStorageSourceAdapter.events_out"] >= 6 })
			},
		},
		{
			name: "no consumers",
			p:    def("pool-none", fsSource(ds.Dir, first, first+fixtureCount-1), procs(latestLedger()), nil),
			until: func(t *testing.T, h *Host, _ *Pipeline) {
				testutil.Eventually(t, waitLong, "completed", func() bool { return status(h, "pool-none") == StatusCompleted })
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab()
			h := newTestHost(t, l, tc.opts)
			base, before := outstanding(), ledger.ReadPoolStats()
			apply(t, h, loader.Add, tc.p)
			p, ok := h.Get(tc.p.Name)
			if !ok {
				t.Fatal("not added")
			}
			tc.until(t, h, p)
			_ = h.Apply(context.Background(), loader.Event{Kind: loader.Remove, Pipeline: tc.p})
			waitReleased(t, base)
			after := ledger.ReadPoolStats()
			if after.Copies == before.Copies {
				t.Fatal("no pooled ledger was made")
			}
			t.Logf("%d pooled ledgers made and released (%d recycled buffers); last error %q",
				after.Copies-before.Copies, after.Reused-before.Reused, p.Info().LastError)
		})
	}
}
