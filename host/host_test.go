package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/checkpoint"
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

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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
		waitFor(t, name+" completed", func() bool { return status(h, name) == StatusCompleted })
	}
	p, _ := h.Get("crashy")
	waitFor(t, "6 restarts of crashy", func() bool { return p.Info().Restarts >= 6 })

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
		want := backoffFor(10*time.Millisecond, 80*time.Millisecond, i+1)
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
	waitFor(t, "a running", func() bool { return pa.Info().CurrentLedger > first })
	runA, runB := pa.currentRun(), pb.currentRun()

	// A broken config keeps the old version running.
	broken := def("a", fsSource(ds.Dir, first, 0),
		procs(comp_("LatestLedger", "network", "pubnet", "no_such_key", true)), procs(comp_("Record")))
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
	waitFor(t, "old a back", func() bool { return pa.Info().Status == StatusRunning })
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
	waitFor(t, "a's new version progresses", func() bool { return pa.GetMetrics()["processor.Tag.events_in"] >= 3 })
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
	waitFor(t, "b read everything", func() bool { return pb.Info().CurrentLedger == ds.Last })
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
	waitFor(t, "ledgers in flight", func() bool { return emittedNow() >= 4 })
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
	waitFor(t, "re-added pipeline runs", func() bool { return pp2.Info().CurrentLedger > 0 })
	if pp2 == pp || pp2.Info().Generation != 1 {
		t.Error("re-added pipeline is not a new handle")
	}
}

// A consumer stuck forever in Consume: the drain is cut at the deadline and reported, and it
// does not hold up another pipeline's Apply.
func TestStuckConsumerDrainDeadline(t *testing.T) {
	l := newLab()
	// The deadline leaves the other pipeline time to run to completion meanwhile.
	h := newTestHost(t, l, func(o *Options) { o.DrainTimeout = 1500 * time.Millisecond })
	defer close(l.release)
	ds := sharedDatastore(t)
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
	waitFor(t, "stuck pipeline stopping", func() bool { return ps.version().stopped() })
	// Meanwhile another pipeline is added, runs to completion and is removed.
	other := def("other", fsSource(ds.Dir, first, first+2), procs(latestLedger()), procs(comp_("Record")))
	apply(t, h, loader.Add, other)
	waitFor(t, "other completed", func() bool { return status(h, "other") == StatusCompleted })
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
}

// kill -9 style stop, then a new host on the same state dir: resumes from the checkpoint with
// no gap; a consumer that keeps its own position gets no duplicate at all, one that does not
// gets duplicates only of ledgers after the checkpoint (which an idempotent sink absorbs).
func TestKillResumesFromCheckpoint(t *testing.T) {
	for _, positioned := range []bool{true, false} {
		t.Run(fmt.Sprintf("positioned=%v", positioned), func(t *testing.T) {
			ds := sharedDatastore(t)
			state := t.TempDir()
			file := filepath.Join(t.TempDir(), "ledgers.txt")
			end := ds.Last
			p := def("k", fsSource(ds.Dir, first, end),
				procs(latestLedger()), procs(comp_("Record", "file", file, "positioned", positioned, "delay", "15ms")))

			l := newLab()
			// The checkpoint lags the consumer's own record by up to a few ledgers.
			slowCP := func(o *Options) { o.StateDir, o.CheckpointInterval = state, 60*time.Millisecond }
			h1 := newTestHost(t, l, slowCP)
			apply(t, h1, loader.Add, p)
			p1, _ := h1.Get("k")
			waitFor(t, "a checkpoint behind the consumer", func() bool {
				cp := p1.Info().Checkpoint
				got, _ := readLedgerFile(file)
				return cp >= first+2 && len(got) >= int(cp-first)+3
			})
			h1.kill()
			cp, ok, err := checkpoint.New(state).Load("k")
			if err != nil || !ok {
				t.Fatalf("checkpoint after kill: %v %v", ok, err)
			}
			before, _ := readLedgerFile(file)
			if len(before) == 0 || slices.Max(before) >= end {
				t.Fatalf("kill came too late: %d ledgers", len(before))
			}

			h2 := newTestHost(t, l, slowCP)
			apply(t, h2, loader.Add, p)
			waitFor(t, "completed after restart", func() bool { return status(h2, "k") == StatusCompleted })
			all, _ := readLedgerFile(file)
			seen := map[uint32]int{}
			for _, s := range all {
				seen[s]++
			}
			for s := first; s <= end; s++ {
				if seen[s] == 0 {
					t.Errorf("ledger %d missing", s)
				}
				if seen[s] > 1 && (positioned || s <= cp.Ledger) {
					t.Errorf("ledger %d consumed %d times (checkpoint %d)", s, seen[s], cp.Ledger)
				}
			}
			if len(seen) != int(end-first+1) {
				t.Errorf("consumed ledgers outside the range: %v", seen)
			}
			p2, _ := h2.Get("k")
			if c := p2.Info().Checkpoint; c != end {
				t.Errorf("final checkpoint %d, want %d", c, end)
			}
			t.Logf("killed at checkpoint %d with %d ledgers recorded; duplicates after restart: %d",
				cp.Ledger, len(before), len(all)-len(seen))
		})
	}
}

func TestGathererLabelsAndRemoval(t *testing.T) {
	ds := sharedDatastore(t)
	l := newLab()
	h := newTestHost(t, l, nil)
	apply(t, h, loader.Add, def("g1", fsSource(ds.Dir, first, first+1), procs(latestLedger()), procs(comp_("Record"))))
	// g2 decodes fully, in two processors, twice each: once per ledger is what happens.
	apply(t, h, loader.Add, def("g2", fsSource(ds.Dir, first, first+1), procs(comp_("Decode"), comp_("Decode")), procs(comp_("Record"))))
	waitFor(t, "completed", func() bool { return status(h, "g1") == StatusCompleted && status(h, "g2") == StatusCompleted })
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
			waitFor(t, "a ledger", func() bool { return pp.Info().CurrentLedger != 0 })
		}
		apply(t, h, loader.Remove, p)
	}
	if n := len(h.Pipelines()); n != 0 {
		t.Fatalf("%d pipelines left", n)
	}
	goleak.VerifyNone(t)
}

func TestRestartPolicies(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	never := def("never", comp_("MemSource", "start_ledger", first, "fail_after", 2), nil, procs(comp_("Record")))
	never.Restart = loader.RestartNever
	rehash(never)
	apply(t, h, loader.Add, never)
	waitFor(t, "never failed", func() bool { return status(h, "never") == StatusFailed })
	pn, _ := h.Get("never")
	if in := pn.Info(); in.Restarts != 0 || !strings.Contains(in.LastError, "injected source failure") || pn.HealthState() != HealthUnhealthy {
		t.Errorf("never: %+v %s", in, pn.HealthState())
	}

	onf := def("onf", comp_("MemSource", "start_ledger", first, "fail_after", 2), nil, procs(comp_("Record")))
	apply(t, h, loader.Add, onf)
	po, _ := h.Get("onf")
	waitFor(t, "on-failure restarts", func() bool { return po.Info().Restarts >= 2 })
	// Without a checkpoint store each incarnation starts at start_ledger again.
	got := l.Consumed("onf/Record")
	if len(got) < 4 || got[0] != first || got[2] != first {
		t.Errorf("onf consumed %v", got)
	}

	// Bounded + always: completed is terminal.
	done := def("always", comp_("MemSource", "start_ledger", first, "end_ledger", first), nil, procs(comp_("Record")))
	done.Restart = loader.RestartAlways
	rehash(done)
	apply(t, h, loader.Add, done)
	waitFor(t, "always completed", func() bool { return status(h, "always") == StatusCompleted })
	time.Sleep(50 * time.Millisecond)
	if pa, _ := h.Get("always"); pa.Info().Restarts != 0 || pa.Info().Status != StatusCompleted {
		t.Errorf("completed bounded pipeline restarted: %+v", pa.Info())
	}
}

// After an incarnation that ran at least StableAfter, the backoff starts over.
func TestBackoffResetsAfterStableRun(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.StableAfter = time.Nanosecond })
	apply(t, h, loader.Add, def("flaky", comp_("MemSource", "start_ledger", first, "fail_after", 1), nil, procs(comp_("Record"))))
	p, _ := h.Get("flaky")
	waitFor(t, "restarts", func() bool { return p.Info().Restarts >= 4 })
	for _, ev := range p.RestartLog() {
		if ev.Delay != 10*time.Millisecond {
			t.Errorf("delay %s after a stable run, want the initial 10ms", ev.Delay)
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Start position: max(start_ledger, checkpoint+1), after the lowest consumer position.
func TestStartPosition(t *testing.T) {
	cases := []struct {
		name       string
		checkpoint uint32 // 0: none
		fileHas    uint32 // positioned consumer's last ledger; 0: none / not positioned
		positioned bool
		start      uint32
		want       uint32
		alone      bool // only the file consumer (else a second one without position)
	}{
		{"fresh", 0, 0, false, first, first, false},
		{"after checkpoint", first + 5, 0, false, first, first + 6, false},
		{"start_ledger later than checkpoint", first + 5, 0, false, first + 9, first + 9, false},
		{"positioned behind checkpoint", first + 5, first + 2, true, first, first + 3, false},
		{"positioned ahead of checkpoint, other consumer at checkpoint", first + 5, first + 8, true, first, first + 6, false},
		{"positioned alone, ahead of checkpoint", first + 5, first + 8, true, first, first + 9, true},
		{"positioned empty", first + 5, 0, true, first + 1, first + 1, false},
		{"positioned but start later", first + 5, first + 2, true, first + 4, first + 4, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state, dir := t.TempDir(), t.TempDir()
			if tc.checkpoint != 0 {
				if err := checkpoint.New(state).Save(checkpoint.Checkpoint{Pipeline: "s", Ledger: tc.checkpoint}); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(dir, "f")
			if tc.fileHas != 0 {
				if err := os.WriteFile(file, fmt.Appendf(nil, "%d\n", tc.fileHas), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cons := []any{"file", file}
			if tc.positioned {
				cons = append(cons, "positioned", true)
			}
			l := newLab()
			h := newTestHost(t, l, func(o *Options) { o.StateDir = state })
			cs := procs(comp_("Record", cons...), comp_("Record"))
			if tc.alone {
				cs = cs[:1]
			}
			p := def("s", comp_("MemSource", "start_ledger", tc.start, "end_ledger", first+12), nil, cs)
			r, err := h.build(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.start(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.closeAll()
			if r.from != tc.want {
				t.Errorf("from %d, want %d", r.from, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range []time.Duration{1, 1, 2, 4, 8, 16, 32, 60, 60, 60} {
		if n == 0 {
			continue
		}
		if got := backoffFor(time.Second, time.Minute, n); got != want*time.Second {
			t.Errorf("failure %d: %s, want %s", n, got, want*time.Second)
		}
	}
	if got := backoffFor(time.Second, time.Minute, 1000); got != time.Minute {
		t.Errorf("overflow: %s", got)
	}
}

func TestCloseDrainsAndCheckpoints(t *testing.T) {
	state := t.TempDir()
	l := newLab()
	h := New(Options{Registry: l.registry(t), StateDir: state, Logger: testLogger(t)})
	var names []string
	for i := range 3 {
		n := fmt.Sprintf("c%d", i)
		names = append(names, n)
		apply(t, h, loader.Add, def(n, comp_("MemSource", "start_ledger", first, "interval", "1ms"), nil, procs(comp_("Record"))))
	}
	for _, n := range names {
		p, _ := h.Get(n)
		waitFor(t, "progress", func() bool { return p.Info().CurrentLedger > first+2 })
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: def("late", comp_("MemSource"), nil, nil)}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}
	for _, n := range names {
		got := l.Consumed(n + "/Record")
		cp, ok, err := checkpoint.New(state).Load(n)
		if err != nil || !ok || cp.Ledger != got[len(got)-1] {
			t.Errorf("%s: checkpoint %+v %v %v, consumed up to %d", n, cp, ok, err, got[len(got)-1])
		}
	}
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
