package host

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/source/readers"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// Test processors of the shared decode: DecodeAhead needs the full decode (decoded ahead by
// the pipeline's workers), Mutate modifies the shared decoded value (what no processor may do).
func (l *lab) sharedRegistry(t testing.TB) *component.Registry {
	r := l.realRegistry(t)
	if err := r.AddProcessor(func(cfg map[string]any, _ component.Env) (component.Processor, error) {
		var c struct{}
		return decodeAhead{}, component.Decode(cfg, &c)
	}, "DecodeAhead"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddProcessor(func(cfg map[string]any, _ component.Env) (component.Processor, error) {
		var c struct{}
		return prepared{}, component.Decode(cfg, &c)
	}, "Prepared"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddProcessor(func(cfg map[string]any, _ component.Env) (component.Processor, error) {
		var c struct{}
		return mutator{}, component.Decode(cfg, &c)
	}, "Mutate"); err != nil {
		t.Fatal(err)
	}
	return r
}

type decodeAhead struct{ decodeProcessor }

func (decodeAhead) NeedsDecode() bool { return true }

// prepared is a full-decode processor that prepares ahead (component.Preparer): Prepare and
// Process derive the same key, and Process fails a ledger whose value Prepare did not compute.
type prepared struct{ decodeAhead }

func (prepared) Prepare(l *ledger.Ledger) {
	_, _ = ledger.Derive(l, "test.prepared", func(*xdr.LedgerCloseMeta) (string, error) { return "Prepare", nil })
}

func (prepared) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	by, err := ledger.Derive(l, "test.prepared", func(*xdr.LedgerCloseMeta) (string, error) { return "Process", nil })
	if err != nil {
		return nil, err
	}
	if by != "Prepare" {
		return nil, fmt.Errorf("ledger %d: the derived value was computed by %s, not ahead", l.Sequence(), by)
	}
	return in, nil
}

type mutator struct{}

func (mutator) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return nil, err
	}
	lcm.V1.LedgerHeader.Header.ScpValue.CloseTime++
	return in, nil
}

// tipDatastore is a fresh datastore (the two real ledgers) that pipelines follow from after
// its last ledger; the test appends ledgers when every pipeline waits at the tip.
func tipDatastore(t *testing.T) *fixture.Datastore {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func appendLedgers(t *testing.T, ds *fixture.Datastore, n int) {
	t.Helper()
	if _, err := fixture.Append(ds.Dir, n); err != nil {
		t.Fatal(err)
	}
}

func tipSource(ds *fixture.Datastore, share bool) loader.Component {
	c := fsSource(ds.Dir, ds.Last+1, 0)
	c.Config["retry_wait"] = "50ms"
	if !share {
		c.Config["share"] = false
	}
	return c
}

// onlyReader is the registry's one reader (it fails the test unless there is exactly one).
func onlyReader(t *testing.T, h *Host, subscribers int) readers.ReaderStats {
	t.Helper()
	var rs []readers.ReaderStats
	testutil.EventuallyWhy(t, waitLong, fmt.Sprintf("one reader with %d subscribers", subscribers), func() (bool, string) {
		rs = h.Readers().Readers()
		return len(rs) == 1 && rs[0].Subscribers == subscribers, fmt.Sprintf("readers %+v", rs)
	})
	return rs[0]
}

func consumedAll(t *testing.T, l *lab, key string, from, to uint32) {
	t.Helper()
	want := seqRange(from, to)
	testutil.EventuallyWhy(t, waitLong, key+" consumed every ledger", func() (bool, string) {
		got := l.Consumed(key)
		return slices.Equal(got, want), fmt.Sprintf("consumed %v, want %v", got, want)
	})
}

// Pipelines that follow one datastore read it through one shared reader: each ledger read and
// decoded once, every pipeline gets every ledger in order, and the API says so. Removing,
// editing or restarting one never restarts the reader for the others.
func TestPipelinesShareOneReader(t *testing.T) {
	ds := tipDatastore(t)
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.Registry = l.sharedRegistry(t) })
	from := ds.Last + 1
	names := []string{"sa", "sb", "sc"}
	for _, n := range names {
		apply(t, h, loader.Add, def(n, tipSource(ds, true), procs(comp_("DecodeAhead")), procs(comp_("Record"))))
	}
	first := onlyReader(t, h, 3)
	appendLedgers(t, ds, 6)
	for _, n := range names {
		consumedAll(t, l, n+"/Record", from, from+5)
	}
	r := onlyReader(t, h, 3)
	if r.ID != first.ID || r.Ledgers != 6 || r.Objects != 6 {
		t.Fatalf("reader %+v, want %s having read 6 ledgers and objects once", r, first.ID)
	}
	var performed, shared int64
	for _, n := range names {
		p, _ := h.Get(n)
		s := p.Snapshot()
		m := s.Metrics
		if m["pipeline.full_decodes"]+m["pipeline.decodes_shared"] != 6 {
			t.Errorf("%s: %v performed + %v shared decodes, want 6 in all", n, m["pipeline.full_decodes"], m["pipeline.decodes_shared"])
		}
		performed += int64(m["pipeline.full_decodes"])
		shared += int64(m["pipeline.decodes_shared"])
		if s.Reader == nil || s.Reader.Reader != r.ID || s.Reader.Mode != readers.ModeShared || s.Reader.Subscribers != 3 {
			t.Errorf("%s: snapshot reader %+v", n, s.Reader)
		}
		if s.HealthDetails["reader"] != r.ID || s.HealthDetails["reader_mode"] != readers.ModeShared {
			t.Errorf("%s: health details %v", n, s.HealthDetails)
		}
		if m["source.FSBufferedStorageSourceAdapter.reader_objects_read"] != 6 {
			t.Errorf("%s: heartbeat metrics %v", n, m)
		}
	}
	if performed != 6 || shared != 12 || r.Performed != 6 || r.Shared != 12 {
		t.Fatalf("decodes: pipelines %d performed, %d shared; reader %d, %d; want 6 and 12", performed, shared, r.Performed, r.Shared)
	}

	// Remove one, edit another: the third keeps the same reader, which reads on.
	apply(t, h, loader.Remove, def("sa", tipSource(ds, true), procs(comp_("DecodeAhead")), procs(comp_("Record"))))
	edited := def("sb", tipSource(ds, true), procs(comp_("DecodeAhead"), comp_("LatestLedger", "network", "pubnet")), procs(comp_("Record")))
	apply(t, h, loader.Update, edited)
	appendLedgers(t, ds, 3)
	consumedAll(t, l, "sc/Record", from, from+8)
	testutil.EventuallyWhy(t, waitLong, "sb got the new ledgers", func() (bool, string) {
		got := l.Consumed("sb/Record")
		return len(got) > 0 && got[len(got)-1] == from+8, fmt.Sprintf("sb consumed %v", got)
	})
	if rs := h.Readers().Readers(); !slices.ContainsFunc(rs, func(x readers.ReaderStats) bool { return x.ID == first.ID }) {
		t.Fatalf("the reader of the others was replaced: %+v", rs)
	}
}

// The decode-ahead workers run the processors' Prepare on each ledger before the processors
// get it: what Prepare derives is there when Process asks for it.
func TestDecodeAheadPrepares(t *testing.T) {
	ds := tipDatastore(t)
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.Registry = l.sharedRegistry(t) })
	apply(t, h, loader.Add, def("prep", tipSource(ds, false), procs(comp_("Prepared")), procs(comp_("Record"))))
	appendLedgers(t, ds, 4)
	consumedAll(t, l, "prep/Record", ds.Last+1, ds.Last+4)
}

// share: false reads on the source's own stream: no shared reader, mode own.
func TestShareFalseReadsAlone(t *testing.T) {
	ds := tipDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	apply(t, h, loader.Add, def("own", tipSource(ds, false), procs(latestLedger()), procs(comp_("Record"))))
	appendLedgers(t, ds, 2)
	consumedAll(t, l, "own/Record", ds.Last+1, ds.Last+2)
	p, _ := h.Get("own")
	s := p.Snapshot()
	if s.Reader == nil || s.Reader.Mode != readers.ModeOwn || s.Reader.ObjectsRead != 2 {
		t.Fatalf("reader %+v, want own with 2 objects read", s.Reader)
	}
	if rs := h.Readers().Readers(); len(rs) != 0 {
		t.Fatalf("share: false started shared readers: %+v", rs)
	}
}

// A processor that modifies the shared decoded value fails its pipeline with an error naming
// it, and the value is poisoned for the other pipelines holding the ledger. The check costs an
// encode per Process call, so it runs in -race builds (and with CDPD_LEDGER_POISON=1) only.
func TestModifiedDecodedValueIsCaught(t *testing.T) {
	if !ledger.Checking() {
		t.Skip("the shared decoded value is checked in -race builds (or with CDPD_LEDGER_POISON=1)")
	}
	ds := tipDatastore(t)
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.Registry = l.sharedRegistry(t) })
	bad := def("mutating", tipSource(ds, true), procs(comp_("Mutate")), procs(comp_("Record")))
	bad.Restart = loader.RestartNever
	apply(t, h, loader.Add, bad)
	onlyReader(t, h, 1)
	appendLedgers(t, ds, 1)
	testutil.EventuallyWhy(t, waitLong, "the mutating pipeline failed", func() (bool, string) {
		in, _ := h.Get("mutating")
		i := in.Info()
		return i.Status == StatusFailed, fmt.Sprintf("status %s, last error %q", i.Status, i.LastError)
	})
	p, _ := h.Get("mutating")
	if e := p.Info().LastError; !strings.Contains(e, "modified by processor Mutate of pipeline mutating") {
		t.Fatalf("last error %q", e)
	}
	if got := l.Consumed("mutating/Record"); len(got) != 0 {
		t.Fatalf("a ledger with a modified decoded value reached the consumer: %v", got)
	}
}
