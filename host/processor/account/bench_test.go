package account

import (
	"io"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkAccountData: the SDK's change reader on the full decode.
func BenchmarkAccountData(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewAccountData, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkTransformToAppTrustline: the SDK's change reader on the full decode.
func BenchmarkTransformToAppTrustline(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewTransformToAppTrustline, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkAccountTransaction: the SDK's transaction reader on the full decode, every
// transaction (no account filter).
func BenchmarkAccountTransaction(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewAccountTransaction, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkCreateAccountView: the processor's path, zero-copy transaction views.
func BenchmarkCreateAccountView(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewCreateAccount, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
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

// BenchmarkTransformToTickerAsset: the processor's path, zero-copy transaction views (only
// the envelopes of successful transactions with one of its four operations are decoded).
func BenchmarkTransformToTickerAsset(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewTransformToTickerAsset, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}
