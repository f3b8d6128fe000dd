package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	healthy   = flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	unhealthy = flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
)

func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// receiver is a webhook endpoint on loopback recording what it was sent. fail answers the
// first fail requests with failStatus.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	got        []Payload
	attempts   int
	deliveries []string // X-Cdpd-Delivery of every attempt
	fail       int
	failStatus int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{failStatus: http.StatusInternalServerError}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		r.deliveries = append(r.deliveries, req.Header.Get("X-Cdpd-Delivery"))
		if req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook Content-Type = %q", req.Header.Get("Content-Type"))
		}
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(r.failStatus)
			return
		}
		var p Payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) payloads() []Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Payload(nil), r.got...)
}

func (r *receiver) states() string {
	var s []string
	for _, p := range r.payloads() {
		s = append(s, p.State+":"+p.ServiceID)
	}
	return strings.Join(s, ",")
}

func deliveryID(alert, service string, firedAt time.Time, state string) string {
	return fmt.Sprintf("%s/%s/%d/%s", alert, service, firedAt.UnixNano(), state)
}

// byService is each service's notification states in order: "a=firing,resolved b=firing".
func (r *receiver) byService() string {
	m := map[string][]string{}
	var ids []string
	for _, p := range r.payloads() {
		if m[p.ServiceID] == nil {
			ids = append(ids, p.ServiceID)
		}
		m[p.ServiceID] = append(m[p.ServiceID], p.State)
	}
	sort.Strings(ids)
	var out []string
	for _, id := range ids {
		out = append(out, id+"="+strings.Join(m[id], ","))
	}
	return strings.Join(out, " ")
}

func newManager(t *testing.T, c *testutil.Clock, opts Options) *Manager {
	t.Helper()
	opts.Now = c.Now
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.BackoffBase = time.Millisecond
	opts.BackoffMax = 4 * time.Millisecond
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func flush(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustAdd(t *testing.T, m *Manager, a *cdpdv1.Alert) *cdpdv1.Alert {
	t.Helper()
	out, err := m.Add(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFiringAndResolveExactlyOnce(t *testing.T) {
	c := newClock()
	rcv := newReceiver(t)
	m := newManager(t, c, Options{})
	a := mustAdd(t, m, &cdpdv1.Alert{Service: "cdp-alpha", Condition: "status != healthy", WebhookUrl: rcv.URL})
	if a.GetId() != "alert-1" || a.GetCondition() != "status != healthy" || !a.GetCreatedAt().AsTime().Equal(c.Now()) {
		t.Fatalf("created alert = %v", a)
	}

	m.Observe(Event{ServiceID: "cdp-alpha", Status: healthy, Replace: true})
	m.Observe(Event{ServiceID: "cdp-beta", Status: unhealthy}) // another service: not matched
	c.Advance(10 * time.Second)
	m.Observe(Event{ServiceID: "cdp-alpha", Status: unhealthy, Metrics: map[string]string{"health.last_error": "source: disk full"}})
	for range 5 { // more unhealthy heartbeats and timer passes: no repeat
		c.Advance(10 * time.Second)
		m.Observe(Event{ServiceID: "cdp-alpha", Status: unhealthy})
		m.Evaluate()
	}
	flush(t, m)
	got := rcv.payloads()
	if len(got) != 1 {
		t.Fatalf("after failing: %d notifications (%s), want 1 firing", len(got), rcv.states())
	}
	f := got[0]
	firedAt := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	if f.State != StateFiring || f.AlertID != "alert-1" || f.ServiceID != "cdp-alpha" || f.Condition != "status != healthy" ||
		f.Status != "unhealthy" || f.Value != "unhealthy" || f.Detail != "source: disk full" ||
		!f.Since.Equal(firedAt) || !f.Time.Equal(firedAt) || f.DeliveryID != deliveryID("alert-1", "cdp-alpha", firedAt, "firing") {
		t.Fatalf("firing payload = %+v", f)
	}

	c.Advance(time.Minute)
	m.Observe(Event{ServiceID: "cdp-alpha", Status: healthy})
	m.Observe(Event{ServiceID: "cdp-alpha", Status: healthy})
	flush(t, m)
	got = rcv.payloads()
	if len(got) != 2 || got[1].State != StateResolved {
		t.Fatalf("after recovery: %s, want firing then one resolve", rcv.states())
	}
	if r := got[1]; r.Status != "healthy" || r.Reason != "" || !r.Since.Equal(firedAt) || r.DeliveryID != deliveryID("alert-1", "cdp-alpha", firedAt, "resolved") {
		t.Fatalf("resolve payload = %+v", r)
	}

	// A second failure fires again, with a new delivery id.
	m.Observe(Event{ServiceID: "cdp-alpha", Status: unhealthy})
	flush(t, m)
	if got = rcv.payloads(); len(got) != 3 || got[2].DeliveryID != deliveryID("alert-1", "cdp-alpha", c.Now(), "firing") {
		t.Fatalf("second failure: %s (%+v)", rcv.states(), got)
	}
}

func TestForDurationAndWildcard(t *testing.T) {
	c := newClock()
	rcv := newReceiver(t)
	m := newManager(t, c, Options{EvalInterval: time.Millisecond})
	mustAdd(t, m, &cdpdv1.Alert{Id: "slow", Service: "*", Condition: "metric:processor.X.events_found < 1", WebhookUrl: rcv.URL, ForSeconds: 60})

	m.Observe(Event{ServiceID: "a", Status: healthy, Metrics: map[string]string{"processor.X.events_found": "0"}})
	m.Observe(Event{ServiceID: "b", Status: healthy, Metrics: map[string]string{"processor.X.events_found": "0"}})
	c.Advance(30 * time.Second)
	m.Observe(Event{ServiceID: "b", Metrics: map[string]string{"processor.X.events_found": "4"}}) // b recovers before 60 s
	m.Evaluate()
	flush(t, m)
	if n := len(rcv.payloads()); n != 0 {
		t.Fatalf("fired before the duration: %s", rcv.states())
	}

	// Run's timer fires a while later without any event.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	c.Advance(31 * time.Second)
	testutil.Eventually(t, 10*time.Second, "Run's timer fires the rule", func() bool { return len(rcv.payloads()) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	got := rcv.payloads()
	if len(got) != 1 || got[0].ServiceID != "a" || got[0].Value != "0" || got[0].ForSeconds != 60 {
		t.Fatalf("after the duration: %s (%+v), want one firing for a", rcv.states(), got)
	}

	// Unregistering a firing service resolves it; deleting the rule afterwards sends nothing more.
	m.Observe(Event{ServiceID: "a", Removed: true})
	if err := m.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	got = rcv.payloads()
	if len(got) != 2 || got[1].State != StateResolved || got[1].Reason != "service unregistered" || got[1].Status != "gone" {
		t.Fatalf("after unregistering: %s (%+v)", rcv.states(), got)
	}
}

func TestDeleteResolvesFiring(t *testing.T) {
	c := newClock()
	rcv := newReceiver(t)
	m := newManager(t, c, Options{})
	m.Observe(Event{ServiceID: "x", Status: unhealthy})
	// Created while the service is already failing: fires at once.
	mustAdd(t, m, &cdpdv1.Alert{Id: "down", Service: "x", Condition: "status == unhealthy", WebhookUrl: rcv.URL})
	if err := m.Remove("down"); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	if got := rcv.states(); got != "firing:x,resolved:x" {
		t.Fatalf("notifications = %s", got)
	}
	if p := rcv.payloads()[1]; p.Reason != "alert deleted" || p.Status != "unhealthy" {
		t.Fatalf("resolve = %+v", p)
	}
	var nf *NotFoundError
	if err := m.Remove("down"); err == nil || !asErr(err, &nf) {
		t.Fatalf("second delete: %v", err)
	}
}

func asErr[T error](err error, target *T) bool {
	e, ok := err.(T)
	if ok {
		*target = e
	}
	return ok
}

func TestRetries(t *testing.T) {
	c := newClock()
	rcv := newReceiver(t)
	rcv.fail = 2 // two 500s, then accepted
	m := newManager(t, c, Options{MaxAttempts: 5})
	mustAdd(t, m, &cdpdv1.Alert{Id: "r", Service: "x", Condition: "status != healthy", WebhookUrl: rcv.URL})
	m.Observe(Event{ServiceID: "x", Status: unhealthy})
	m.Observe(Event{ServiceID: "x", Status: healthy})
	flush(t, m)
	rcv.mu.Lock()
	attempts, deliveries := rcv.attempts, rcv.deliveries
	rcv.mu.Unlock()
	if got := rcv.states(); got != "firing:x,resolved:x" {
		t.Fatalf("notifications = %s, want firing then resolved in order", got)
	}
	f, r := deliveryID("r", "x", c.Now(), "firing"), deliveryID("r", "x", c.Now(), "resolved")
	want := strings.Join([]string{f, f, f, r}, ",")
	if attempts != 4 || strings.Join(deliveries, ",") != want {
		t.Fatalf("attempts = %d %v, want 4: %s", attempts, deliveries, want)
	}

	// A 4xx other than 408/429 is not retried; a dead webhook is given up after MaxAttempts.
	rcv2 := newReceiver(t)
	rcv2.fail, rcv2.failStatus = 100, http.StatusNotFound
	mustAdd(t, m, &cdpdv1.Alert{Id: "gone", Service: "y", Condition: "status != healthy", WebhookUrl: rcv2.URL})
	rcv3 := newReceiver(t)
	rcv3.fail = 100
	mustAdd(t, m, &cdpdv1.Alert{Id: "dead", Service: "y", Condition: "status != healthy", WebhookUrl: rcv3.URL})
	m.Observe(Event{ServiceID: "y", Status: unhealthy})
	flush(t, m)
	rcv2.mu.Lock()
	rcv3.mu.Lock()
	defer rcv2.mu.Unlock()
	defer rcv3.mu.Unlock()
	if rcv2.attempts != 1 || rcv3.attempts != 5 {
		t.Fatalf("attempts: 404 webhook %d (want 1), 500 webhook %d (want 5)", rcv2.attempts, rcv3.attempts)
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	open := func() *bbolt.DB {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	c := newClock()
	rcv := newReceiver(t)

	db := open()
	m := newManager(t, c, Options{DB: db})
	mustAdd(t, m, &cdpdv1.Alert{Service: "a", Condition: "status != healthy", WebhookUrl: rcv.URL})
	mustAdd(t, m, &cdpdv1.Alert{Service: "b", Condition: "status != healthy", WebhookUrl: rcv.URL})
	m.Observe(Event{ServiceID: "a", Status: unhealthy})
	m.Observe(Event{ServiceID: "b", Status: unhealthy})
	flush(t, m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rcv.byService(); got != "a=firing b=firing" {
		t.Fatalf("before restart: %s", got)
	}

	// Restart: a is still failing (no second firing), b recovered while we were down (resolved).
	db = open()
	defer db.Close()
	services := func() []*flowctlv1.ComponentStatusResponse {
		return []*flowctlv1.ComponentStatusResponse{
			{Component: &flowctlv1.ComponentInfo{Id: "a"}, Status: unhealthy},
			{Component: &flowctlv1.ComponentInfo{Id: "b"}, Status: healthy},
		}
	}
	m = newManager(t, c, Options{DB: db, Services: services})
	flush(t, m)
	if got := rcv.byService(); got != "a=firing b=firing,resolved" {
		t.Fatalf("after restart: %s", got)
	}
	alerts := m.Alerts()
	if len(alerts) != 2 || alerts[0].GetId() != "alert-1" || alerts[1].GetId() != "alert-2" {
		t.Fatalf("alerts after restart = %v", alerts)
	}
	if a := mustAdd(t, m, &cdpdv1.Alert{Service: "c", Condition: "status != healthy", WebhookUrl: rcv.URL}); a.GetId() != "alert-3" {
		t.Fatalf("new id after restart = %q, want alert-3", a.GetId())
	}
	m.Observe(Event{ServiceID: "a", Status: healthy})
	flush(t, m)
	if got := rcv.byService(); got != "a=firing,resolved b=firing,resolved" {
		t.Fatalf("after a recovers: %s", got)
	}
}

func TestAlertServiceValidation(t *testing.T) {
	m := newManager(t, newClock(), Options{})
	ctx := context.Background()
	tests := []struct {
		alert *cdpdv1.Alert
		code  codes.Code
		msg   string
	}{
		{&cdpdv1.Alert{Condition: "status != healthy", WebhookUrl: "http://127.0.0.1:1/"}, codes.InvalidArgument, "a service is required"},
		{&cdpdv1.Alert{Service: "cdp-*", Condition: "status != healthy", WebhookUrl: "http://127.0.0.1:1/"}, codes.InvalidArgument, "no patterns"},
		{&cdpdv1.Alert{Service: "x", Condition: "status is bad", WebhookUrl: "http://127.0.0.1:1/"}, codes.InvalidArgument, "no comparison operator"},
		{&cdpdv1.Alert{Service: "x", Condition: "status != healthy"}, codes.InvalidArgument, "a webhook URL is required"},
		{&cdpdv1.Alert{Service: "x", Condition: "status != healthy", WebhookUrl: "ftp://h/"}, codes.InvalidArgument, "scheme must be http or https"},
		{&cdpdv1.Alert{Service: "x", Condition: "status != healthy", WebhookUrl: "http:///x"}, codes.InvalidArgument, "has no host"},
		{&cdpdv1.Alert{Service: "x", Condition: "status != healthy", WebhookUrl: "http://h/", ForSeconds: -1}, codes.InvalidArgument, "for_seconds -1"},
		{&cdpdv1.Alert{Id: "bad id", Service: "x", Condition: "status != healthy", WebhookUrl: "http://h/"}, codes.InvalidArgument, `id "bad id"`},
	}
	for _, tt := range tests {
		_, err := m.CreateAlert(ctx, &cdpdv1.CreateAlertRequest{Alert: tt.alert})
		if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CreateAlert(%v) = %v, want %s containing %q", tt.alert, err, tt.code, tt.msg)
		}
	}
	ok := &cdpdv1.Alert{Id: "one", Service: "x", Condition: "metric:a>1", WebhookUrl: "https://hooks.example/x"}
	if _, err := m.CreateAlert(ctx, &cdpdv1.CreateAlertRequest{Alert: ok}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateAlert(ctx, &cdpdv1.CreateAlertRequest{Alert: ok}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate id: %v", err)
	}
	list, err := m.ListAlerts(ctx, &emptypb.Empty{})
	if err != nil || len(list.GetAlerts()) != 1 || list.GetAlerts()[0].GetCondition() != "metric:a > 1" {
		t.Fatalf("ListAlerts = %v, %v", list, err)
	}
	if _, err := m.DeleteAlert(ctx, &cdpdv1.DeleteAlertRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, err := m.DeleteAlert(ctx, &cdpdv1.DeleteAlertRequest{Id: "one"}); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookSecretsNotLogged(t *testing.T) {
	lis := newReceiver(t)
	url := lis.URL + "/hooks/SECRET-TOKEN?key=SECRET-KEY"
	lis.Close() // nothing listens any more: every attempt fails to connect
	var logs bytes.Buffer
	m, err := New(Options{
		Now: newClock().Now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mustAdd(t, m, &cdpdv1.Alert{Id: "s", Service: "x", Condition: "status != healthy", WebhookUrl: url})
	m.Observe(Event{ServiceID: "x", Status: unhealthy})
	flush(t, m)
	out := logs.String()
	if !strings.Contains(out, "alert notification not delivered") {
		t.Fatalf("no delivery failure logged:\n%s", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Fatalf("the webhook's path or query was logged:\n%s", out)
	}
}

// BenchmarkObserve is the cost the alert manager adds to every heartbeat (10 rules, 10,000
// services, nothing firing).
func BenchmarkObserve(b *testing.B) {
	m, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for i := range 10 {
		cond := "status != healthy"
		if i%2 == 1 {
			cond = fmt.Sprintf("metric:m%d > 100", i)
		}
		if _, err := m.Add(&cdpdv1.Alert{Service: "*", Condition: cond, WebhookUrl: "http://127.0.0.1:9/"}); err != nil {
			b.Fatal(err)
		}
	}
	metrics := map[string]string{}
	for i := range 30 {
		metrics[fmt.Sprintf("m%d", i)] = "5"
	}
	for i := range 10000 {
		m.Observe(Event{ServiceID: fmt.Sprintf("svc-%d", i), Status: healthy, Metrics: metrics, Replace: true})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.Observe(Event{ServiceID: fmt.Sprintf("svc-%d", i%10000), Status: healthy, Metrics: metrics})
	}
}

// Webhook retries wait BackoffBase, doubled after each attempt, capped at BackoffMax, ±20%.
func TestWebhookRetryPolicy(t *testing.T) {
	p := retryPolicy(Options{BackoffBase: 500 * time.Millisecond, BackoffMax: 30 * time.Second})
	if p.Jitter != 0.2 {
		t.Fatalf("jitter %v, want 0.2", p.Jitter)
	}
	p.Jitter = 0
	for n, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 4: 4 * time.Second, 12: 30 * time.Second} {
		if got := p.Delay(n); got != want {
			t.Errorf("wait after attempt %d: %v, want %v", n, got, want)
		}
	}
}
