package processor

import (
	"reflect"
	"testing"

	"github.com/stellar/go-stellar-sdk/gxdr"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/randxdr"
	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// sdkWalk is what the one walk replaces: the SDK's two.
func sdkWalk(v xdr.LedgerCloseMetaView) (txWalk, error) {
	parts, err := ingest.ExtractLedgerTxParts(v)
	if err != nil {
		return txWalk{}, err
	}
	events, err := ingest.EventsFromTxParts(parts)
	return txWalk{parts: parts, events: events}, err
}

// checkWalk: where the SDK reads the ledger, walkTxs returns the same parts and events; where
// the SDK fails, walkTxs fails too. It returns what walkTxs returned and counts the meta
// versions seen.
func checkWalk(t *testing.T, what string, raw []byte, versions map[int32]int) txWalk {
	t.Helper()
	v := xdr.LedgerCloseMetaView(raw)
	want, werr := sdkWalk(v)
	got, gerr := walkTxs(v)
	if werr != nil {
		if gerr == nil {
			t.Errorf("%s: the SDK fails (%v), walkTxs does not", what, werr)
		}
		return txWalk{}
	}
	if gerr != nil {
		t.Fatalf("%s: walkTxs: %v (the SDK reads it)", what, gerr)
	}
	// A ledger without transactions: the SDK returns nil parts, walkTxs empty ones.
	if len(got.parts) == 0 && len(want.parts) == 0 {
		got.parts, want.parts = nil, nil
	}
	if !reflect.DeepEqual(got.parts, want.parts) {
		t.Fatalf("%s: parts differ from ingest.ExtractLedgerTxParts", what)
	}
	if !reflect.DeepEqual(got.events, want.events) {
		t.Fatalf("%s: events differ from ingest.EventsFromTxParts", what)
	}
	for _, p := range got.parts {
		versions[p.Meta.MustV()]++
	}
	return got
}

func TestWalkTxsMatchesSDK(t *testing.T) {
	versions := map[int32]int{}
	real, err := fixture.RealLedgers()
	if err != nil {
		t.Fatal(err)
	}
	txs, events := 0, 0
	for seq, raw := range real {
		w := checkWalk(t, "real ledger", raw, versions)
		txs += len(w.parts)
		for _, e := range w.events {
			events += len(e.TransactionEvents)
			for _, op := range e.OperationEvents {
				events += len(op)
			}
		}
		// Cut short anywhere: an error exactly where the SDK's walk has one.
		for _, n := range []int{0, 3, 100, len(raw) / 3, len(raw) / 2, len(raw) - 1} {
			checkWalk(t, "truncated real ledger", raw[:n:n], versions)
		}
		t.Logf("ledger %d: %d bytes", seq, len(raw))
	}
	if txs == 0 || events == 0 {
		t.Fatalf("the real ledgers gave %d transactions, %d events: nothing compared", txs, events)
	}

	// Random ledgers of every LedgerCloseMeta version, with every TransactionMeta version.
	gen := randxdr.NewGenerator()
	gen.MaxVecLen = 3 // small ledgers: every version still comes up, the test stays quick
	lcmVersions := map[int32]int{}
	for i := range 400 {
		shape := &gxdr.LedgerCloseMeta{}
		gen.Next(shape, randxdr.LedgerCloseMetaPresets)
		var lcm xdr.LedgerCloseMeta
		if err := gxdr.Convert(shape, &lcm); err != nil {
			t.Fatal(err)
		}
		raw, err := lcm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		lcmVersions[lcm.V]++
		checkWalk(t, "random ledger", raw, versions)
		if i%4 == 0 {
			checkWalk(t, "truncated random ledger", raw[:len(raw)*2/3], versions)
		}
	}
	t.Logf("real ledgers: %d transactions, %d events; random ledgers by LedgerCloseMeta version %v; "+
		"transactions compared by TransactionMeta version %v", txs, events, lcmVersions, versions)
	for _, v := range []int32{0, 1, 2} {
		if lcmVersions[v] == 0 {
			t.Errorf("no random ledger of LedgerCloseMeta version %d", v)
		}
	}
	for _, v := range []int32{3, 4} {
		if versions[v] == 0 {
			t.Errorf("no transaction with TransactionMeta version %d compared", v)
		}
	}
}
