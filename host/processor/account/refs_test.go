package account

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refChanges is the independent reference for the change-based processors: the ledger's
// changes of one entry type, gathered per transaction from the SDK's transaction reader
// (LedgerTransaction.GetFeeChanges for every transaction, then GetChanges, then
// GetPostApplyFeeChanges; then the upgrades' changes) rather than through its change reader.
func refChanges(t testing.TB, raw []byte, typ xdr.LedgerEntryType) []ingest.Change {
	t.Helper()
	lcm, txs := proctest.RefTxs(t, raw)
	var all []ingest.Change
	for i := range txs {
		all = append(all, txs[i].GetFeeChanges()...)
	}
	for i := range txs {
		chs, err := txs[i].GetChanges()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, chs...)
	}
	for i := range txs {
		all = append(all, txs[i].GetPostApplyFeeChanges()...)
	}
	for _, u := range lcm.UpgradesProcessing() {
		all = append(all, ingest.GetChangesFromLedgerEntryChanges(u.Changes)...)
	}
	var out []ingest.Change
	for _, ch := range all {
		if ch.Type == typ {
			out = append(out, ch)
		}
	}
	return out
}

// rawChangeCounts counts the ledger's entry changes of one type straight from the decoded
// XDR, without the SDK's readers: every created/updated/removed/restored entry of the fee
// processing, the transaction meta (before, operations, after), the post-apply fee
// processing and the upgrades (state entries are the "before" halves of updates and
// removals, not changes of their own).
func rawChangeCounts(t testing.TB, raw []byte, typ xdr.LedgerEntryType) map[xdr.LedgerEntryChangeType]int {
	t.Helper()
	var lcm xdr.LedgerCloseMeta
	if err := xdr.SafeUnmarshal(raw, &lcm); err != nil {
		t.Fatal(err)
	}
	var groups []xdr.LedgerEntryChanges
	for i := 0; i < lcm.CountTransactions(); i++ {
		groups = append(groups, lcm.FeeProcessing(i))
		m := lcm.TxApplyProcessing(i)
		switch m.V {
		case 1:
			groups = append(groups, m.V1.TxChanges)
			for _, o := range m.V1.Operations {
				groups = append(groups, o.Changes)
			}
		case 2:
			groups = append(groups, m.V2.TxChangesBefore, m.V2.TxChangesAfter)
			for _, o := range m.V2.Operations {
				groups = append(groups, o.Changes)
			}
		case 3:
			groups = append(groups, m.V3.TxChangesBefore, m.V3.TxChangesAfter)
			for _, o := range m.V3.Operations {
				groups = append(groups, o.Changes)
			}
		case 4:
			groups = append(groups, m.V4.TxChangesBefore, m.V4.TxChangesAfter)
			for _, o := range m.V4.Operations {
				groups = append(groups, o.Changes)
			}
		default:
			t.Fatalf("transaction meta version %d", m.V)
		}
		if lcm.V == 2 {
			groups = append(groups, lcm.V2.TxProcessing[i].PostTxApplyFeeProcessing)
		}
	}
	for _, u := range lcm.UpgradesProcessing() {
		groups = append(groups, u.Changes)
	}
	counts := map[xdr.LedgerEntryChangeType]int{}
	for _, g := range groups {
		for _, c := range g {
			var et xdr.LedgerEntryType
			switch c.Type {
			case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
				et = c.Created.Data.Type
			case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
				et = c.Updated.Data.Type
			case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
				et = c.Removed.Type
			case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
				et = c.Restored.Data.Type
			default:
				continue
			}
			if et == typ {
				counts[c.Type]++
			}
		}
	}
	return counts
}

// countByType counts reference changes per change type.
func countByType(chs []ingest.Change) map[xdr.LedgerEntryChangeType]int {
	m := map[xdr.LedgerEntryChangeType]int{}
	for _, ch := range chs {
		m[ch.ChangeType]++
	}
	return m
}

// entryOf is the entry a change record describes: after the change, or before a removal.
func entryOf(ch ingest.Change) *xdr.LedgerEntry {
	if ch.Post != nil {
		return ch.Post
	}
	return ch.Pre
}
