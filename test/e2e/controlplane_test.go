package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/test/testproc"
)

// TestControlPlaneRestartEmpty: the control plane dies and comes back with an empty registry;
// every pipeline is registered again without any pipeline restarting.
func TestControlPlaneRestartEmpty(t *testing.T) {
	cp := startControlPlane(t, 0)
	conf, state := t.TempDir(), t.TempDir()
	for _, n := range []string{"one", "two", "three"} {
		testproc.WriteFile(t, filepath.Join(conf, n+".yaml"), latestYAML(n))
	}
	d := startDaemon(t, conf, state, cp.addr)
	wantRegistered(t, cp, "cdp-one", "cdp-two", "cdp-three")
	before := d.pipelines(t)

	cp.Kill()
	testproc.Eventually(t, 10*time.Second, "cdpd notices the control plane is gone", func() (bool, string) {
		for _, p := range d.pipelines(t) {
			if p.Registered {
				return false, p.Name + " still registered"
			}
		}
		return true, ""
	})
	cp2 := startControlPlane(t, cp.port)
	start := time.Now()
	// heartbeat interval 500ms + client backoff cap (5s by default) is the promise; allow slack
	// for a loaded machine.
	wantRegistered(t, cp2, "cdp-one", "cdp-two", "cdp-three")
	t.Logf("all pipelines re-registered %s after the control plane came back", time.Since(start))
	after := d.pipelines(t)
	for n, b := range before {
		if a := after[n]; a.Restarts != b.Restarts || a.Generation != b.Generation {
			t.Errorf("%s restarted while the control plane was away: %+v -> %+v", n, b, a)
		}
	}
}

// TestStartWithoutControlPlane: cdpd starts while the control plane is down; pipelines run, and
// they are registered once it is up.
func TestStartWithoutControlPlane(t *testing.T) {
	port := testproc.FreePort(t)
	conf, state := t.TempDir(), t.TempDir()
	for _, n := range []string{"early", "bird"} {
		testproc.WriteFile(t, filepath.Join(conf, n+".yaml"), latestYAML(n))
	}
	d := startDaemon(t, conf, state, fmt.Sprintf("127.0.0.1:%d", port))
	testproc.Eventually(t, 30*time.Second, "pipelines run without a control plane", func() (bool, string) {
		var behind []string
		for _, p := range d.pipelines(t) {
			if p.CurrentLedger != ds.Last {
				behind = append(behind, p.Name)
			}
		}
		sort.Strings(behind)
		return len(behind) == 0, fmt.Sprint(behind)
	})
	cp := startControlPlane(t, port)
	wantRegistered(t, cp, "cdp-early", "cdp-bird")
}
