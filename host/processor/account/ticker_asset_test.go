package account

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refAsset is what the test expects of one record, from the SDK's classic transaction reader.
type refAsset struct {
	key, kind, asset, amount string
}

// assetString is the SDK's own rendering of an asset (xdr.Asset.String: "native" or
// "type/code/issuer"), independent of the processor's Extract.
func assetString(a xdr.Asset) string { return a.String() }

// refTickerAssets walks the operations of the successful transactions on a full decode
// (ingest.LedgerTransactionReader) and counts the four operation kinds.
func refTickerAssets(t testing.TB, raw []byte, passphrase string) ([]refAsset, map[string]int) {
	t.Helper()
	lcm, txs := pt.RefTxsOn(t, raw, passphrase)
	var out []refAsset
	counts := map[string]int{}
	for _, tx := range txs {
		if !tx.Result.Successful() {
			continue
		}
		for i, op := range tx.Envelope.Operations() {
			r := refAsset{key: fmt.Sprintf("pubnet:%d:%s:%d", lcm.LedgerSequence(), tx.Hash.HexString(), i)}
			switch b := op.Body; b.Type {
			case xdr.OperationTypeSetTrustLineFlags:
				r.kind, r.asset = "set_trust_line_flags", assetString(b.SetTrustLineFlagsOp.Asset)
			case xdr.OperationTypeChangeTrust:
				r.kind = "change_trust"
				if l := b.ChangeTrustOp.Line; l.Type == xdr.AssetTypeAssetTypePoolShare {
					cp := l.LiquidityPool.ConstantProduct
					id, err := xdr.NewPoolId(cp.AssetA, cp.AssetB, cp.Fee)
					if err != nil {
						t.Fatal(err)
					}
					r.asset = fmt.Sprintf("liquidity_pool_share/POOL/%x", id[:])
				} else {
					r.asset = assetString(l.ToAsset())
				}
			case xdr.OperationTypePayment:
				r.kind, r.asset, r.amount = "payment", assetString(b.PaymentOp.Asset), fmt.Sprint(int64(b.PaymentOp.Amount))
			case xdr.OperationTypeCreateClaimableBalance:
				cb := b.CreateClaimableBalanceOp
				r.kind, r.asset, r.amount = "create_claimable_balance", assetString(cb.Asset), fmt.Sprint(int64(cb.Amount))
			default:
				continue
			}
			counts[r.kind]++
			out = append(out, r)
		}
	}
	return out, counts
}

// recordAsset renders a record's asset as xdr.Asset.String does.
func recordAsset(r TickerAsset) string {
	if r.AssetType == "native" {
		if r.Code != "XLM" || r.Issuer != "" {
			return fmt.Sprintf("bad native %q/%q", r.Code, r.Issuer)
		}
		return "native"
	}
	return r.AssetType + "/" + r.Code + "/" + r.Issuer
}

func checkTickerAssets(t *testing.T, raw []byte, passphrase string, recs []component.Record) map[string]int {
	t.Helper()
	want, counts := refTickerAssets(t, raw, passphrase)
	if len(recs) != len(want) {
		t.Fatalf("%d ticker_assets records, the operations have %d (%v)", len(recs), len(want), counts)
	}
	for i, rec := range recs {
		g, w := rec.(TickerAsset), want[i]
		if g.NaturalKey() != w.key || g.OperationType != w.kind || recordAsset(g) != w.asset || g.Amount != w.amount {
			t.Fatalf("record %d: got %s %s %s amount %q; want %+v", i, g.NaturalKey(), g.OperationType, recordAsset(g), g.Amount, w)
		}
		// Deterministic: the times are the ledger's, not the wall clock's.
		if !g.LastChecked.Equal(g.ClosedAt) || g.LastValid == nil || !g.LastValid.Equal(g.ClosedAt) || !g.IsValid ||
			g.FirstSeenLedger != g.LedgerSequence || g.DisplayDecimals != 7 {
			t.Fatalf("record %d: times/validity %+v", i, g)
		}
		if wantType := map[bool]string{true: "claimable_balance", false: g.OperationType}[g.OperationType == "create_claimable_balance"]; g.Type != wantType {
			t.Fatalf("record %d: type %q, want %q", i, g.Type, wantType)
		}
		if (g.TrustlineSetFlags != nil) != (g.OperationType == "set_trust_line_flags") {
			t.Fatalf("record %d: trustline flags on a %s", i, g.OperationType)
		}
	}
	return counts
}

func TestTransformToTickerAssetMatchesOperations(t *testing.T) {
	total := map[string]int{}
	for _, rl := range pt.RealLedgers(t) {
		recs := pt.Run(t, NewTransformToTickerAsset, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		counts := checkTickerAssets(t, rl.Raw, "Public Global Stellar Network ; September 2015", recs)
		t.Logf("ledger %d: %d records %v", rl.Seq, len(recs), counts)
		for k, n := range counts {
			total[k] += n
		}
		// A replay gives the same records, field for field.
		again := pt.Run(t, NewTransformToTickerAsset, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		a, _ := json.Marshal(recs)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("ledger %d: a second run differs", rl.Seq)
		}
	}
	// The real ledgers have payment (153 + 9), change_trust (11 + 4) and
	// create_claimable_balance (85 + 54) operations and no set_trust_line_flags: the synthetic
	// ledger below has one.
	if total["payment"] == 0 || total["change_trust"] == 0 || total["create_claimable_balance"] == 0 {
		t.Fatalf("real ledgers: %v", total)
	}
}

func TestTransformToTickerAssetSynthetic(t *testing.T) {
	const issuer, holder, poolFeeSrc = 9, 2, 3
	usd := pt.USD(issuer)
	balance := pt.BalanceID(1)
	params := pt.PoolParams(issuer)
	raw := pt.SynthLedger(t, []pt.SynthTx{
		{Name: "set_trust_line_flags", Source: pt.Plain(issuer), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeSetTrustLineFlags, Body: xdr.SetTrustLineFlagsOp{Trustor: pt.Acct(holder), Asset: usd, SetFlags: 1, ClearFlags: 4},
				Result:  xdr.SetTrustLineFlagsResult{Code: xdr.SetTrustLineFlagsResultCodeSetTrustLineFlagsSuccess},
				Changes: pt.Updated(pt.Trustline(holder, usd, 0, 1000, 4), pt.Trustline(holder, usd, 0, 1000, 1))},
		}},
		{Name: "create_claimable_balance and a pool share trustline", Source: pt.Plain(holder), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeCreateClaimableBalance, Body: xdr.CreateClaimableBalanceOp{Asset: usd, Amount: 50_0000000,
				Claimants: []xdr.Claimant{{Type: xdr.ClaimantTypeClaimantTypeV0, V0: &xdr.ClaimantV0{Destination: pt.Acct(poolFeeSrc),
					Predicate: xdr.ClaimPredicate{Type: xdr.ClaimPredicateTypeClaimPredicateUnconditional}}}}},
				Result: xdr.CreateClaimableBalanceResult{Code: xdr.CreateClaimableBalanceResultCodeCreateClaimableBalanceSuccess, BalanceId: &balance}},
			{Type: xdr.OperationTypeChangeTrust, Body: xdr.ChangeTrustOp{Limit: 1000, Line: xdr.ChangeTrustAsset{Type: xdr.AssetTypeAssetTypePoolShare,
				LiquidityPool: &xdr.LiquidityPoolParameters{Type: xdr.LiquidityPoolTypeLiquidityPoolConstantProduct, ConstantProduct: &params}}},
				Result: xdr.ChangeTrustResult{Code: xdr.ChangeTrustResultCodeChangeTrustSuccess}},
		}},
		{Name: "failed payment", Source: pt.Plain(holder), Failed: true, Ops: []pt.SynthOp{
			{Type: xdr.OperationTypePayment, Body: xdr.PaymentOp{Destination: pt.Plain(issuer), Asset: usd, Amount: 1},
				Result: xdr.PaymentResult{Code: xdr.PaymentResultCodePaymentUnderfunded}},
		}},
	})
	recs := pt.Run(t, NewTransformToTickerAsset, map[string]any{"network": "pubnet"}, raw, nil)
	counts := checkTickerAssets(t, raw, "Public Global Stellar Network ; September 2015", recs)
	if counts["set_trust_line_flags"] != 1 || counts["create_claimable_balance"] != 1 || counts["change_trust"] != 1 || len(recs) != 3 {
		t.Fatalf("synthetic ledger: %d records %v (the failed payment must be skipped)", len(recs), counts)
	}
	flags := recs[0].(TickerAsset)
	if *flags.TrustlineSetFlags != 1 || *flags.TrustlineClearFlags != 4 || flags.AuthRequired || flags.AuthRevocable ||
		flags.Code != "USD" || flags.Issuer != pt.Addr(issuer) || flags.AssetType != "credit_alphanum4" {
		t.Fatalf("set_trust_line_flags: %+v", flags)
	}
	if cb := recs[1].(TickerAsset); cb.Type != "claimable_balance" || cb.Amount != "500000000" {
		t.Fatalf("create_claimable_balance: %+v", cb)
	}
	if pool := recs[2].(TickerAsset); pool.Code != "POOL" || len(pool.Issuer) != 64 || strings.Trim(pool.Issuer, "0123456789abcdef") != "" {
		t.Fatalf("pool share: %+v", pool)
	}
}
