package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control/alert"
	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

// webhook is an alert receiver on 127.0.0.1.
type webhook struct {
	*httptest.Server
	mu  sync.Mutex
	got []alert.Payload
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p alert.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.mu.Lock()
		w.got = append(w.got, p)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for _, p := range w.got {
		s = append(s, p.State+":"+p.ServiceID)
	}
	return s
}

// waitStates waits until the webhook got n notifications, then until the control plane has
// delivered every notification it queued (so that an extra one would be seen), and returns
// them.
func (w *webhook) waitStates(t *testing.T, cp *controlPlane, n int) string {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d notifications", n), func() bool { return len(w.states()) >= n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cp.alerts.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return strings.Join(w.states(), ",")
}

func TestAlerts(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populate(t)
	hook := newWebhook(t)

	create := []string{"alert", "create", "--id", "beta-down", "--service", "cdp-alpha", "--condition", "status!=healthy", "--webhook", hook.URL + "/hooks/T0KEN"}
	stdout, stderr, code := cp.run(t, create...)
	golden(t, "alert_create", hook.URL, create, stdout, strings.ReplaceAll(stderr, cp.addr, "ADDR"), code)
	stdout, stderr, code = cp.run(t, "alert", "create", "--service", "*", "--condition", "metric:pipeline.uptime_seconds < 60", "--for", "1m", "--webhook", hook.URL)
	if code != 0 || !strings.Contains(stdout, "created alert alert-1: any service when metric:pipeline.uptime_seconds < 60 for 1m") {
		t.Fatalf("create with --for: exit %d\n%s%s", code, stdout, stderr)
	}
	list := []string{"alert", "list"}
	stdout, stderr, code = cp.run(t, list...)
	golden(t, "alert_list", hook.URL, list, stdout, stderr, code)
	stdout, _, _ = cp.run(t, "alert", "list", "-o", "json")
	var views []AlertView
	if err := json.Unmarshal([]byte(stdout), &views); err != nil || len(views) != 2 || views[1].Webhook != hook.URL+"/hooks/T0KEN" {
		t.Fatalf("alert list -o json: %v %+v", err, views)
	}
	for name, args := range map[string][]string{
		"alert_bad_condition": {"alert", "create", "--service", "x", "--condition", "status > healthy", "--webhook", "http://127.0.0.1:1/"},
		"alert_bad_webhook":   {"alert", "create", "--service", "x", "--condition", "status != healthy", "--webhook", "ftp://127.0.0.1/"},
		"alert_duplicate":     {"alert", "create", "--id", "beta-down", "--service", "x", "--condition", "status != healthy", "--webhook", "http://127.0.0.1:1/"},
		"alert_delete_bad":    {"alert", "delete", "nope"},
	} {
		stdout, stderr, code := cp.run(t, args...)
		golden(t, name, cp.addr, args, stdout, stderr, code)
	}

	// alpha fails: one firing (several failing heartbeats later still one), recovers: one resolve.
	if got := hook.waitStates(t, cp, 0); got != "" {
		t.Fatalf("notifications before any failure: %s", got)
	}
	cp.heartbeat(t, "cdp-alpha", unhealthy, map[string]string{"health.last_error": "consumer: disk full"})
	cp.heartbeat(t, "cdp-alpha", unhealthy, nil)
	cp.clock.Advance(10 * time.Second)
	cp.heartbeat(t, "cdp-alpha", unhealthy, nil)
	if got := hook.waitStates(t, cp, 1); got != "firing:cdp-alpha" {
		t.Fatalf("after failing: %s, want one firing", got)
	}
	if _, _, code := cp.run(t, "health", "cdp-alpha"); code != 1 {
		t.Fatalf("health of a failing pipeline exited %d", code)
	}
	cp.heartbeat(t, "cdp-alpha", healthy, nil)
	cp.heartbeat(t, "cdp-alpha", healthy, nil)
	if got := hook.waitStates(t, cp, 2); got != "firing:cdp-alpha,resolved:cdp-alpha" {
		t.Fatalf("after recovering: %s, want one firing then one resolve", got)
	}
	hook.mu.Lock()
	f := hook.got[0]
	hook.mu.Unlock()
	if f.AlertID != "beta-down" || f.Condition != "status != healthy" || f.Detail != "consumer: disk full" || f.Status != "unhealthy" {
		t.Errorf("firing payload = %+v", f)
	}

	// The metric rule with --for: a pipeline restarted (uptime < 60) fires after a minute.
	cp.heartbeat(t, "cdp-beta", healthy, map[string]string{"pipeline.uptime_seconds": "3"})
	cp.alerts.Evaluate() // what Run's timer does: nothing may fire before the minute
	if got := hook.waitStates(t, cp, 2); got != "firing:cdp-alpha,resolved:cdp-alpha" {
		t.Fatalf("--for 1m fired early: %s", got)
	}
	cp.clock.Advance(61 * time.Second)
	if got := hook.waitStates(t, cp, 3); got != "firing:cdp-alpha,resolved:cdp-alpha,firing:cdp-beta" {
		t.Fatalf("after the minute: %s", got)
	}

	del := []string{"alert", "delete", "alert-1"}
	stdout, stderr, code = cp.run(t, del...)
	golden(t, "alert_delete", cp.addr, del, stdout, stderr, code)
	// Deleting a firing rule resolves it.
	if got := hook.waitStates(t, cp, 4); got != "firing:cdp-alpha,resolved:cdp-alpha,firing:cdp-beta,resolved:cdp-beta" {
		t.Fatalf("after deleting: %s", got)
	}
}

func TestJanitorTurnsHealthRed(t *testing.T) {
	cp := startControlPlane(t, func(c *plane.Config) {
		c.HeartbeatTTL = 30 * time.Second
		c.JanitorInterval = 10 * time.Millisecond
	})
	cp.populate(t)
	hook := newWebhook(t)
	if _, stderr, code := cp.run(t, "alert", "create", "--service", "cdp-alpha", "--condition", "status == unhealthy", "--webhook", hook.URL); code != 0 {
		t.Fatal(stderr)
	}
	if stdout, _, code := cp.run(t, "health", "cdp-alpha"); code != 0 || stdout != "✓ cdp-alpha is healthy\n" {
		t.Fatalf("health before the TTL: exit %d %q", code, stdout)
	}
	cp.clock.Advance(time.Minute) // alpha's last heartbeat is now 65 s old
	var stdout string
	code := 0
	testutil.Eventually(t, 10*time.Second, "the janitor marks cdp-alpha unhealthy", func() bool {
		stdout, _, code = cp.run(t, "health", "cdp-alpha")
		return code != 0
	})
	if code != 1 || stdout != "✗ cdp-alpha is unhealthy: last heartbeat 1m 5s ago\n" {
		t.Fatalf("health after the TTL: exit %d %q", code, stdout)
	}
	if got := hook.waitStates(t, cp, 1); got != "firing:cdp-alpha" {
		t.Fatalf("janitor did not fire the alert: %s", got)
	}
}
