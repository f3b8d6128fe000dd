package host

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// 20 pipelines in one host; one panics in a processor on every ledger and restarts with a
// growing backoff while the other 19 complete with exactly their ledgers.
func TestManyPipelinesOnePanicking(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	want := map[string][]uint32{}
	for i := range 19 {
		name := fmt.Sprintf("ok%02d", i)
		start := first + uint32(i%3)
		end := start + uint32(i%3)
		want[name] = seqRange(start, end)
		apply(t, h, loader.Add, def(name, fsSource(ds.Dir, start, end),
			procs(latestLedger(), comp_("Tag")), procs(comp_("Record"))))
	}
	apply(t, h, loader.Add, def("crashy", fsSource(ds.Dir, first, 0),
		procs(latestLedger(), comp_("Panic")), procs(comp_("Record"))))

	for name := range want {
		testutil.Eventually(t, waitLong, name+" completed", func() bool { return status(h, name) == StatusCompleted })
	}
	p, _ := h.Get("crashy")
	testutil.Eventually(t, waitLong, "6 restarts of crashy", func() bool { return p.Info().Restarts >= 6 })

	for name, seqs := range want {
		if got := l.Consumed(name + "/Record"); !slices.Equal(got, seqs) {
			t.Errorf("%s consumed %v, want %v", name, got, seqs)
		}
		q, _ := h.Get(name)
		in := q.Info()
		if in.Restarts != 0 || in.LastError != "" || in.CurrentLedger != seqs[len(seqs)-1] {
			t.Errorf("%s: info %+v", name, in)
		}
		l.mu.Lock()
		recs := l.records[name+"/Record"]
		l.mu.Unlock()
		if recs != 2*len(seqs) { // LatestLedger's record, passed on by Tag, plus Tag's own
			t.Errorf("%s: consumer got %d records for %d ledgers", name, recs, len(seqs))
		}
		if d := q.GetHealthDetails(); d["component_count"] != "4" || d["LatestLedger_status"] != StatusCompleted {
			t.Errorf("%s: health details %v", name, d)
		}
		if !q.IsHealthy() {
			t.Errorf("%s: completed pipeline not healthy: %s", name, q.HealthState())
		}
		m := q.GetMetrics()
		if m["processor.Tag.events_in"] != float64(len(seqs)) || m["consumer.Record.events_out"] != float64(len(seqs)) ||
			m["processor.Tag.ledgers_tagged"] != float64(len(seqs)) ||
			m["source.FSBufferedStorageSourceAdapter.processed_ledgers"] != float64(len(seqs)) ||
			m["processor.LatestLedger.processed_ledgers"] != float64(len(seqs)) || m["pipeline.full_decodes"] != 0 {
			t.Errorf("%s: metrics %v", name, m)
		}
	}
	if got := l.Consumed("crashy/Record"); len(got) != 0 {
		t.Errorf("crashy's consumer got %v", got)
	}
	in := p.Info()
	if !strings.Contains(in.LastError, "panic") || !strings.Contains(in.LastError, "processor Panic") {
		t.Errorf("crashy last error %q", in.LastError)
	}
	if hs := p.HealthState(); hs != HealthUnhealthy && hs != HealthStarting && hs != HealthHealthy {
		t.Errorf("crashy health %s", hs)
	}
	d := p.GetHealthDetails()
	if !strings.Contains(d["last_error"], "injected panic") || d["pipeline_id"] != "crashy" {
		t.Errorf("health details %v", d)
	}
	// The backoff doubles up to the cap, and the recorded restarts are at least that far apart.
	log := p.RestartLog()
	for i, ev := range log {
		want := 80 * time.Millisecond // 10ms doubling, capped at 80ms
		if i < 3 {
			want = 10 * time.Millisecond << i
		}
		if ev.Delay != want {
			t.Errorf("restart %d: delay %s, want %s", i+1, ev.Delay, want)
		}
		if i > 0 {
			if gap := ev.At.Sub(log[i-1].At); gap < ev.Delay {
				t.Errorf("restart %d came %s after the previous one, before its backoff %s", i+1, gap, ev.Delay)
			}
		}
	}
	if log[len(log)-1].Delay <= log[0].Delay {
		t.Errorf("backoff did not grow: %+v", log)
	}
	// Closing drains the 19 cleanly; only the panicking one can report a failure.
	if err := h.Close(context.Background()); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, "pipeline crashy") && !strings.Contains(line, "injected panic") {
				t.Errorf("close: %s", line)
			}
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	never := def("never", comp_("MemSource", "start_ledger", first, "fail_after", 2), nil, procs(comp_("Record")))
	never.Restart = loader.RestartNever
	rehash(never)
	apply(t, h, loader.Add, never)
	testutil.Eventually(t, waitLong, "never failed", func() bool { return status(h, "never") == StatusFailed })
	pn, _ := h.Get("never")
	if in := pn.Info(); in.Restarts != 0 || !strings.Contains(in.LastError, "injected source failure") || pn.HealthState() != HealthUnhealthy {
		t.Errorf("never: %+v %s", in, pn.HealthState())
	}

	onf := def("onf", comp_("MemSource", "start_ledger", first, "fail_after", 2), nil, procs(comp_("Record")))
	apply(t, h, loader.Add, onf)
	po, _ := h.Get("onf")
	testutil.Eventually(t, waitLong, "on-failure restarts", func() bool { return po.Info().Restarts >= 2 })
	// Without a checkpoint store each incarnation starts at start_ledger again.
	got := l.Consumed("onf/Record")
	if len(got) < 4 || got[0] != first || got[2] != first {
		t.Errorf("onf consumed %v", got)
	}
}

// Bounded + restart: always: completed is terminal. The host runs in a synctest bubble, whose
// clock moves only when every goroutine in it is blocked: after 10s on that clock (125 times
// BackoffMax) every restart timer that could have been set has fired, without the test
// waiting for real.
func TestCompletedIsTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab()
		h := newTestHost(t, l, nil)
		done := def("always", comp_("MemSource", "start_ledger", first, "end_ledger", first), nil, procs(comp_("Record")))
		done.Restart = loader.RestartAlways
		rehash(done)
		apply(t, h, loader.Add, done)
		time.Sleep(10 * time.Second)
		p, _ := h.Get("always")
		if in := p.Info(); in.Restarts != 0 || in.Status != StatusCompleted || len(p.RestartLog()) != 0 {
			t.Errorf("completed bounded pipeline restarted: %+v", in)
		}
		if got := l.Consumed("always/Record"); !slices.Equal(got, []uint32{first}) {
			t.Errorf("consumed %d ledgers (%v ...), want ledger %d once", len(got), got[:min(len(got), 4)], first)
		}
	})
}

// After an incarnation that ran at least StableAfter, the backoff starts over.
func TestBackoffResetsAfterStableRun(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.StableAfter = time.Nanosecond })
	apply(t, h, loader.Add, def("flaky", comp_("MemSource", "start_ledger", first, "fail_after", 1), nil, procs(comp_("Record"))))
	p, _ := h.Get("flaky")
	testutil.Eventually(t, waitLong, "restarts", func() bool { return p.Info().Restarts >= 4 })
	for _, ev := range p.RestartLog() {
		if ev.Delay != 10*time.Millisecond {
			t.Errorf("delay %s after a stable run, want the initial 10ms", ev.Delay)
		}
	}
}

// The restart backoff is the rule the package doc gives: BackoffInitial (default 1s) doubling
// per consecutive failure up to BackoffMax (default 1m), without jitter.
func TestRestartBackoff(t *testing.T) {
	h := New(Options{})
	for n, want := range []time.Duration{1, 1, 2, 4, 8, 16, 32, 60, 60, 60} {
		if n == 0 {
			continue
		}
		for range 3 { // the same every time: no jitter
			if got := h.restartBackoff.Delay(n); got != want*time.Second {
				t.Errorf("failure %d: %s, want %s", n, got, want*time.Second)
			}
		}
	}
	if got := h.restartBackoff.Delay(1000); got != time.Minute {
		t.Errorf("overflow: %s", got)
	}
	// A cap below the initial delay is raised to it.
	if got := New(Options{BackoffInitial: time.Second, BackoffMax: time.Millisecond}).restartBackoff.Delay(5); got != time.Second {
		t.Errorf("cap below the initial delay: %s", got)
	}
}
