package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func buildFixture(t *testing.T, opts fixture.Options) *fixture.Datastore {
	t.Helper()
	ds, err := fixture.Build(filepath.Join(t.TempDir(), "ds"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestFSBoundedRanges(t *testing.T) {
	ds1 := buildFixture(t, fixture.Options{Count: 6})
	ds4 := buildFixture(t, fixture.Options{Count: 8, LedgersPerFile: 4, FilesPerPartition: 2})
	cases := []struct {
		name     string
		typeName string
		ds       *fixture.Datastore
		extra    map[string]any
		start    uint32
		end      uint32
		from     uint32
		want     []uint32
	}{
		{"real ledger 53312000", "FSBufferedStorageSourceAdapter", ds1, nil, 53312000, 53312000, 0, []uint32{53312000}},
		{"6 ledgers from 58752000", "FSBufferedStorageSourceAdapter", ds1, nil, 58752000, 58752005, 0, seqRange(58752000, 58752005)},
		{"resume inside the range", "FSBufferedStorageSourceAdapter", ds1, nil, 58752000, 58752005, 58752004, seqRange(58752004, 58752005)},
		{"resume past the end", "FSBufferedStorageSourceAdapter", ds1, nil, 58752000, 58752005, 58752006, nil},
		{"4 per file, mid-file start and end", "BufferedStorageSourceAdapter", ds4,
			map[string]any{"storage_type": "FS", "buffer_size": 2, "num_workers": 1}, 58752002, 58752005, 0, seqRange(58752002, 58752005)},
		{"schema given and matching the manifest", "FSBufferedStorageSourceAdapter", ds4,
			map[string]any{"ledgers_per_file": 4, "files_per_partition": 2, "retry_wait": 1, "retry_limit": 0}, 58752000, 58752003, 0,
			seqRange(58752000, 58752003)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, reg, decodes := testEnv(t)
			cfg := map[string]any{"path": tc.ds.Dir, "network": "pubnet", "start_ledger": tc.start, "end_ledger": tc.end}
			for k, v := range tc.extra {
				cfg[k] = v
			}
			s := newSource(t, tc.typeName, cfg, env)
			if st, en := s.Range(); st != tc.start || en != tc.end {
				t.Fatalf("Range = %d, %d", st, en)
			}
			got := runBounded(t, s, tc.from)
			checkLedgers(t, tc.ds, got, tc.want)
			if n := decodes.Load(); n != 0 {
				t.Errorf("the source decoded %d ledgers; it must only copy bytes", n)
			}
			stats := s.(component.StatsReporter).Stats()
			if stats["processed_ledgers"] != float64(len(tc.want)) {
				t.Errorf("processed_ledgers = %v, want %d", stats["processed_ledgers"], len(tc.want))
			}
			if len(tc.want) == 0 {
				return
			}
			var size int
			for _, l := range got {
				size += l.Size()
			}
			if stats["last_ledger"] != float64(tc.want[len(tc.want)-1]) || stats["bytes"] != float64(size) ||
				stats["last_processed_time"] < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("stats %v (want last_ledger %d, bytes %d)", stats, tc.want[len(tc.want)-1], size)
			}
			// The SDK's stream metrics and ours are on the pipeline's registry.
			if n, ok := gauge(t, reg, "cdp_pipeline_source_ingest_ledger_fetch_duration_seconds"); !ok || n != float64(len(tc.want)) {
				t.Errorf("cdp_pipeline_source_ingest_ledger_fetch_duration_seconds count = %v (present %v), want %d", n, ok, len(tc.want))
			}
			lastClose := got[len(got)-1].CloseTime()
			if lag, ok := gauge(t, reg, "cdp_pipeline_source_lag_seconds"); !ok || lag < time.Since(lastClose).Seconds()-5 {
				t.Errorf("cdp_pipeline_source_lag_seconds = %v (present %v), want about %v", lag, ok, time.Since(lastClose).Seconds())
			}
		})
	}
}

func TestFSStartErrors(t *testing.T) {
	ds := buildFixture(t, fixture.Options{LedgersPerFile: 2})
	cases := map[string]struct {
		cfg  map[string]any
		want string
	}{
		"other network":             {map[string]any{"path": ds.Dir, "network": "testnet", "start_ledger": 58752000}, "network"},
		"schema not the manifest's": {map[string]any{"path": ds.Dir, "network": "pubnet", "start_ledger": 58752000, "ledgers_per_file": 64}, "manifest"},
		"missing directory":         {map[string]any{"path": filepath.Join(ds.Dir, "nope"), "network": "pubnet", "start_ledger": 2}, "no such file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			env, _, _ := testEnv(t)
			s := newSource(t, "FSBufferedStorageSourceAdapter", c.cfg, env)
			err := s.(component.Starter).Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v, want an error about %q", err, c.want)
			}
			// Run starts too, and fails the same way.
			err = s.Run(context.Background(), 0, func(*ledger.Ledger) error { return nil })
			if err == nil {
				t.Fatal("Run succeeded")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFSMissingLedgerInBoundedRangeFails(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 2})
	env, _, _ := testEnv(t)
	s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
		"start_ledger": 58752000, "end_ledger": 58752005, "retry_wait": "10ms"}, env)
	defer s.Close()
	var got []uint32
	err := s.Run(context.Background(), 0, func(l *ledger.Ledger) error { got = append(got, l.Sequence()); return nil })
	if err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("Run: %v, want an error about a missing ledger file", err)
	}
	if len(got) > 2 {
		t.Fatalf("emitted %v across the gap", got)
	}
}

func TestEmitErrorStopsRun(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 5})
	env, _, _ := testEnv(t)
	s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
		"start_ledger": 58752000}, env)
	defer s.Close()
	stop := errors.New("consumer full")
	n := 0
	err := s.Run(context.Background(), 0, func(*ledger.Ledger) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Run = %v after %d ledgers, want the emit error after 3", err, n)
	}
}

// follower runs an unbounded source in the background and collects what it emits.
type follower struct {
	mu   sync.Mutex
	got  []*ledger.Ledger
	done chan error
	stop context.CancelFunc
}

func follow(t *testing.T, s component.Source, from uint32) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{done: make(chan error, 1), stop: cancel}
	go func() {
		f.done <- s.Run(ctx, from, func(l *ledger.Ledger) error {
			f.mu.Lock()
			f.got = append(f.got, l)
			f.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func (f *follower) ledgers() []*ledger.Ledger {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*ledger.Ledger(nil), f.got...)
}

// waitFor waits until the follower emitted n ledgers, failing if Run ends or time runs out.
func (f *follower) waitFor(t *testing.T, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testutil.EventuallyWhy(t, within, fmt.Sprintf("%d ledgers", n), func() (bool, string) {
		select {
		case err := <-f.done:
			f.done <- err
			t.Fatalf("Run ended with %v after %d of %d ledgers", err, len(f.ledgers()), n)
		default:
		}
		got := f.ledgers()
		return len(got) >= n, fmt.Sprintf("%d ledgers: %v", len(got), seqs(got))
	})
	return time.Since(start)
}

// TestFSLiveFollow: an unbounded source on a datastore an exporter appends to emits each new
// ledger in order, with the default retry_wait (1 s) making it visible within ~1 s, and exports
// its lag and its distance to the datastore tip.
func TestFSLiveFollow(t *testing.T) {
	for _, k := range []uint32{1, 2} {
		ds := buildFixture(t, fixture.Options{Count: 2, LedgersPerFile: k})
		env, reg, _ := testEnv(t)
		s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
			"start_ledger": 58752000}, env)
		s.(*storageSource).tipInterval = 50 * time.Millisecond
		if err := s.(component.Starter).Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		f := follow(t, s, 0)
		f.waitFor(t, 2, 10*time.Second)
		for i := 0; i < 2; i++ {
			var err error
			ds, err = fixture.Append(ds.Dir, int(k))
			if err != nil {
				t.Fatal(err)
			}
			took := f.waitFor(t, int(ds.Last-58752000+1), 10*time.Second)
			t.Logf("ledgers per file %d: ledger %d emitted %v after its file appeared", k, ds.Last, took)
		}
		testutil.EventuallyWhy(t, 5*time.Second, fmt.Sprintf("tip %d and 0 behind", ds.Last), func() (bool, string) {
			tip, _ := gauge(t, reg, "cdp_pipeline_source_tip_ledger")
			behind, ok := gauge(t, reg, "cdp_pipeline_source_ledgers_behind_tip")
			return tip == float64(ds.Last) && ok && behind == 0, fmt.Sprintf("tip %v behind %v", tip, behind)
		})
		f.stop()
		if err := <-f.done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel = %v, want context.Canceled", err)
		}
		f.done <- nil
		checkLedgers(t, ds, f.ledgers(), seqRange(58752000, ds.Last))
		if lag, ok := gauge(t, reg, "cdp_pipeline_source_lag_seconds"); !ok || lag <= 0 {
			t.Errorf("lag gauge = %v (present %v)", lag, ok)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFSBehindTip: started far behind a datastore's tip, the source reports how many ledgers
// the datastore holds beyond the last one emitted.
func TestFSBehindTip(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 6})
	// Also through a symlink to the datastore (the SDK's tip search does not follow one).
	link := filepath.Join(t.TempDir(), "datastore")
	if err := os.Symlink(ds.Dir, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{ds.Dir, link} {
		t.Run(filepath.Base(path), func(t *testing.T) { testBehindTip(t, path) })
	}
}

func testBehindTip(t *testing.T, path string) {
	env, reg, _ := testEnv(t)
	s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": path, "network": "pubnet",
		"start_ledger": 58752000}, env)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, 0, func(l *ledger.Ledger) error {
			if l.Sequence() == 58752002 {
				<-release // the consumer stalls after 3 ledgers
			}
			return nil
		})
	}()
	testutil.EventuallyWhy(t, 10*time.Second, "3 ledgers behind the tip", func() (bool, string) {
		behind, _ := gauge(t, reg, "cdp_pipeline_source_ledgers_behind_tip")
		return behind == 3, fmt.Sprintf("ledgers_behind_tip %v", behind) // 58752005 - 58752002
	})
	if st := s.(component.StatsReporter).Stats(); st["ledgers_behind_tip"] != 3 || st["tip_ledger"] != 58752005 {
		t.Fatalf("stats %v", st)
	}
	if h := s.(component.HealthReporter).Health(); h != "" && h != "healthy" {
		t.Fatalf("health %q while the datastore answers", h)
	}
	close(release)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// TestFSPartialFiles shows why an exporter must write a temporary name and rename: a file that
// appears half-written (as the SDK's own filesystem store writes, in place) makes a reader
// following the tip fail; a half-written temporary file is invisible, and the renamed file is
// read whole. A concurrent appender that writes through fixture.Append never makes it fail.
func TestFSPartialFiles(t *testing.T) {
	src := buildFixture(t, fixture.Options{Count: 2}) // holds 58752001 to copy from
	next := src.ObjectKey(58752001)
	whole, err := os.ReadFile(filepath.Join(src.Dir, filepath.FromSlash(next)))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("in place: the reader fails", func(t *testing.T) {
		ds := buildFixture(t, fixture.Options{})
		env, _, _ := testEnv(t)
		s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
			"start_ledger": 58752000, "retry_wait": "20ms", "retry_limit": 0}, env)
		t.Cleanup(func() { _ = s.Close() }) // after the follower's cleanup stopped Run
		f := follow(t, s, 0)
		f.waitFor(t, 1, 10*time.Second)
		// An in-place writer has written half of the next file.
		if err := os.WriteFile(filepath.Join(ds.Dir, filepath.FromSlash(next)), whole[:len(whole)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-f.done:
			f.done <- err
			if err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want a read error", err)
			}
			t.Logf("reader on a half-written file: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not fail on a half-written file")
		}
	})

	t.Run("temp and rename: the reader waits, then reads the whole file", func(t *testing.T) {
		ds := buildFixture(t, fixture.Options{})
		env, _, _ := testEnv(t)
		s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
			"start_ledger": 58752000, "retry_wait": "20ms", "retry_limit": 0}, env)
		t.Cleanup(func() { _ = s.Close() }) // after the follower's cleanup stopped Run
		f := follow(t, s, 0)
		f.waitFor(t, 1, 10*time.Second)
		final := filepath.Join(ds.Dir, filepath.FromSlash(next))
		tmp := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".tmp-1")
		if err := os.WriteFile(tmp, whole[:len(whole)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // ten polls of the missing file
		if err := os.WriteFile(tmp, whole, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, 2, 10*time.Second)
		checkLedgers(t, src, f.ledgers(), []uint32{58752000, 58752001})
	})

	t.Run("concurrent appends never fail the reader", func(t *testing.T) {
		ds := buildFixture(t, fixture.Options{})
		env, _, _ := testEnv(t)
		s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
			"start_ledger": 58752000, "retry_wait": "1ms", "retry_limit": 0, "num_workers": 4, "buffer_size": 8}, env)
		t.Cleanup(func() { _ = s.Close() }) // after the follower's cleanup stopped Run
		f := follow(t, s, 0)
		const n = 10
		for i := 0; i < n; i++ {
			if ds, err = fixture.Append(ds.Dir, 1); err != nil {
				t.Fatal(err)
			}
		}
		f.waitFor(t, n+1, 30*time.Second)
		checkLedgers(t, ds, f.ledgers(), seqRange(58752000, 58752000+n))
	})
}
