package stream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

// A real zmq4 SUB socket connected to the consumer's PUB socket receives every record of a
// ledger as one message holding its JSON, in order.
func TestSaveToZeroMQSubscriber(t *testing.T) {
	z := construct(t, NewSaveToZeroMQ, map[string]any{"address": "tcp://127.0.0.1:0"}, env("SaveToZeroMQ")).(*ZeroMQ)
	addr := z.Addr().String()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("bound to %s", addr)
	}
	sub := zmq4.NewSub(bg)
	defer sub.Close()
	if err := sub.Dial("tcp://" + addr); err != nil {
		t.Fatal(err)
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1000)
	go func() {
		defer close(got)
		for {
			m, err := sub.Recv()
			if err != nil {
				return
			}
			got <- m.Bytes()
		}
	}()
	// A subscription reaches a PUB socket after the connection: publish probes until one
	// arrives (ZeroMQ's slow joiner), then the ledger under test.
	testutil.Eventually(t, 30*time.Second, "the subscriber receives a probe", func() bool {
		if err := z.Consume(bg, testLedger(t, 1), payments(1, 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			return true
		default:
			return false
		}
	})
	for len(got) > 0 { // probes still in flight
		<-got
	}
	want := payments(2, 50)
	if err := z.Consume(bg, testLedger(t, 2), want); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(want); {
		var b []byte
		select {
		case b = <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("received %d of %d messages", i, len(want))
		}
		var p payment
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("message %q: %v", b, err)
		}
		if p.Ledger == 1 {
			continue // a late probe
		}
		wb, _ := json.Marshal(want[i])
		if string(b) != string(wb) {
			t.Fatalf("message %d = %s, want %s", i, b, wb)
		}
		i++
	}
	st := z.Stats()
	if st["last_ledger"] != 2 || st["records_published"] < 51 {
		t.Fatalf("stats %v", st)
	}
	if err := z.Close(bg); err != nil {
		t.Fatal(err)
	}
}

// Without subscribers publishing neither blocks nor fails (at-most-once); bad addresses are
// config errors.
func TestSaveToZeroMQNoSubscriberAndConfig(t *testing.T) {
	z := construct(t, NewSaveToZeroMQ, map[string]any{"address": "tcp://127.0.0.1:0", "send_hwm": 10}, env("z"))
	for seq := uint32(1); seq <= 20; seq++ {
		if err := z.Consume(bg, testLedger(t, seq), payments(seq, 5)); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range []map[string]any{{}, {"address": "127.0.0.1:5555"}, {"address": "tcp://127.0.0.1:1", "send_hwm": 0}} {
		if _, err := NewSaveToZeroMQ(&ZeroMQConfig{Address: str(cfg["address"]), SendHWM: num(cfg, "send_hwm", 10)}, env("z")); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(m map[string]any, k string, def int) int {
	if v, ok := m[k].(int); ok {
		return v
	}
	return def
}
