package wallet

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/effects"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

func benchProcessor(b *testing.B, p component.Processor, decoded bool) {
	proctest.Bench(b, p, proctest.RealLedgers(b)[0].Raw, nil, decoded)
}

var pubnet = map[string]any{"network": "pubnet"}

// BenchmarkTransactionXDRExtractor: the view path (no full decode), a fresh ledger value each
// time.
func BenchmarkTransactionXDRExtractor(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewTransactionXDRExtractor, pubnet), false)
}

// BenchmarkTransactionXDRFullDecode produces the same XDR the classic way: full decode,
// LedgerTransactionReader, re-encoding each envelope, result pair and meta.
func BenchmarkTransactionXDRFullDecode(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		err := processor.EachTransaction(l, network.PublicNetworkPassphrase, func(tx *ingest.LedgerTransaction) error {
			for _, v := range []interface{ MarshalBinary() ([]byte, error) }{tx.Envelope, tx.Result, tx.UnsafeMeta} {
				bin, err := v.MarshalBinary()
				if err != nil {
					return err
				}
				_ = b64(bin)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

func BenchmarkParticipantExtractor(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewParticipantExtractor, pubnet), false)
}

func BenchmarkParticipantExtractorDecoded(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewParticipantExtractor, pubnet), true)
}

func BenchmarkWalletBackend(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewWalletBackend, pubnet), false)
}

func BenchmarkWalletBackendDecoded(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewWalletBackend, pubnet), true)
}

// BenchmarkWalletChain runs upstream's wallet-backend chain (TransactionXDRExtractor ->
// WalletBackend -> ParticipantExtractor -> StellarEffects) on ledger 58752000, one shared
// decode per ledger.
func BenchmarkWalletChain(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	chain := []component.Processor{
		proctest.New(b, NewTransactionXDRExtractor, pubnet), proctest.New(b, NewWalletBackend, pubnet),
		proctest.New(b, NewParticipantExtractor, pubnet), proctest.New(b, effects.NewStellarEffects, pubnet),
	}
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		var recs []component.Record
		for _, p := range chain {
			var err error
			if recs, err = p.Process(proctest.BG, l, recs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
