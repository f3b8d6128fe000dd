package raw

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// walkRawChanges walks the decoded ledger's raw LedgerEntryChanges by hand (fee processing,
// each transaction's meta, upgrades) and calls f for each entry that is a change (every type
// but STATE, which only precedes an update or removal).
func walkRawChanges(t *testing.T, lcm xdr.LedgerCloseMeta, f func(reason string, tx, op int, c xdr.LedgerEntryChange)) {
	t.Helper()
	add := func(reason string, tx, op int, chs xdr.LedgerEntryChanges) {
		for _, c := range chs {
			if c.Type != xdr.LedgerEntryChangeTypeLedgerEntryState {
				f(reason, tx, op, c)
			}
		}
	}
	if lcm.V != 1 {
		t.Fatalf("fixture ledger is LedgerCloseMeta V%d, the walk reads V1", lcm.V)
	}
	for i, tp := range lcm.V1.TxProcessing {
		tx := i + 1
		add("fee", tx, -1, tp.FeeProcessing)
		m := tp.TxApplyProcessing
		switch m.V {
		case 3:
			add("transaction", tx, -1, m.V3.TxChangesBefore)
			for k, op := range m.V3.Operations {
				add("operation", tx, k, op.Changes)
			}
			add("transaction", tx, -1, m.V3.TxChangesAfter)
		case 4:
			add("transaction", tx, -1, m.V4.TxChangesBefore)
			for k, op := range m.V4.Operations {
				add("operation", tx, k, op.Changes)
			}
			add("transaction", tx, -1, m.V4.TxChangesAfter)
		default:
			t.Fatalf("transaction meta V%d not walked", m.V)
		}
	}
	for _, up := range lcm.V1.UpgradesProcessing {
		add("upgrade", 0, -1, up.Changes)
	}
}

// rawChangeCounts counts the raw changes grouped as "reason tx op".
func rawChangeCounts(t *testing.T, lcm xdr.LedgerCloseMeta) map[string]int {
	n := map[string]int{}
	walkRawChanges(t, lcm, func(reason string, tx, op int, _ xdr.LedgerEntryChange) {
		n[fmt.Sprintf("%s %d %d", reason, tx, op)]++
	})
	return n
}

// TestLedgerChangesMatchesRawCount compares LedgerChanges (the SDK's change reader) with a
// count of the raw XDR changes made by hand, per reason, transaction and operation; and checks
// each row's entry encodings against its key.
func TestLedgerChangesMatchesRawCount(t *testing.T) {
	synth, synthTx := synthCreateAccount(t)
	type tcase struct {
		name  string
		raw   []byte
		synth bool
	}
	cases := []tcase{{"synthetic create_account", synth, true}}
	for _, rl := range proctest.RealLedgers(t) {
		cases = append(cases, tcase{"ledger " + proctest.Itoa(int64(rl.Seq)), rl.Raw, false})
	}
	for _, tc := range cases {
		var lcm xdr.LedgerCloseMeta
		if err := xdr.SafeUnmarshal(tc.raw, &lcm); err != nil {
			t.Fatal(err)
		}
		want := rawChangeCounts(t, lcm)
		recs := proctest.Run(t, NewLedgerChanges, map[string]any{"network": "pubnet"}, tc.raw, nil)
		got := map[string]int{}
		kinds := map[string]int{}
		keys := map[string]bool{}
		for i, r := range recs {
			c := r.(LedgerChange)
			tx := 0
			if c.TransactionIndex != nil {
				tx = *c.TransactionIndex
			}
			got[fmt.Sprintf("%s %d %d", c.Reason, tx, c.OperationIndex)]++
			kinds[c.ChangeType]++
			keys[c.NaturalKey()] = true
			if c.ChangeIndex != i || c.LedgerSequence != lcm.LedgerSequence() {
				t.Fatalf("%s: row %d: %+v", tc.name, i, c)
			}
			checkChangeEntry(t, c)
		}
		if len(got) != len(want) || len(recs) == 0 || len(keys) != len(recs) {
			t.Fatalf("%s: %d groups, raw XDR has %d; %d rows, %d keys", tc.name, len(got), len(want), len(recs), len(keys))
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: %s: %d changes, raw XDR has %d", tc.name, k, got[k], n)
			}
		}
		t.Logf("%s: %d changes %v", tc.name, len(recs), kinds)
		if tc.synth {
			found := false
			for _, r := range recs {
				c := r.(LedgerChange)
				found = found || c.ChangeType == "created" && c.EntryType == "LedgerEntryTypeAccount" &&
					c.OperationIndex == 0 && *c.TransactionIndex == synthTx+1
			}
			if !found {
				t.Errorf("synthetic: the created account is not a row")
			}
		}
	}
}

// checkChangeEntry decodes a row's entries and checks them against its key and change type.
func checkChangeEntry(t *testing.T, c LedgerChange) {
	t.Helper()
	var entry *xdr.LedgerEntry
	for _, s := range []*string{c.PreStateXDR, c.PostStateXDR} {
		if s == nil {
			continue
		}
		var e xdr.LedgerEntry
		if err := xdr.SafeUnmarshalBase64(*s, &e); err != nil {
			t.Fatalf("row %d: %v", c.ChangeIndex, err)
		}
		entry = &e
	}
	if entry == nil || (c.PreState == nil) != (c.ChangeType == "created" || c.ChangeType == "restored") ||
		(c.PostState == nil) != (c.ChangeType == "removed") || !json.Valid(*firstNonNil(c.PreState, c.PostState)) {
		t.Fatalf("row %d: entries do not fit a %s change", c.ChangeIndex, c.ChangeType)
	}
	key, err := entry.LedgerKey()
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := key.MarshalBinary()
	if fmt.Sprintf("%x", kb) != c.EntryKey || entry.Data.Type.String() != c.EntryType {
		t.Fatalf("row %d: key or type does not match the entry", c.ChangeIndex)
	}
}

func firstNonNil(a, b *json.RawMessage) *json.RawMessage {
	if a != nil {
		return a
	}
	return b
}
