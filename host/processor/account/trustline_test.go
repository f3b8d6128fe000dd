package account

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// checkTrustlines compares TransformToAppTrustline's records with the reference changes.
func checkTrustlines(t *testing.T, seq uint32, raw []byte, recs []component.Record) map[string]int {
	t.Helper()
	want := refChanges(t, raw, xdr.LedgerEntryTypeTrustline)
	counts := rawChangeCounts(t, raw, xdr.LedgerEntryTypeTrustline)
	if got := countByType(want); fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Fatalf("ledger %d: the reference disagrees with the raw count: %v vs %v", seq, got, counts)
	}
	if len(recs) != len(want) || len(want) == 0 {
		t.Fatalf("ledger %d: %d trustline records, the SDK reports %d changes", seq, len(recs), len(want))
	}
	kinds := map[string]int{}
	var gk, wk []string
	for i, r := range recs {
		g, w := r.(AppTrustline), want[i]
		tl := entryOf(w).Data.MustTrustLine()
		var asset string
		if tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare {
			asset = "POOL:" + hex.EncodeToString(tl.Asset.LiquidityPoolId[:])
		} else {
			asset = tl.Asset.ToAsset().StringCanonical()
		}
		wkey := fmt.Sprintf("pubnet:%d:%d:%s:%s", seq, i, tl.AccountId.Address(), asset)
		gk, wk = append(gk, g.NaturalKey()), append(wk, wkey)
		kinds[g.Action]++
		if g.NaturalKey() != wkey || g.LedgerEntryChange != uint32(w.ChangeType) || g.Balance != fmt.Sprint(int64(tl.Balance)) ||
			g.Limit != fmt.Sprint(int64(tl.Limit)) || g.AuthFlags != uint32(tl.Flags) || g.LedgerSeq != seq ||
			g.IsPoolShare != (tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare) || g.Timestamp != fmt.Sprint(g.ClosedAt.Unix()) {
			t.Fatalf("ledger %d change %d: got %+v, SDK change %v", seq, i, g, w)
		}
		if w.Pre != nil && w.Post != nil {
			if g.PreviousFlags == nil || *g.PreviousFlags != uint32(w.Pre.Data.TrustLine.Flags) {
				t.Fatalf("ledger %d change %d: previous flags %v", seq, i, g.PreviousFlags)
			}
		} else if g.PreviousFlags != nil || g.PreviousLimit != nil {
			t.Fatalf("ledger %d change %d: previous values on a %s", seq, i, g.Action)
		}
		wantType := "trustline"
		if w.Transaction != nil && w.Reason == ingest.LedgerEntryChangeReasonOperation {
			if op, _ := w.Transaction.GetOperation(w.OperationIndex); op.Body.Type == xdr.OperationTypeSetTrustLineFlags || op.Body.Type == xdr.OperationTypeAllowTrust {
				wantType = "trustline_flags"
			}
		}
		if g.Type != wantType {
			t.Fatalf("ledger %d change %d: type %s, want %s", seq, i, g.Type, wantType)
		}
	}
	if proctest.Checksum(gk) != proctest.Checksum(wk) {
		t.Fatal("key checksum differs")
	}
	return kinds
}

func TestTransformToAppTrustlineMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		p := proctest.New(t, NewTransformToAppTrustline, map[string]any{"network": "pubnet"})
		recs, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), []component.Record{AccountRecord{}})
		if err != nil {
			t.Fatal(err)
		}
		kinds := checkTrustlines(t, rl.Seq, rl.Raw, recs) // the input record is not forwarded
		if kinds["created"] == 0 || kinds["removed"] == 0 || kinds["updated"] == 0 {
			t.Errorf("ledger %d: %v (the fixture has all three)", rl.Seq, kinds)
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["trustlines_found"] != float64(len(recs)) || st["removed"] != float64(kinds["removed"]) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d trustline changes %v", rl.Seq, len(recs), kinds)
	}
}

func TestTransformToAppTrustlineSynthetic(t *testing.T) {
	raw := synthLedger(t)
	recs := proctest.Run(t, NewTransformToAppTrustline, map[string]any{"network": "pubnet"}, raw, nil)
	kinds := checkTrustlines(t, synthSeq, raw, recs)
	if kinds["created"] != 2 || kinds["removed"] != 1 || kinds["updated"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		g := r.(AppTrustline)
		js := proctest.JSONOf(t, g)
		switch {
		case g.IsPoolShare:
			seen["pool"] = true
			if g.PoolID == nil || *g.PoolID != hex.EncodeToString(synthPool[:]) || g.AssetCode != "POOL" || g.AssetIssuer != *g.PoolID {
				t.Fatalf("pool share: %v", js)
			}
		case g.Type == "trustline_flags":
			seen["flags"] = true
			if g.AccountID != synthF.Address() || g.Action != "updated" || *g.PreviousFlags != 0 || g.AuthFlags != 1 ||
				!g.Authorized || g.AuthorizedToMaintainLiabilities || *g.PreviousLimit != "1000000000" || g.TxHash == nil {
				t.Fatalf("flags: %v", js)
			}
		case g.Action == "removed":
			seen["removed"] = true
			if g.AccountID != synthA.Address() || g.AssetCode != "USD" || g.AssetIssuer != synthIssuer.Address() ||
				js["pool_id"] != nil || js["previous_flags"] != nil {
				t.Fatalf("removed: %v", js)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("synthetic cases seen: %v", seen)
	}
}
