package host

import (
	"path/filepath"
	"testing"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// A pipeline caught up with its datastore (the source follows the tip; no ledger comes after
// the fixture's last) has its Parquet file and its checkpoint although buffer_size is never
// reached and the pipeline is never drained: the host flushes a component.TimedFlusher
// consumer flush_interval after the first ledger it accepted since its last flush (issue 16,
// item 3).
func TestParquetAtTheTipFlushedByInterval(t *testing.T) {
	ds := sharedDatastore(t)
	state, out := t.TempDir(), t.TempDir()
	l := newLab()
	h := newTestHost(t, l, func(o *Options) { o.StateDir = state })
	last := first + fixtureCount - 1
	p := def("tip", fsSource(ds.Dir, first, 0), procs(latestLedger()),
		procs(comp_("SaveToParquet", "local_path", out, "partition_by", "none", "buffer_size", 1000000,
			"flush_interval", "1s")))
	apply(t, h, loader.Add, p)
	tip, _ := h.Get("tip")
	testutil.Eventually(t, waitLong, "every ledger consumed", func() bool { return tip.Info().CurrentLedger == last })
	// The file that ends with the last ledger (the timer may also have written earlier ones
	// while the pipeline caught up).
	pattern := filepath.Join(out, "latest_ledger", "latest_ledger_*-0058752015.parquet")
	testutil.Eventually(t, waitLong, "the Parquet file of the last ledger and the checkpoint, while running", func() bool {
		if m, _ := filepath.Glob(pattern); len(m) != 1 {
			return false
		}
		cp, ok, err := checkpoint.New(state).Load("tip")
		return err == nil && ok && cp.Ledger == last
	})
	if s := status(h, "tip"); s != "running" {
		t.Errorf("status %s, want running (following the tip)", s)
	}
}
