package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// realLedger is one of the two real pubnet ledgers shipped in the SDK module.
type realLedger struct {
	seq uint32
	raw []byte
}

var (
	realOnce    sync.Once
	realLedgers []realLedger
	realErr     error
)

// loadRealLedgers returns the two real pubnet ledgers the SDK module ships (test/fixture reads
// them), 58752000 first.
func loadRealLedgers(tb testing.TB) []realLedger {
	tb.Helper()
	realOnce.Do(func() {
		var m map[uint32][]byte
		if m, realErr = fixture.RealLedgers(); realErr == nil {
			realLedgers = []realLedger{
				{seq: fixture.Ledger58752000, raw: m[fixture.Ledger58752000]},
				{seq: fixture.Ledger53312000, raw: m[fixture.Ledger53312000]},
			}
		}
	})
	if realErr != nil {
		tb.Fatalf("loading real ledgers: %v", realErr)
	}
	return realLedgers
}

// testEnv is a component environment for tests.
func testEnv() component.Env {
	return component.Env{Pipeline: "test", Name: "test", Logger: slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(), Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

// newProc builds a processor with its constructor from a config map (decoded strictly).
func newProc[C any](t testing.TB, ctor func(*C, component.Env) (component.Processor, error), cfg map[string]any) component.Processor {
	t.Helper()
	p, err := component.Construct(ctor, cfg, testEnv())
	if err != nil {
		t.Fatalf("constructing a processor: %v", err)
	}
	return p
}

// wrap wraps raw bytes in a ledger value with its own decode counter.
func wrap(t testing.TB, raw []byte) (*ledger.Ledger, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	l, err := ledger.New(raw, &n)
	if err != nil {
		t.Fatal(err)
	}
	return l, &n
}

// refTxs decodes the ledger and drains the SDK's classic transaction reader.
func refTxs(t testing.TB, raw []byte) (xdr.LedgerCloseMeta, []ingest.LedgerTransaction) {
	t.Helper()
	var lcm xdr.LedgerCloseMeta
	if err := xdr.SafeUnmarshal(raw, &lcm); err != nil {
		t.Fatal(err)
	}
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, lcm)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var txs []ingest.LedgerTransaction
	for {
		tx, err := rd.Read()
		if err == io.EOF {
			return lcm, txs
		}
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
}

// jsonOf marshals v to a generic map.
func jsonOf(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

var bg = context.Background()

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

var (
	sharedMu      sync.Mutex
	sharedLedgers = map[*byte]*ledger.Ledger{}
)

// shared wraps raw once per test binary, so tests that do not count decodes share one decode.
func shared(t testing.TB, raw []byte) *ledger.Ledger {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if l, ok := sharedLedgers[&raw[0]]; ok {
		return l
	}
	l, err := ledger.New(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	sharedLedgers[&raw[0]] = l
	return l
}
