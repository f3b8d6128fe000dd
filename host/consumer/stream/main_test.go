package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/host/ledger"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// zmq4 v0.17.0: a PUB socket's Close does not stop its writer goroutine, which waits,
		// idle and with an empty queue, for ever (one per closed socket; see ZeroMQ's doc).
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
	)
}

var bg = context.Background()

func testLedger(t testing.TB, seq uint32) *ledger.Ledger { return consumertest.Ledger(t, seq) }

// payment is a test record shaped like a payment.
type payment struct {
	Ledger      uint32 `json:"ledger_sequence"`
	Index       int    `json:"index"`
	Type        string `json:"type"`
	From        string `json:"from"`
	To          string `json:"to"`
	AssetCode   string `json:"asset_code"`
	Amount      string `json:"amount"`
	PaymentID   string `json:"payment_id,omitempty"`
	MerchantID  string `json:"merchant_id,omitempty"`
	Royalty     uint64 `json:"royalty_amount,omitempty"`
	TxHash      string `json:"tx_hash,omitempty"`
	BlockHeight uint32 `json:"block_height,omitempty"`
	Pad         string `json:"pad,omitempty"`
}

func (payment) RecordKind() string   { return "payments" }
func (p payment) NaturalKey() string { return fmt.Sprintf("testnet:%d:%d", p.Ledger, p.Index) }

func payments(seq uint32, n int) []component.Record {
	out := make([]component.Record, n)
	for i := range out {
		out[i] = payment{Ledger: seq, Index: i, Type: "payment", From: fmt.Sprintf("GFROM%d", i%3), To: "GTO",
			AssetCode: []string{"XLM", "USDC"}[i%2], Amount: fmt.Sprintf("%d.5", i*10)}
	}
	return out
}

func env(name string) component.Env {
	return component.Env{Pipeline: "p", Name: name, Metrics: prometheus.NewRegistry(), Now: time.Now}
}

func construct[C any](t *testing.T, ctor func(*C, component.Env) (component.Consumer, error), cfg map[string]any, e component.Env) component.Consumer {
	t.Helper()
	c, err := component.Construct(ctor, cfg, e)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := c.(component.Starter); ok {
		if err := s.Start(bg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = c.Close(bg) })
	return c
}
