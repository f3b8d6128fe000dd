package host

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

func TestRateOverTheLastMinute(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	var rs rateSamples
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Younger than a sample period: the rate since the incarnation started.
	if r := rs.rate(at(2), 20, t0); r != 10 {
		t.Errorf("rate after 2 s and 20 ledgers = %v, want 10", r)
	}
	// 100 ledgers per second for two minutes, then 10 per second: a minute later the rate is
	// the recent one, not the average since the start.
	n := int64(20)
	for s := 7; s <= 120; s += 5 {
		n += 500
		rs.rate(at(s), n, t0)
	}
	for s := 125; s <= 190; s += 5 {
		n += 50
		rs.rate(at(s), n, t0)
	}
	if r := rs.rate(at(195), n+50, t0); math.Abs(r-10) > 0.5 {
		t.Errorf("rate a minute into the slow phase = %v, want about 10 (the average since the start is %v)", r, float64(n)/195)
	}
	if len(rs.samples) > int(rateWindow/rateSampleEvery)+2 {
		t.Errorf("%d samples kept, want about a minute's worth", len(rs.samples))
	}
	// No progress: no rate.
	var idle rateSamples
	if r := idle.rate(at(30), 0, t0); r != 0 {
		t.Errorf("rate without ledgers = %v", r)
	}
}

// A bounded pipeline reports its progress (done/total, rate, ETA) in its snapshot and flat
// metrics; an unbounded one reports none; a completed one is at 100% with no time left.
func TestBoundedPipelineProgress(t *testing.T) {
	l := newLab()
	t0 := time.Unix(1_800_000_000, 0)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	h := newTestHost(t, l, func(o *Options) { o.Now = func() time.Time { return time.Unix(0, clock.Load()) } })

	// 10 ledgers, the source fails after 4 of them and is not restarted: frozen at 4/10.
	stuck := def("stuck", comp_("MemSource", "start_ledger", first, "end_ledger", first+9, "fail_after", 4), nil, procs(comp_("Record")))
	stuck.Restart = loader.RestartNever
	apply(t, h, loader.Add, stuck)
	done := def("done", comp_("MemSource", "start_ledger", first, "end_ledger", first+2), nil, procs(comp_("Record")))
	apply(t, h, loader.Add, done)
	apply(t, h, loader.Add, def("follow", comp_("MemSource", "start_ledger", first, "interval", "1h"), nil, procs(comp_("Record"))))
	ps, _ := h.Get("stuck")
	pd, _ := h.Get("done")
	pf, _ := h.Get("follow")
	testutil.Eventually(t, waitLong, "stuck failed, done completed", func() bool {
		return ps.Info().Status == StatusFailed && pd.Info().Status == StatusCompleted && pf.Info().CurrentLedger == first
	})
	clock.Store(t0.Add(2 * time.Second).UnixNano())

	pr := ps.Progress()
	if pr == nil || pr.DoneLedgers != 4 || pr.TotalLedgers != 10 || pr.Percent != 40 {
		t.Fatalf("stuck progress %+v, want 4 of 10", pr)
	}
	if pr.Rate != 2 || pr.ETASeconds != 3 {
		t.Errorf("stuck rate %v, ETA %v: want 2 ledgers/s (4 in 2 s) and 3 s for the 6 left", pr.Rate, pr.ETASeconds)
	}
	m := ps.GetMetrics()
	if m[metricProgressDone] != 4 || m[metricProgressTotal] != 10 || m[metricProgressETA] != 3 || m[metricProgressRate] != 2 {
		t.Errorf("stuck metrics %v", m)
	}
	if s := ps.Snapshot(); s.Progress == nil || s.Progress.DoneLedgers != 4 {
		t.Errorf("snapshot progress %+v", s.Progress)
	}

	if pr := pd.Progress(); pr == nil || pr.DoneLedgers != 3 || pr.TotalLedgers != 3 || pr.Percent != 100 || pr.ETASeconds != 0 {
		t.Errorf("completed progress %+v", pr)
	}
	if pr := pf.Progress(); pr != nil {
		t.Errorf("unbounded pipeline has progress %+v", pr)
	}
	if _, ok := pf.GetMetrics()[metricProgressTotal]; ok {
		t.Error("unbounded pipeline heartbeats progress metrics")
	}
}
