package stream

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/withobsrvr/cdpd/host/component"
	ttu "github.com/withobsrvr/cdpd/internal/testutil"
)

func startWS(t *testing.T, cfg map[string]any) (*WebSocket, string) {
	t.Helper()
	full := map[string]any{"address": "127.0.0.1:0"}
	for k, v := range cfg {
		full[k] = v
	}
	w := construct(t, NewSaveToWebSocket, full, env("SaveToWebSocket")).(*WebSocket)
	return w, "ws://" + w.Addr().String() + "/ws"
}

// wsClient dials url, reads the welcome message and registers with filters.
func dialRegister(t *testing.T, url string, filters map[string]any) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if m := readJSON(t, c); m["type"] != "welcome" {
		t.Fatalf("first message %v, want the welcome", m)
	}
	reg, _ := json.Marshal(map[string]any{"type": "register", "filters": filters})
	if err := c.Write(ctx, websocket.MessageText, reg); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, c); m["type"] != "registered" {
		t.Fatalf("answer to register %v", m)
	}
	return c
}

func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %q: %v", b, err)
	}
	return m
}

// Registered clients get every record (or those passing their filters) as its JSON, in
// order; an unregistered client gets none.
func TestSaveToWebSocketStreamsToRegisteredClients(t *testing.T) {
	w, url := startWS(t, nil)
	all := dialRegister(t, url, map[string]any{})
	usdc := dialRegister(t, url, map[string]any{"asset_codes": []string{"USDC"}, "account_ids": []string{"GFROM1"}})
	if err := w.Consume(bg, testLedger(t, 7), payments(7, 12)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		m := readJSON(t, all)
		if m["index"] != float64(i) || m["ledger_sequence"] != float64(7) {
			t.Fatalf("message %d to the unfiltered client: %v", i, m)
		}
	}
	// USDC is odd indexes, GFROM1 is i%3 == 1: indexes 1, 7.
	for _, want := range []float64{1, 7} {
		if m := readJSON(t, usdc); m["index"] != want || m["asset_code"] != "USDC" || m["from"] != "GFROM1" {
			t.Fatalf("filtered client got %v, want index %v", m, want)
		}
	}
	// Close right after a Consume: what was handed over still reaches every client, then the
	// goodbye.
	if err := w.Consume(bg, testLedger(t, 8), payments(8, 200)); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st["clients"] != 2 || st["records_broadcast"] != 212 || st["last_ledger"] != 8 {
		t.Fatalf("stats %v", st)
	}
	if err := w.Close(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		conn  *websocket.Conn
		count int
		first []float64 // the first indexes it gets
	}{{all, 200, []float64{0, 1, 2}}, {usdc, 34, []float64{1, 7, 13}}} { // usdc: i%6 == 1
		n := 0
		for ; ; n++ {
			_, b, err := c.conn.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusGoingAway {
					t.Fatalf("after Close and %d messages a client reads %v, want going away", n, err)
				}
				break
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil || m["ledger_sequence"] != float64(8) {
				t.Fatalf("message %q after Close", b)
			}
			if n < len(c.first) && m["index"] != c.first[n] {
				t.Fatalf("message %d after Close is %v, want index %v", n, m, c.first[n])
			}
		}
		if n != c.count {
			t.Fatalf("a client got %d of ledger 8's records before going away, want %d", n, c.count)
		}
	}
}

// A client that does not read is dropped once its buffer is full (counted), without ever
// blocking Consume; the other clients and new ones go on.
func TestSaveToWebSocketDropsSlowClient(t *testing.T) {
	w, url := startWS(t, map[string]any{"max_queue_size": 2})
	slow := dialRegister(t, url, map[string]any{})
	_ = slow // never read again
	big := func(seq uint32) []component.Record {
		out := payments(seq, 4)
		for i := range out {
			p := out[i].(payment)
			p.Pad = strings.Repeat("x", 64<<10)
			out[i] = p
		}
		return out
	}
	seq := uint32(1)
	ttu.Eventually(t, 60*time.Second, "the slow client is dropped", func() bool {
		if err := w.Consume(bg, testLedger(t, seq), big(seq)); err != nil {
			t.Fatal(err)
		}
		seq++
		return w.Stats()["clients_dropped"] == 1
	})
	if v := testutil.ToFloat64(w.dropC); v != 1 {
		t.Fatalf("clients_dropped_total = %v", v)
	}
	ttu.Eventually(t, 30*time.Second, "the dropped client is gone", func() bool { return w.Stats()["clients"] == 0 })
	fresh := dialRegister(t, url, map[string]any{"types": []string{"payments"}})
	if err := w.Consume(bg, testLedger(t, seq), payments(seq, 1)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, fresh); m["ledger_sequence"] != float64(seq) {
		t.Fatalf("a new client got %v", m)
	}
	t.Logf("slow client dropped after %d ledgers of 4 × 64 KiB records", seq-1)
}

// max_clients bounds the connections; the config is checked.
func TestSaveToWebSocketLimitsAndConfig(t *testing.T) {
	_, url := startWS(t, map[string]any{"max_clients": 1})
	dialRegister(t, url, nil)
	resp, err := http.Get(strings.Replace(url, "ws://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a second client got %d, want 503", resp.StatusCode)
	}
	for _, cfg := range []map[string]any{{"path": "ws"}, {"address": "nohost"}, {"max_queue_size": 0}, {"port": ""}} {
		if _, err := component.Construct(NewSaveToWebSocket, cfg, env("w")); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
	if _, err := component.Construct(NewSaveToWebSocket, map[string]any{"port": 8080}, env("w")); err != nil {
		t.Errorf("upstream's numeric port refused: %v", err)
	}
}
