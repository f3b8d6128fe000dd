package raw

import (
	"encoding/base64"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestLedgerReaderMatchesSDK compares LedgerReader's rows (view path) record for record with
// the SDK's classic LedgerTransactionReader on the full decode: same transactions in the same
// order, same hashes, success and operation counts, and XDR parts that are byte for byte the
// re-encoding of the decoded envelope, result and meta.
func TestLedgerReaderMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		p := proctest.New(t, NewLedgerReader, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := decodes.Load(); n != 0 {
			t.Fatalf("ledger %d: %d full decodes, want 0", rl.Seq, n)
		}
		_, txs := proctest.RefTxs(t, rl.Raw)
		if len(recs) != len(txs) || len(txs) == 0 {
			t.Fatalf("ledger %d: %d records, SDK reader has %d transactions", rl.Seq, len(recs), len(txs))
		}
		failed, ops := 0, 0
		for i, tx := range txs {
			got := recs[i].(TransactionMessage)
			ops += len(tx.Envelope.Operations())
			if !tx.Result.Successful() {
				failed++
			}
			if got.TransactionHash != tx.Result.TransactionHash.HexString() || got.TransactionIndex != int(tx.Index) ||
				got.Successful != tx.Result.Successful() || got.OperationCount != len(tx.Envelope.Operations()) ||
				got.FeeBump != tx.Envelope.IsFeeBump() || got.LedgerSeqNum != rl.Seq ||
				got.CloseTime != int64(tx.Ledger.ClosedAt().Unix()) {
				t.Fatalf("ledger %d tx %d: got %+v", rl.Seq, i, got)
			}
			for _, part := range []struct {
				name string
				got  string
				v    interface{ MarshalBinary() ([]byte, error) }
			}{{"envelope", got.EnvelopeXDR, tx.Envelope}, {"result", got.ResultXDR, tx.Result.Result}, {"meta", got.MetaXDR, tx.UnsafeMeta}} {
				want, err := part.v.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if part.got != base64.StdEncoding.EncodeToString(want) {
					t.Fatalf("ledger %d tx %d: %s XDR differs from the SDK's", rl.Seq, i, part.name)
				}
			}
			if got.NaturalKey() != "pubnet:"+proctest.Itoa(int64(rl.Seq))+":"+proctest.Itoa(int64(tx.Index)) {
				t.Fatalf("key %q", got.NaturalKey())
			}
		}
		// The envelope decodes back to the transaction it names.
		var env xdr.TransactionEnvelope
		if err := xdr.SafeUnmarshalBase64(recs[0].(TransactionMessage).EnvelopeXDR, &env); err != nil || env.Fee() != txs[0].Envelope.Fee() {
			t.Fatalf("envelope round trip: %v", err)
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["failed_transactions"] != float64(failed) || st["successful_transactions"] != float64(len(txs)-failed) ||
			st["operations_in_successful"]+st["operations_in_failed"] != float64(ops) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d transactions (%d failed), %d operations", rl.Seq, len(txs), failed, ops)
	}
}
