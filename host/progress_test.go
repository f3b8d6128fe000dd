package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

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
			testutil.Eventually(t, waitLong, "a checkpoint behind the consumer", func() bool {
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
			testutil.Eventually(t, waitLong, "completed after restart", func() bool { return status(h2, "k") == StatusCompleted })
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
		testutil.Eventually(t, waitLong, "progress", func() bool { return p.Info().CurrentLedger > first+2 })
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
