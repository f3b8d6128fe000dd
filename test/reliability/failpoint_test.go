package reliability

// Crashes at the commit boundaries (issue 17 item 12): cdpd, built with the faultinject tag,
// kills itself with SIGKILL at one named failpoint (internal/failpoint) while the two crash
// pipelines write the range to PostgreSQL, Parquet and DuckDB (with cgo) and heartbeat a
// control plane; after a restart every sink holds every ledger exactly once. One pass over every failpoint
// (CDPD_FAILPOINTS=1, `make failpoints`); the soak run (CDPD_SOAK=1) also crashes at each one
// at several hits.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/internal/failpoint"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// failpointsEnv runs TestCrashAtFailpoints (`make failpoints`, a step of `make test` of its own,
// after the package run, since it needs cdpd built with the faultinject tag): one pass takes 2
// to 3 minutes (118 s and 190 s for the 12 failpoints, 7 to 16 s each, in two runs on 2 shared
// cores with the race detector; 3.5 to 5 minutes with building cdpd).
const failpointsEnv = "CDPD_FAILPOINTS"

// TestCrashAtFailpoints crashes once at every failpoint, at a hit that lands inside the
// writing of the range (a few commits, checkpoints and files in; heartbeats go on after the
// pipelines complete).
func TestCrashAtFailpoints(t *testing.T) {
	if os.Getenv(failpointsEnv) != "1" {
		t.Skip("one pass over every failpoint takes minutes: set " + failpointsEnv + "=1 (make failpoints)")
	}
	runFailpoints(t, func(name string) []int {
		switch {
		case strings.HasPrefix(name, "parquet-"):
			return []int{4}
		case strings.HasPrefix(name, "heartbeat-"):
			return []int{6}
		}
		return []int{3}
	})
}

// TestSoakCrashAtFailpoints crashes at the first, second and fifth hit of every failpoint.
func TestSoakCrashAtFailpoints(t *testing.T) {
	needSoak(t)
	runFailpoints(t, func(string) []int { return []int{1, 2, 5} })
}

func runFailpoints(t *testing.T, hits func(name string) []int) {
	env := newCrashEnv(t)
	cp := startControlPlane(t, CPOptions{})
	n := 0
	for _, name := range failpoint.All {
		if strings.HasPrefix(name, "duckdb-") && !duckEnabled {
			continue // cdpd built without the DuckDB consumers
		}
		for _, hit := range hits(name) {
			n++
			t.Run(fmt.Sprintf("%s@%d", name, hit), func(t *testing.T) {
				env.crashAt(t, n, cp.Addr, name, hit)
			})
		}
	}
}

// crashAt runs the range into fresh sinks with cdpd armed to crash at the hit-th time it
// reaches failpoint name, checks that it died there (and the PostgreSQL and DuckDB tables are a
// consistent prefix), then restarts it and checks exactly-once once the range is complete.
func (e *crashEnv) crashAt(t *testing.T, n int, cpAddr, name string, hit int) {
	conf, state, out, dsn := e.prepare(t, fmt.Sprintf("failpoint_%d", n))
	sel := fmt.Sprintf("%s@%d", name, hit)
	d := startDaemon(t, DaemonOptions{ConfDir: conf, StateDir: state, Endpoint: cpAddr, NoWaitReady: true,
		Env: []string{failpoint.EnvVar + "=" + sel}})
	testproc.Eventually(t, 3*time.Minute, "cdpd killed at "+sel, func() (bool, string) {
		if d.Exited() {
			return true, ""
		}
		// A run that completes without reaching the failpoint does not test it (heartbeats go
		// on after completion).
		if strings.HasPrefix(name, "heartbeat-") {
			return false, "running"
		}
		if code, body := d.Get("/api/v1/pipelines"); code == 200 && strings.Count(body, `"status":"completed"`) == 2 {
			t.Fatalf("both pipelines completed without reaching failpoint %s", sel)
		}
		return false, "running"
	})
	want := fmt.Sprintf("failpoint %s reached (hit %d): killing the process", name, hit)
	if !strings.Contains(d.Output(), want) {
		t.Fatalf("cdpd exited (%v) but not at the failpoint: no %q in its output", d.Err(), want)
	}
	pl, pe := e.checkPGPrefix(t, dsn)
	dl, de := e.checkDuckPrefix(t, out)
	t.Logf("killed at %s; cursors at %d (latest_ledger) %d (contract_events) in PostgreSQL, %d %d in DuckDB, data a gap-free prefix", sel, pl, pe, dl, de)
	e.complete(t, "after "+sel, DaemonOptions{ConfDir: conf, StateDir: state, Endpoint: cpAddr}, false, dsn, out)
}
