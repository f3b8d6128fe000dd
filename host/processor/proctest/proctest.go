// Package proctest owns what the processor domains' tests share: the real pubnet ledgers the
// SDK module ships, a component environment, building a processor from a config map, ledger
// wrappers and the SDK's classic transaction reader as an independent reference. Imported by
// test code only.
package proctest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// RealLedger is one of the two real pubnet ledgers shipped in the SDK module.
type RealLedger struct {
	Seq uint32
	Raw []byte
}

var (
	realOnce    sync.Once
	realLedgers []RealLedger
	realErr     error
)

// RealLedgers returns the two real pubnet ledgers the SDK module ships (test/fixture reads
// them), 58752000 first, then 53312000.
func RealLedgers(tb testing.TB) []RealLedger {
	tb.Helper()
	realOnce.Do(func() {
		var m map[uint32][]byte
		if m, realErr = fixture.RealLedgers(); realErr == nil {
			realLedgers = []RealLedger{
				{Seq: fixture.Ledger58752000, Raw: m[fixture.Ledger58752000]},
				{Seq: fixture.Ledger53312000, Raw: m[fixture.Ledger53312000]},
			}
		}
	})
	if realErr != nil {
		tb.Fatalf("loading real ledgers: %v", realErr)
	}
	return slices.Clone(realLedgers) // callers may sort theirs
}

// Env is a component environment for tests (fixed clock).
func Env() component.Env {
	return component.Env{Pipeline: "test", Name: "test", Logger: slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(), Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

// New builds a processor with its constructor from a config map (decoded strictly).
func New[C any](tb testing.TB, ctor func(*C, component.Env) (component.Processor, error), cfg map[string]any) component.Processor {
	tb.Helper()
	p, err := component.Construct(ctor, cfg, Env())
	if err != nil {
		tb.Fatalf("constructing a processor: %v", err)
	}
	return p
}

// Run builds a processor and runs it on one ledger (shared: its decode is shared by the test
// binary) with the records in of the processor before it.
func Run[C any](tb testing.TB, ctor func(*C, component.Env) (component.Processor, error), cfg map[string]any, raw []byte, in []component.Record) []component.Record {
	tb.Helper()
	recs, err := New(tb, ctor, cfg).Process(BG, Shared(tb, raw), in)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// Wrap wraps raw bytes in a ledger value with its own decode counter (the decodes it
// performed).
func Wrap(tb testing.TB, raw []byte) (*ledger.Ledger, *atomic.Int64) {
	tb.Helper()
	var d ledger.Decodes
	l, err := ledger.New(raw, &d)
	if err != nil {
		tb.Fatal(err)
	}
	return l, &d.Performed
}

var (
	sharedMu      sync.Mutex
	sharedLedgers = map[*byte]*ledger.Ledger{}
)

// Shared wraps raw once per test binary, so tests that do not count decodes share one decode.
func Shared(tb testing.TB, raw []byte) *ledger.Ledger {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if l, ok := sharedLedgers[&raw[0]]; ok {
		return l
	}
	l, err := ledger.New(raw, nil)
	if err != nil {
		tb.Fatal(err)
	}
	sharedLedgers[&raw[0]] = l
	return l
}

// RefTxs decodes the ledger and drains the SDK's classic transaction reader: the independent
// reference processors are checked against (pubnet's, as the real ledgers are).
func RefTxs(tb testing.TB, raw []byte) (xdr.LedgerCloseMeta, []ingest.LedgerTransaction) {
	tb.Helper()
	return RefTxsOn(tb, raw, network.PublicNetworkPassphrase)
}

// RefTxsOn is RefTxs for a ledger of the network with that passphrase (synthetic ledgers).
func RefTxsOn(tb testing.TB, raw []byte, passphrase string) (xdr.LedgerCloseMeta, []ingest.LedgerTransaction) {
	tb.Helper()
	var lcm xdr.LedgerCloseMeta
	if err := xdr.SafeUnmarshal(raw, &lcm); err != nil {
		tb.Fatal(err)
	}
	rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(passphrase, lcm)
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Close()
	var txs []ingest.LedgerTransaction
	for {
		tx, err := rd.Read()
		if err == io.EOF {
			return lcm, txs
		}
		if err != nil {
			tb.Fatal(err)
		}
		txs = append(txs, tx)
	}
}

// JSONOf marshals v to a generic map (numbers kept as json.Number).
func JSONOf(tb testing.TB, v any) map[string]any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// BG is the context processors run under in tests.
var BG = context.Background()

// Itoa formats an int64.
func Itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Checksum is a short order-independent digest of natural keys: record-for-record comparisons
// of a processor's output with its reference name it in failures.
func Checksum(keys []string) string {
	s := append([]string(nil), keys...)
	sort.Strings(s)
	h := sha256.Sum256([]byte(strings.Join(s, "\n")))
	return hex.EncodeToString(h[:8])
}
