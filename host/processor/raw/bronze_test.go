package raw

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestBronzeExtractorsMatchesSDK checks the bronze tables against independent counts: one
// ledgers_row_v2 whose counts match the SDK's transaction reader; transactions_row_v2 row for
// row against the same reader; ttl_snapshot_v1 against a hand walk of the raw XDR changes of
// TTL entries.
func TestBronzeExtractorsMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		recs := proctest.Run(t, NewBronzeExtractors, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		byKind := map[string][]component.Record{}
		for _, r := range recs {
			byKind[r.RecordKind()] = append(byKind[r.RecordKind()], r)
		}
		lcm, txs := proctest.RefTxs(t, rl.Raw)
		if len(byKind["ledgers_row_v2"]) != 1 || len(byKind["transactions_row_v2"]) != len(txs) {
			t.Fatalf("ledger %d: %d ledger rows, %d transaction rows (SDK %d)", rl.Seq,
				len(byKind["ledgers_row_v2"]), len(byKind["transactions_row_v2"]), len(txs))
		}
		led := byKind["ledgers_row_v2"][0].(BronzeLedgerRow)
		var failed, ops, okOps uint32
		for i, tx := range txs {
			r := byKind["transactions_row_v2"][i].(BronzeTransactionRow)
			n := uint32(len(tx.Envelope.Operations()))
			ops += n
			if tx.Result.Successful() {
				okOps += n
			} else {
				failed++
			}
			env, _ := xdr.MarshalBase64(tx.Envelope)
			if r.TransactionHash != tx.Result.TransactionHash.HexString() || r.Successful != tx.Result.Successful() ||
				r.FeeCharged != int64(tx.Result.Result.FeeCharged) || r.OperationCount != int32(n) || *r.TxEnvelope != env ||
				r.SourceAccount != tx.Envelope.SourceAccount().ToAccountId().Address() || r.TransactionIndex != int(tx.Index) ||
				*r.LedgerRange != rl.Seq/10000*10000 {
				t.Fatalf("ledger %d tx %d: %+v", rl.Seq, i, r)
			}
			if sd, ok := tx.GetSorobanData(); ok != (r.SorobanResourcesInstructions != nil) ||
				ok && *r.SorobanResourcesInstructions != int64(sd.Resources.Instructions) {
				t.Fatalf("ledger %d tx %d: soroban instructions %v", rl.Seq, i, r.SorobanResourcesInstructions)
			}
		}
		if led.Sequence != rl.Seq || led.LedgerHash != lcm.LedgerHash().HexString() || led.FailedTxCount != failed ||
			led.SuccessfulTxCount != uint32(len(txs))-failed || *led.TxSetOperationCount != ops || *led.OperationCount != okOps ||
			*led.EvictedKeysCount != uint32(len(lcm.V1.EvictedKeys)) || led.NodeID == nil || led.LedgerHeader == nil {
			t.Errorf("ledger %d: %+v", rl.Seq, led)
		}
		var ttl int
		walkRawChanges(t, lcm, func(_ string, _, _ int, c xdr.LedgerEntryChange) {
			if entryOf(c).Data.Type == xdr.LedgerEntryTypeTtl {
				ttl++
			}
		})
		if len(byKind["ttl_snapshot_v1"]) != ttl || ttl == 0 {
			t.Errorf("ledger %d: %d ttl rows, raw XDR has %d TTL changes", rl.Seq, len(byKind["ttl_snapshot_v1"]), ttl)
		}
		keys := map[string]bool{}
		for _, r := range recs {
			keys[r.RecordKind()+" "+r.NaturalKey()] = true
		}
		if len(keys) != len(recs) {
			t.Errorf("ledger %d: %d keys for %d rows", rl.Seq, len(keys), len(recs))
		}
		t.Logf("ledger %d: 1 ledger, %d transactions, %d TTL changes", rl.Seq, len(txs), ttl)
	}
}

// entryOf is the entry a raw change carries (the key's type for a removal).
func entryOf(c xdr.LedgerEntryChange) xdr.LedgerEntry {
	switch c.Type {
	case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
		return *c.Created
	case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
		return *c.Updated
	case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
		return *c.Restored
	case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
		return xdr.LedgerEntry{Data: xdr.LedgerEntryData{Type: c.Removed.Type}}
	}
	return *c.State
}
