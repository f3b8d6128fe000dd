package stream

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-zeromq/zmq4"
)

const benchPerLedger = 500

// benchLedgers consumes b.N ledgers of 500 records and reports records/s.
func benchLedgers(b *testing.B, consume func(seq uint32) error) {
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := consume(uint32(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchPerLedger)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkSaveToZeroMQ: publishing to one connected subscriber that drains.
func BenchmarkSaveToZeroMQ(b *testing.B) {
	z, err := NewSaveToZeroMQ(&ZeroMQConfig{Address: "tcp://127.0.0.1:0", SendHWM: 100000}, env("z"))
	if err != nil {
		b.Fatal(err)
	}
	zz := z.(*ZeroMQ)
	if err := zz.Start(bg); err != nil {
		b.Fatal(err)
	}
	defer z.Close(bg)
	sub := zmq4.NewSub(bg)
	defer sub.Close()
	if err := sub.Dial("tcp://" + zz.Addr().String()); err != nil {
		b.Fatal(err)
	}
	_ = sub.SetOption(zmq4.OptionSubscribe, "")
	go func() {
		for {
			if _, err := sub.Recv(); err != nil {
				return
			}
		}
	}()
	benchLedgers(b, func(seq uint32) error { return z.Consume(bg, testLedger(b, seq), payments(seq, benchPerLedger)) })
}

// BenchmarkSaveToWebSocket: broadcasting to one registered client that reads everything.
func BenchmarkSaveToWebSocket(b *testing.B) {
	c, err := NewSaveToWebSocket(&WebSocketConfig{Address: "127.0.0.1:0", Path: "/ws", MaxQueueSize: 1 << 20, MaxClients: 10, WriteTimeout: 10 * time.Second}, env("w"))
	if err != nil {
		b.Fatal(err)
	}
	w := c.(*WebSocket)
	if err := w.Start(bg); err != nil {
		b.Fatal(err)
	}
	defer w.Close(bg)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+w.Addr().String()+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	if _, _, err := conn.Read(ctx); err != nil { // welcome
		b.Fatal(err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"register","filters":{}}`)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := conn.Read(ctx); err != nil { // registered
		b.Fatal(err)
	}
	want := int64(b.N * benchPerLedger)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := int64(0); n < want; n++ {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	benchLedgers(b, func(seq uint32) error {
		return w.Consume(bg, testLedger(b, seq), payments(seq, benchPerLedger))
	})
	<-done // every message read by the client
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "delivered/s")
}

// BenchmarkPublishToGooglePubSub: publishing to the library's fake server, waiting for the
// acknowledgements of each ledger.
func BenchmarkPublishToGooglePubSub(b *testing.B) {
	startFakeB(b)
	c, err := NewPublishToGooglePubSub(&PubSubConfig{ProjectID: "p", TopicID: "bench"}, env("ps"))
	if err != nil {
		b.Fatal(err)
	}
	p := c.(*PubSub)
	if err := p.Start(bg); err != nil {
		b.Fatal(err)
	}
	defer p.Close(bg)
	benchLedgers(b, func(seq uint32) error { return p.Consume(bg, testLedger(b, seq), payments(seq, benchPerLedger)) })
}
