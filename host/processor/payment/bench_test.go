package payment

import (
	"io"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkTransformToAppTradeView runs TransformToAppTrade (zero-copy transaction views) on
// ledger 58752000.
func BenchmarkTransformToAppTradeView(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewTransformToAppTrade, map[string]any{"network": "pubnet"})
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

// BenchmarkTransformToAppTradeFullDecode produces the same records the classic way: full
// decode of the ledger, LedgerTransactionReader.
func BenchmarkTransformToAppTradeFullDecode(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewTransformToAppTrade, map[string]any{"network": "pubnet"}).(*TransformToAppTrade)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	n := 0
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
			if !tx.Result.Successful() {
				continue
			}
			info := tradeTx{seq: l.Sequence(), closedAt: l.CloseTime(), hash: tx.Hash.HexString(), index: int(tx.Index)}
			env := tx.Envelope
			if out, err = p.trades(out, info, tx.Result.Result, func() (xdr.TransactionEnvelope, error) { return env, nil }); err != nil {
				b.Fatal(err)
			}
		}
		rd.Close()
		n = len(out)
	}
	if n != 24 {
		b.Fatalf("%d trades", n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
