package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/withobsrvr/cdpd/host/component"
)

// safeBuffer is a bytes.Buffer for a logger written from another goroutine.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hook is a webhook receiver answering the statuses in turn (then 200).
type hook struct {
	mu       sync.Mutex
	statuses []int
	got      []map[string]any
	ids      []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	code := http.StatusOK
	if len(h.statuses) > 0 {
		code, h.statuses = h.statuses[0], h.statuses[1:]
	}
	if code == http.StatusOK {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.got = append(h.got, m)
		h.ids = append(h.ids, r.Header.Get("X-Cdpd-Delivery"))
	}
	w.WriteHeader(code)
}

func (h *hook) deliveries() ([]map[string]any, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...), append([]string(nil), h.ids...)
}

func notifier(t *testing.T, url string, extra map[string]any) *Notify {
	return notifierEnv(t, url, extra, env("NotificationDispatcher"))
}

func notifierEnv(t *testing.T, url string, extra map[string]any, e component.Env) *Notify {
	cfg := map[string]any{
		"webhook_urls": []any{url + "/hooks/SECRET"},
		"rules": []any{
			map[string]any{"type": "payment", "condition": "gt", "field": "amount", "value": "25", "channels": []any{"webhook"}},
			map[string]any{"type": "payments", "condition": "eq", "field": "asset_code", "value": "USDC", "channels": []any{"webhook"}},
		},
		"retry_wait": "1ms", "max_retry_wait": "2ms",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return construct(t, NewNotificationDispatcher, cfg, e).(*Notify)
}

// Rules match by type (field or kind) and compare numbers as numbers; each match is POSTed with
// a delivery id stable across retries; the rate limit holds a rule back per value.
func TestNotificationDispatcherRules(t *testing.T) {
	h := &hook{statuses: []int{503}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n := notifier(t, srv.URL, map[string]any{"rate_limit": "1h"})
	// amounts 0.5, 10.5, 20.5, 30.5, 40.5 (as text "30.5" < "9" would be false upstream);
	// USDC at odd indexes; the rate limit lets "USDC" fire once.
	if err := n.Consume(bg, testLedger(t, 3), payments(3, 5)); err != nil {
		t.Fatal(err)
	}
	if err := n.Flush(bg); err != nil {
		t.Fatal(err)
	}
	got, ids := h.deliveries()
	want := []string{"testnet:3:1/1/0", "testnet:3:3/0/0", "testnet:3:4/0/0"}
	if strings.Join(sorted(ids), ",") != strings.Join(want, ",") {
		t.Fatalf("deliveries %v, want %v", ids, want)
	}
	for _, m := range got {
		rec, _ := m["record"].(map[string]any)
		if m["delivery_id"] == nil || m["natural_key"] == nil || rec["ledger_sequence"] != float64(3) || m["timestamp"] != "2025-07-01T00:00:15Z" {
			t.Fatalf("notification %v", m)
		}
	}
	st := n.Stats()
	if st["notifications_delivered"] != 3 || st["notifications_failed"] != 0 || n.DurableLedger() != 3 {
		t.Fatalf("stats %v durable %d", st, n.DurableLedger())
	}
	if v := testutil.ToFloat64(n.metrics.Retries); v != 1 {
		t.Fatalf("retries metric %v, want 1 (the 503)", v)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A ledger is durable only once its notifications are finished: while the webhook fails,
// DurableLedger stays before it; a delivery given up after max_attempts is counted.
func TestNotificationDispatcherDurable(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	calls.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(calls.Done)
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	var logs safeBuffer
	e := env("NotificationDispatcher")
	e.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n := notifierEnv(t, srv.URL, map[string]any{"max_attempts": 2, "rate_limit": "0s"}, e)
	if err := n.Consume(bg, testLedger(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := n.Consume(bg, testLedger(t, 2), payments(2, 4)); err != nil {
		t.Fatal(err)
	}
	if err := n.Consume(bg, testLedger(t, 3), nil); err != nil {
		t.Fatal(err)
	}
	calls.Wait() // the first delivery of ledger 2 is in flight
	if d := n.DurableLedger(); d != 1 {
		t.Fatalf("DurableLedger %d while ledger 2's notifications are in flight, want 1", d)
	}
	close(release)
	if err := n.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if d := n.DurableLedger(); d != 3 {
		t.Fatalf("DurableLedger %d after the deliveries ended, want 3", d)
	}
	if st := n.Stats(); st["notifications_failed"] != 3 {
		t.Fatalf("stats %v, want 3 given up", st)
	}
	if out := logs.String(); !strings.Contains(out, "notification not delivered") || strings.Contains(out, "SECRET") {
		t.Fatalf("logs want the failures and never the webhook's path:\n%s", out)
	}
}

// Close with a cancelled context leaves what is queued undelivered (and not durable).
func TestNotificationDispatcherCloseStops(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	n := notifier(t, srv.URL, map[string]any{"timeout": "1h"})
	if err := n.Consume(bg, testLedger(t, 5), payments(5, 2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	if err := n.Close(ctx); err == nil {
		t.Fatal("Close with a delivery hanging returned no error")
	}
	if d := n.DurableLedger(); d != 4 {
		t.Fatalf("DurableLedger %d after an unfinished close, want 4", d)
	}
}

func TestNotificationDispatcherConfig(t *testing.T) {
	rule := func(ch string) []any {
		return []any{map[string]any{"type": "payment", "condition": "gt", "field": "amount", "value": "1", "channels": []any{ch}}}
	}
	for _, tt := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"webhook_urls": []any{"http://h"}}, "rules"},
		{map[string]any{"rules": rule("webhook")}, "webhook_urls"},
		{map[string]any{"rules": rule("slack"), "webhook_urls": []any{"http://h"}}, `channel "slack"`},
		{map[string]any{"rules": []any{map[string]any{"type": "p", "condition": "gt", "field": "amount", "value": "ten", "channels": []any{"webhook"}}}, "webhook_urls": []any{"http://h"}}, "numeric"},
		{map[string]any{"rules": []any{map[string]any{"type": "p", "condition": "ge", "field": "a", "value": "1", "channels": []any{"webhook"}}}, "webhook_urls": []any{"http://h"}}, "condition"},
	} {
		_, err := component.Construct(NewNotificationDispatcher, tt.cfg, env("n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
