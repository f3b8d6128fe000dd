package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/test/testproc"
)

// flowctl runs the CLI against cp and returns its output and exit code.
func (cp *controlPlane) flowctl(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bins.flowctl, append(args, "--control-plane-addr", cp.addr)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running flowctl %v: %v", args, err)
	}
	return string(out), 0
}

// webhook records alert notifications.
type webhook struct {
	mu   sync.Mutex
	seen []map[string]any
	srv  *httptest.Server
}

func newWebhook(t testing.TB) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err == nil {
			w.mu.Lock()
			w.seen = append(w.seen, p)
			w.mu.Unlock()
		}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.seen {
		out = append(out, p["service_id"].(string)+":"+p["state"].(string))
	}
	return out
}

// TestFlowctlWithCdpd: cdpd with two pipelines and our server; `flowctl status` lists both as
// healthy cdp-pipelines; a pipeline made to fail (its datastore is missing) makes `flowctl
// health` exit 1 and fires a webhook alert once; when the datastore appears the pipeline
// recovers and the alert resolves once.
func TestFlowctlWithCdpd(t *testing.T) {
	cp := startControlPlane(t, 0)
	hook := newWebhook(t)
	conf, state := t.TempDir(), t.TempDir()
	late := filepath.Join(t.TempDir(), "late-datastore")
	testproc.WriteFile(t, filepath.Join(conf, "steady.yaml"), latestYAML("steady"))
	testproc.WriteFile(t, filepath.Join(conf, "flaky.yaml"), strings.Replace(latestYAML("flaky"), ds.Dir, late, 1))
	if out, code := cp.flowctl(t, "alert", "create", "--service", "cdp-flaky", "--condition", "status != healthy", "--webhook", hook.srv.URL); code != 0 {
		t.Fatalf("alert create: %d %s", code, out)
	}
	startDaemon(t, conf, state, cp.addr)

	testproc.Eventually(t, 20*time.Second, "flaky reported unhealthy", func() (bool, string) {
		out, code := cp.flowctl(t, "health", "cdp-flaky")
		return code == 1 && strings.Contains(out, "✗ cdp-flaky is unhealthy"), out
	})
	out, code := cp.flowctl(t, "health", "cdp-steady")
	if code != 0 || !strings.Contains(out, "✓ cdp-steady is healthy") {
		t.Errorf("health of steady: %d %q", code, out)
	}
	testproc.Eventually(t, 20*time.Second, "one firing delivered", func() (bool, string) {
		s := hook.states()
		return len(s) == 1 && s[0] == "cdp-flaky:firing", strings.Join(s, ",")
	})

	// The datastore appears: the pipeline recovers on its next restart.
	if err := os.Symlink(ds.Dir, late); err != nil {
		t.Fatal(err)
	}
	testproc.Eventually(t, 60*time.Second, "flaky healthy again", func() (bool, string) {
		out, code := cp.flowctl(t, "health", "cdp-flaky")
		return code == 0, out
	})
	table, code := cp.flowctl(t, "status")
	if code != 0 {
		t.Fatalf("status: %d %s", code, table)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "TYPE") || !strings.Contains(lines[0], "STATUS") || !strings.Contains(lines[0], "UPTIME") {
		t.Errorf("status header: %q", lines[0])
	}
	statusCol := slices.Index(strings.Fields(lines[0]), "STATUS")
	for _, id := range []string{"cdp-flaky", "cdp-steady"} {
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) > statusCol && statusCol > 1 && f[0] == id && f[1] == "cdp-pipeline" && f[statusCol] == "healthy" {
				found = true
			}
		}
		if !found {
			t.Errorf("status table has no healthy cdp-pipeline row for %s:\n%s", id, table)
		}
	}
	testproc.Eventually(t, 20*time.Second, "one resolve delivered", func() (bool, string) {
		s := hook.states()
		return len(s) == 2 && s[1] == "cdp-flaky:resolved", strings.Join(s, ",")
	})
	// Heartbeats keep coming, each evaluated against the rule: none may notify again. Wait
	// until the control plane has taken three more of flaky's heartbeats (so a notification
	// the first of them caused has had two heartbeat intervals to arrive), then count.
	seen := map[string]bool{}
	testproc.Eventually(t, 30*time.Second, "three more heartbeats of cdp-flaky taken", func() (bool, string) {
		seen[lastHeartbeat(t, cp, "cdp-flaky")] = true
		return len(seen) > 3, fmt.Sprintf("%d distinct last_heartbeat values", len(seen))
	})
	if s := hook.states(); len(s) != 2 {
		t.Errorf("notifications after recovery: %v, want exactly one firing and one resolve", s)
	}
}

// lastHeartbeat is the last_heartbeat of `flowctl status <id> --json`.
func lastHeartbeat(t testing.TB, cp *controlPlane, id string) string {
	t.Helper()
	out, code := cp.flowctl(t, "status", id, "--json")
	var s struct {
		LastHeartbeat string `json:"last_heartbeat"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.LastHeartbeat == "" {
		t.Fatalf("flowctl status %s --json: exit %d, %v: %s", id, code, err, out)
	}
	return s.LastHeartbeat
}
