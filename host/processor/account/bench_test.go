package account

import (
	"io"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// benchLedger runs a processor on ledger 58752000, a fresh ledger value (so a fresh decode
// where the processor needs one) per iteration, and reports ns/ledger.
func benchLedger(b *testing.B, p component.Processor) {
	raw := proctest.RealLedgers(b)[0].Raw
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		if _, err := p.Process(proctest.BG, l, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

// BenchmarkAccountData: the SDK's change reader on the full decode.
func BenchmarkAccountData(b *testing.B) {
	benchLedger(b, proctest.New(b, NewAccountData, map[string]any{"network": "pubnet"}))
}

// BenchmarkTransformToAppTrustline: the SDK's change reader on the full decode.
func BenchmarkTransformToAppTrustline(b *testing.B) {
	benchLedger(b, proctest.New(b, NewTransformToAppTrustline, map[string]any{"network": "pubnet"}))
}

// BenchmarkAccountTransaction: the SDK's transaction reader on the full decode, every
// transaction (no account filter).
func BenchmarkAccountTransaction(b *testing.B) {
	benchLedger(b, proctest.New(b, NewAccountTransaction, map[string]any{"network": "pubnet"}))
}

// BenchmarkCreateAccountView: the processor's path, zero-copy transaction views.
func BenchmarkCreateAccountView(b *testing.B) {
	benchLedger(b, proctest.New(b, NewCreateAccount, map[string]any{"network": "pubnet"}))
}

// BenchmarkCreateAccountFullDecode produces the same records the classic way: full decode,
// LedgerTransactionReader.
func BenchmarkCreateAccountFullDecode(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewCreateAccount, map[string]any{"network": "pubnet"}).(*CreateAccount)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		lcm, err := l.Decoded()
		if err != nil {
			b.Fatal(err)
		}
		rd, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, *lcm)
		if err != nil {
			b.Fatal(err)
		}
		var out []component.Record
		for {
			tx, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if tx.Result.Successful() {
				out = p.operations(out, l, tx.Hash.HexString(), int(tx.Index), &tx.Envelope)
			}
		}
		rd.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
