package host

import (
	"context"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// TestRecoveredPipelineClearsItsErrors (issue 17 item 5): a pipeline that failed and then runs
// again used to keep the old error as its last_error (and, when its first start had failed,
// as its ApplyError, the API's config_error) forever. A run that handles a ledger after the
// failure clears last_error; the run of a retried first version clears ApplyError; the restart
// log keeps what happened.
func TestRecoveredPipelineClearsItsErrors(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)

	t.Run("first start fails twice, as on a concurrent CREATE TABLE", func(t *testing.T) {
		d := def("starts", comp_("MemSource", "start_ledger", first, "interval", "10ms"), nil,
			procs(comp_("Record", "fail_starts", 2)))
		err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: d})
		if err == nil || !strings.Contains(err.Error(), "injected start failure 1 of 2") {
			t.Fatalf("Add: %v, want the first start's failure", err)
		}
		p, _ := h.Get("starts")
		testutil.EventuallyWhy(t, waitLong, "running and handling ledgers", func() (bool, string) {
			in := p.Info()
			return in.Status == StatusRunning && in.CurrentLedger > first, in.Status
		})
		testutil.EventuallyWhy(t, waitLong, "errors cleared", func() (bool, string) {
			in := p.Info()
			return in.LastError == "" && in.ApplyError == "" && in.ConfigRejected == "",
				"last_error " + in.LastError + "; apply_error " + in.ApplyError
		})
		if log := p.RestartLog(); len(log) != 2 || !strings.Contains(log[0].Err, "injected start failure 1 of 2") ||
			!strings.Contains(log[1].Err, "injected start failure 2 of 2") {
			t.Errorf("restart log %+v, want both failures", log)
		}
		if s := p.HealthState(); s != HealthHealthy {
			t.Errorf("health %s", s)
		}
	})

	t.Run("a run fails once", func(t *testing.T) {
		d := def("once", comp_("MemSource", "start_ledger", first, "interval", "10ms"), nil,
			procs(comp_("Record", "fail_once_at", first+2)))
		apply(t, h, loader.Add, d)
		p, _ := h.Get("once")
		testutil.Eventually(t, waitLong, "the failure", func() bool { return len(p.RestartLog()) == 1 })
		testutil.EventuallyWhy(t, waitLong, "running past the failure, error cleared", func() (bool, string) {
			in := p.Info()
			return in.CurrentLedger > first+3 && in.LastError == "", in.LastError
		})
		if log := p.RestartLog(); len(log) != 1 || !strings.Contains(log[0].Err, "injected failure at ledger") {
			t.Errorf("restart log %+v", log)
		}
		if in := p.Info(); in.Restarts != 1 || in.ApplyError != "" {
			t.Errorf("after the recovery: %+v", in)
		}
	})
}
