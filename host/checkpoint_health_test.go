package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// pipelineMetric is the value of a cdp_pipeline_* series of pipeline name (-1 when absent).
func pipelineMetric(t *testing.T, h *Host, metric, name string) float64 {
	t.Helper()
	mfs, err := h.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "pipeline" && lp.GetValue() == name {
					return metricOf(m)
				}
			}
		}
	}
	return -1
}

func metricOf(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}

// TestCheckpointWriteFailure (issue 17 item 3): a pipeline whose checkpoint cannot be written
// (read-only or full state directory) used to look healthy, last_error empty, while its
// checkpoint stood still. It is degraded at once, with the cause in last_error and the health
// details, counted in cdp_pipeline_checkpoint_errors_total and aged in
// cdp_pipeline_checkpoint_age_seconds; unhealthy once the writes have failed for
// CheckpointUnhealthyAfter; healthy again, error cleared, once a write succeeds.
//
// The failure is real, and one that root cannot write through either (chmod would not stop a
// test running as root, as CI does): the pipeline's state directory is replaced by a regular
// file, so creating the checkpoint's temporary file fails with ENOTDIR.
func TestCheckpointWriteFailure(t *testing.T) {
	state := t.TempDir()
	clock := testutil.NewClock(time.Now())
	l := newLab()
	h := newTestHost(t, l, func(o *Options) {
		o.StateDir, o.Now, o.CheckpointUnhealthyAfter = state, clock.Now, time.Minute
	})
	d := def("cp", comp_("MemSource", "start_ledger", first, "interval", "20ms"), nil, procs(comp_("Record")))
	apply(t, h, loader.Add, d)
	p, _ := h.Get("cp")
	testutil.Eventually(t, waitLong, "a first checkpoint", func() bool { return p.Info().Checkpoint > first })
	if s := p.HealthState(); s != HealthHealthy {
		t.Fatalf("before the failure: %s", s)
	}

	dir := filepath.Join(state, "cp")
	// The writer may create the directory again between the removal and the write: retried.
	testutil.EventuallyWhy(t, waitLong, "the state directory replaced by a file", func() (bool, string) {
		if err := os.RemoveAll(dir); err != nil {
			return false, err.Error()
		}
		if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	testutil.EventuallyWhy(t, waitLong, "the failure reported", func() (bool, string) {
		in := p.Info()
		return in.CheckpointError != "" && p.HealthState() == HealthDegraded, p.HealthState() + " " + in.CheckpointError
	})
	in := p.Info()
	stuckAt := in.Checkpoint
	if !strings.Contains(in.LastError, "writing the checkpoint failed") || !strings.Contains(in.LastError, "not a directory") {
		t.Errorf("last_error %q does not say why", in.LastError)
	}
	if d := p.GetHealthDetails()["checkpoint_error"]; d != in.CheckpointError {
		t.Errorf("health detail checkpoint_error = %q, want %q", d, in.CheckpointError)
	}
	if n := pipelineMetric(t, h, "cdp_pipeline_checkpoint_errors_total", "cp"); n < 1 {
		t.Errorf("cdp_pipeline_checkpoint_errors_total = %v", n)
	}
	if m := p.GetMetrics(); m["pipeline.checkpoint_errors"] < 1 {
		t.Errorf("flat metrics: %v", m)
	}
	if v := pipelineMetric(t, h, "cdp_pipeline_healthy", "cp"); v != 0 {
		t.Errorf("cdp_pipeline_healthy = %v while the checkpoint cannot be written", v)
	}
	// The pipeline keeps running; its checkpoint does not follow, and ages.
	testutil.Eventually(t, waitLong, "the pipeline moves on", func() bool { return p.Info().CurrentLedger > stuckAt+3 })
	clock.Advance(30 * time.Second)
	if age := pipelineMetric(t, h, "cdp_pipeline_checkpoint_age_seconds", "cp"); age < 30 {
		t.Errorf("cdp_pipeline_checkpoint_age_seconds = %v after 30 s of failures", age)
	}
	if s := p.HealthState(); s != HealthDegraded {
		t.Errorf("after 30 s of failures: %s, want degraded", s)
	}
	clock.Advance(31 * time.Second)
	if s := p.HealthState(); s != HealthUnhealthy {
		t.Errorf("after 61 s of failures: %s, want unhealthy", s)
	}

	// The disk is back: the next retry writes, the error is gone.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWhy(t, waitLong, "recovered", func() (bool, string) {
		in := p.Info()
		return in.CheckpointError == "" && in.Checkpoint > stuckAt && p.HealthState() == HealthHealthy,
			p.HealthState() + " " + in.CheckpointError
	})
	if in := p.Info(); in.LastError != "" {
		t.Errorf("last_error after the recovery: %q", in.LastError)
	}
	if age := pipelineMetric(t, h, "cdp_pipeline_checkpoint_age_seconds", "cp"); age > 1 {
		t.Errorf("cdp_pipeline_checkpoint_age_seconds = %v after the recovery", age)
	}
}
