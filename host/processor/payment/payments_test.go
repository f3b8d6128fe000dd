package payment

import (
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

type refPayment struct {
	key    string
	opType xdr.OperationType
	asset  xdr.Asset
	amount int64 // delivered, stroops
}

// refPayments walks the operations of every successful transaction (classic full decode).
func refPayments(t testing.TB, raw []byte) []refPayment {
	t.Helper()
	lcm, txs := proctest.RefTxs(t, raw)
	var out []refPayment
	for _, tx := range txs {
		if !tx.Result.Successful() {
			continue
		}
		res, _ := tx.Result.OperationResults()
		for i, op := range tx.Envelope.Operations() {
			r := refPayment{key: fmt.Sprintf("pubnet:%d:%s:%d", lcm.LedgerSequence(), tx.Hash.HexString(), i), opType: op.Body.Type}
			switch op.Body.Type {
			case xdr.OperationTypePayment:
				r.asset, r.amount = op.Body.PaymentOp.Asset, int64(op.Body.PaymentOp.Amount)
			case xdr.OperationTypePathPaymentStrictReceive:
				r.asset, r.amount = op.Body.PathPaymentStrictReceiveOp.DestAsset, int64(op.Body.PathPaymentStrictReceiveOp.DestAmount)
			case xdr.OperationTypePathPaymentStrictSend:
				sr := res[i].Tr.PathPaymentStrictSendResult
				r.asset, r.amount = op.Body.PathPaymentStrictSendOp.DestAsset, int64(sr.DestAmount())
			default:
				continue
			}
			out = append(out, r)
		}
	}
	return out
}

func TestFilterPaymentsMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want := refPayments(t, rl.Raw)
		recs := proctest.Run(t, NewFilterPayments, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		if len(recs) != len(want) || len(want) == 0 {
			t.Fatalf("ledger %d: %d payments, SDK walk finds %d", rl.Seq, len(recs), len(want))
		}
		var gk, wk []string
		types := map[string]int{}
		for i, r := range recs {
			g, w := r.(PaymentRecord), want[i]
			gk, wk = append(gk, g.NaturalKey()), append(wk, w.key)
			types[g.Type]++
			if g.NaturalKey() != w.key || g.AmountRaw != w.amount || g.canonical() != w.asset.StringCanonical() ||
				g.OperationID != processor.OperationID(rl.Seq, g.TransactionIndex, g.OperationIndex) {
				t.Fatalf("ledger %d payment %d: got %+v want %+v (%q vs %q)", rl.Seq, i, g, w, g.canonical(), w.asset.StringCanonical())
			}
			js := proctest.JSONOf(t, g)
			if g.Type == "payment" && (js["source_amount"] != nil || js["source_asset_type"] != nil) {
				t.Fatalf("plain payment with source side: %v", js)
			}
			if g.Type != "payment" && (g.SourceAmount == nil || g.SourceAssetType == nil) {
				t.Fatalf("path payment without source side: %v", js)
			}
			if (g.MemoType == "none") != (js["memo"] == nil) || (g.AssetCode == nil) != (js["asset_issuer"] == nil) {
				t.Fatalf("nulls: %v", js)
			}
		}
		if proctest.Checksum(gk) != proctest.Checksum(wk) {
			t.Fatal("key checksum differs")
		}
		t.Logf("ledger %d: %d payments %v", rl.Seq, len(recs), types)
	}
}

func TestFilterPaymentsFilters(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	all := proctest.Run(t, NewFilterPayments, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	var credit PaymentRecord
	for _, r := range all {
		if p := r.(PaymentRecord); p.AssetCode != nil {
			credit = p
			break
		}
	}
	if credit.AssetCode == nil {
		t.Fatal("fixture ledger lacks a credit payment")
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		pred func(PaymentRecord) bool
	}{
		{"min amount", map[string]any{"min_amount": "100"}, func(p PaymentRecord) bool { return p.AmountRaw >= 100_0000000 }},
		{"min amount as number", map[string]any{"min_amount": 0.5}, func(p PaymentRecord) bool { return p.AmountRaw >= 5000000 }},
		{"native", map[string]any{"asset_code": "XLM"}, func(p PaymentRecord) bool { return p.AssetCode == nil }},
		{"credit code", map[string]any{"asset_code": *credit.AssetCode}, func(p PaymentRecord) bool {
			return p.AssetCode != nil && *p.AssetCode == *credit.AssetCode
		}},
		{"credit code and issuer, min", map[string]any{"asset_code": *credit.AssetCode, "asset_issuer": *credit.AssetIssuer, "min_amount": "1"},
			func(p PaymentRecord) bool {
				return p.AssetCode != nil && p.canonical() == credit.canonical() && p.AmountRaw >= 1e7
			}},
		{"canonical", map[string]any{"asset_code": credit.canonical()}, func(p PaymentRecord) bool { return p.canonical() == credit.canonical() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"network": "pubnet"}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			recs := proctest.Run(t, NewFilterPayments, cfg, rl.Raw, nil)
			n := 0
			for _, r := range all {
				if tc.pred(r.(PaymentRecord)) {
					n++
				}
			}
			if len(recs) != n || n == 0 || n == len(all) {
				t.Fatalf("%d payments, want %d of %d (and a selective filter)", len(recs), n, len(all))
			}
			for _, r := range recs {
				if !tc.pred(r.(PaymentRecord)) {
					t.Fatalf("filter let through %+v", r)
				}
			}
		})
	}
	for _, cfg := range []map[string]any{
		{"network": "pubnet", "min_amount": "lots"},
		{"network": "pubnet", "asset_issuer": credit.AssetIssuer},
		{"network": "pubnet", "asset_code": "native", "asset_issuer": *credit.AssetIssuer},
		{"network": "pubnet", "asset_code": "USDC", "asset_issuer": "GNOPE"},
		{"network": "pubnet", "min": "1"},
	} {
		if _, err := component.Construct(NewFilterPayments, cfg, proctest.Env()); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
	if recs := proctest.Run(t, NewFilterPayments, map[string]any{"network": "pubnet", "asset_code": "NOPE"}, rl.Raw, nil); recs == nil || len(recs) != 0 {
		t.Errorf("no match must give a non-nil empty slice, got %#v", recs)
	}
}

func TestTransformToAppPayment(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	filtered := proctest.Run(t, NewFilterPayments, map[string]any{"network": "pubnet", "asset_code": "native"}, rl.Raw, nil)
	apps := proctest.Run(t, NewTransformToAppPayment, map[string]any{"network": "pubnet"}, rl.Raw, filtered)
	if len(apps) != len(filtered) || len(apps) == 0 {
		t.Fatalf("%d app payments from %d payments", len(apps), len(filtered))
	}
	for i, r := range apps {
		a, p := r.(AppPayment), filtered[i].(PaymentRecord)
		if a.NaturalKey() != p.NaturalKey() || a.SourceAccountID != p.From || a.DestinationAccountID != p.To ||
			a.AssetCode != "native" || a.Amount != p.Amount || a.Type != p.Type || a.Timestamp != fmt.Sprint(p.ClosedAt.Unix()) {
			t.Fatalf("app payment %d: %+v from %+v", i, a, p)
		}
	}
	// First in the chain (no input): it reads the ledger's payments itself.
	standalone := proctest.Run(t, NewTransformToAppPayment, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	if want := len(refPayments(t, rl.Raw)); len(standalone) != want {
		t.Fatalf("standalone: %d app payments, want %d", len(standalone), want)
	}
	// Its own filters (upstream keys).
	first := standalone[0].(AppPayment)
	byAddr := proctest.Run(t, NewTransformToAppPayment, map[string]any{"network": "pubnet", "addresses": []any{first.DestinationAccountID}}, rl.Raw, nil)
	if len(byAddr) == 0 || len(byAddr) == len(standalone) {
		t.Fatalf("addresses filter: %d of %d", len(byAddr), len(standalone))
	}
	for _, r := range byAddr {
		a := r.(AppPayment)
		if a.SourceAccountID != first.DestinationAccountID && a.DestinationAccountID != first.DestinationAccountID {
			t.Fatalf("addresses filter let through %+v", a)
		}
	}
	// Records of other kinds in the input are ignored.
	if out := proctest.Run(t, NewTransformToAppPayment, map[string]any{"network": "pubnet"}, rl.Raw, []component.Record{raw.LedgerSummary{}}); len(out) != 0 {
		t.Fatalf("%d app payments from a non-payment record", len(out))
	}
}
