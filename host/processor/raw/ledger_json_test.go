package raw

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestLedgerToJSONRoundTrips decodes LedgerToJSON's output back and checks its key fields
// against the SDK's transaction reader: header, every transaction, every operation body (the
// XDR decodes back to the very operation), each operation's entry changes and events.
func TestLedgerToJSONRoundTrips(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		recs := proctest.Run(t, NewLedgerToJSON, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		got := recs[0].(LedgerJSON)
		// The record as a consumer sees it: marshal and read back.
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			LedgerJSON
			Transactions []TxJSON `json:"transactions"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		lcm, txs := proctest.RefTxs(t, rl.Raw)
		h := lcm.LedgerHeaderHistoryEntry().Header
		if back.Sequence != rl.Seq || back.LedgerHash != lcm.LedgerHash().HexString() ||
			back.PreviousLedgerHash != lcm.PreviousLedgerHash().HexString() || back.ClosedAtMillis != int64(h.ScpValue.CloseTime)*1000 ||
			back.TotalCoins != int64(h.TotalCoins) || back.FeePool != int64(h.FeePool) || back.BaseReserve != uint32(h.BaseReserve) {
			t.Errorf("ledger %d header: %+v", rl.Seq, back.LedgerJSON)
		}
		if len(back.Transactions) != len(txs) {
			t.Fatalf("ledger %d: %d transactions, SDK %d", rl.Seq, len(back.Transactions), len(txs))
		}
		failed, changes, events := 0, 0, 0
		for i, tx := range txs {
			g := back.Transactions[i]
			charged := int64(tx.Result.Result.FeeCharged)
			if g.TransactionHash != tx.Result.TransactionHash.HexString() || g.Account != tx.Envelope.SourceAccount().ToAccountId().Address() ||
				g.FeeCharged != charged || g.Successful != tx.Result.Successful() || g.AccountSequence != tx.Envelope.SeqNum() ||
				len(g.Operations) != len(tx.Envelope.Operations()) || (g.TransactionResultCode == "") != tx.Result.Successful() {
				t.Fatalf("ledger %d tx %d: %+v", rl.Seq, i, g)
			}
			if !g.Successful {
				failed++
			}
			evs, err := tx.GetTransactionEvents()
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Events) != len(evs.TransactionEvents) {
				t.Fatalf("ledger %d tx %d: %d tx events, SDK %d", rl.Seq, i, len(g.Events), len(evs.TransactionEvents))
			}
			events += len(g.Events)
			for k, op := range tx.Envelope.Operations() {
				o := g.Operations[k]
				var body xdr.OperationBody
				if err := xdr.SafeUnmarshalBase64(o.Body, &body); err != nil {
					t.Fatal(err)
				}
				want, _ := op.Body.MarshalBinary()
				have, _ := body.MarshalBinary()
				if !bytes.Equal(want, have) || o.Type != op.Body.Type.String() {
					t.Fatalf("ledger %d tx %d op %d: body does not round-trip", rl.Seq, i, k)
				}
				chs, err := tx.GetOperationChanges(uint32(k))
				if err != nil {
					t.Fatal(err)
				}
				if len(o.LedgerEntryChanges) != len(chs) {
					t.Fatalf("ledger %d tx %d op %d: %d changes, SDK %d", rl.Seq, i, k, len(o.LedgerEntryChanges), len(chs))
				}
				for c, ch := range chs {
					var data xdr.LedgerEntryData
					if err := xdr.SafeUnmarshalBase64(o.LedgerEntryChanges[c].EntryData, &data); err != nil {
						t.Fatal(err)
					}
					if data.Type != ch.Type {
						t.Fatalf("ledger %d tx %d op %d change %d: entry type %v, SDK %v", rl.Seq, i, k, c, data.Type, ch.Type)
					}
				}
				changes += len(chs)
				var opEvents int
				if k < len(evs.OperationEvents) {
					opEvents = len(evs.OperationEvents[k])
				}
				if len(o.Events) != opEvents {
					t.Fatalf("ledger %d tx %d op %d: %d events, SDK %d", rl.Seq, i, k, len(o.Events), opEvents)
				}
				events += opEvents
			}
		}
		if back.FailedTransactionCount != failed || back.SuccessfulTransactionCount != len(txs)-failed || changes == 0 {
			t.Errorf("ledger %d: counts %d/%d, want %d failed; %d changes", rl.Seq, back.SuccessfulTransactionCount, back.FailedTransactionCount, failed, changes)
		}
		t.Logf("ledger %d: %d txs (%d failed), %d operation changes, %d events, %d bytes of JSON", rl.Seq, len(txs), failed, changes, events, len(b))
	}
}

func TestCoreResultCode(t *testing.T) {
	for c, want := range map[xdr.TransactionResultCode]string{
		xdr.TransactionResultCodeTxBadSeq:              "txBAD_SEQ",
		xdr.TransactionResultCodeTxFailed:              "txFAILED",
		xdr.TransactionResultCodeTxFeeBumpInnerFailed:  "txFEE_BUMP_INNER_FAILED",
		xdr.TransactionResultCodeTxInsufficientBalance: "txINSUFFICIENT_BALANCE",
		xdr.TransactionResultCodeTxBadMinSeqAgeOrGap:   "txBAD_MIN_SEQ_AGE_OR_GAP",
	} {
		if got := coreResultCode(c); got != want {
			t.Errorf("%v: %q, want %q", c, got, want)
		}
	}
}
