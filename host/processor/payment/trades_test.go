package payment

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

type refTrade struct {
	key, seller, sellAsset, buyAsset, sellAmount, buyAmount string
	opType                                                  xdr.OperationType
	buyer, pool                                             string // one of them
}

// horizonOpNames are Horizon's names of the trading operations.
var horizonOpNames = map[xdr.OperationType]string{
	xdr.OperationTypeManageSellOffer: "manage_sell_offer", xdr.OperationTypeManageBuyOffer: "manage_buy_offer",
	xdr.OperationTypeCreatePassiveSellOffer:   "create_passive_sell_offer",
	xdr.OperationTypePathPaymentStrictReceive: "path_payment_strict_receive",
	xdr.OperationTypePathPaymentStrictSend:    "path_payment_strict_send",
}

// refTrades walks the claim atoms of the operation results of the successful transactions
// (the SDK's classic transaction reader on a full decode), by operation type (a passive offer
// may carry a manage_sell_offer result, as Horizon's trades processor allows).
func refTrades(t testing.TB, raw []byte) (out []refTrade, zeroed int) {
	t.Helper()
	lcm, txs := proctest.RefTxs(t, raw)
	for _, tx := range txs {
		if !tx.Result.Successful() {
			continue
		}
		res, _ := tx.Result.OperationResults()
		for i, op := range tx.Envelope.Operations() {
			var atoms []xdr.ClaimAtom
			tr := res[i].Tr
			switch op.Body.Type {
			case xdr.OperationTypeManageSellOffer:
				atoms = tr.ManageSellOfferResult.Success.OffersClaimed
			case xdr.OperationTypeManageBuyOffer:
				atoms = tr.ManageBuyOfferResult.Success.OffersClaimed
			case xdr.OperationTypeCreatePassiveSellOffer:
				if tr.Type == xdr.OperationTypeManageSellOffer {
					atoms = tr.ManageSellOfferResult.Success.OffersClaimed
				} else {
					atoms = tr.CreatePassiveSellOfferResult.Success.OffersClaimed
				}
			case xdr.OperationTypePathPaymentStrictReceive:
				atoms = tr.PathPaymentStrictReceiveResult.Success.Offers
			case xdr.OperationTypePathPaymentStrictSend:
				atoms = tr.PathPaymentStrictSendResult.Success.Offers
			}
			src := tx.Envelope.SourceAccount()
			if op.SourceAccount != nil {
				src = *op.SourceAccount
			}
			for n, a := range atoms {
				if a.AmountSold() == 0 && a.AmountBought() == 0 {
					zeroed++
					continue
				}
				r := refTrade{opType: op.Body.Type, key: fmt.Sprintf("pubnet:%d:%s:%d:%d", lcm.LedgerSequence(), tx.Hash.HexString(), i, n),
					seller: src.ToAccountId().Address(), sellAsset: a.AssetBought().StringCanonical(), buyAsset: a.AssetSold().StringCanonical(),
					sellAmount: amount.String(a.AmountBought()), buyAmount: amount.String(a.AmountSold())}
				if a.Type == xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool {
					r.pool = hex.EncodeToString(a.LiquidityPool.LiquidityPoolId[:])
				} else {
					r.buyer = a.SellerId().Address()
				}
				out = append(out, r)
			}
		}
	}
	return out, zeroed
}

func TestTransformToAppTradeMatchesClaimAtoms(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want, zeroed := refTrades(t, rl.Raw)
		p := proctest.New(t, NewTransformToAppTrade, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, []component.Record{PaymentRecord{}})
		if err != nil {
			t.Fatal(err)
		}
		if decodes.Load() != 0 {
			t.Errorf("%d full decodes, want none (view path)", decodes.Load())
		}
		if len(recs) != len(want) || len(want) == 0 {
			t.Fatalf("ledger %d: %d trades, the claim atoms say %d", rl.Seq, len(recs), len(want))
		}
		pools := 0
		var gk, wk []string
		for i, r := range recs {
			g, w := r.(AppTrade), want[i]
			gk, wk = append(gk, g.NaturalKey()), append(wk, w.key)
			js := proctest.JSONOf(t, g)
			if g.NaturalKey() != w.key || g.SellerID != w.seller || g.SellAsset != w.sellAsset || g.BuyAsset != w.buyAsset ||
				g.SellAmount != w.sellAmount || g.BuyAmount != w.buyAmount || g.Type != "trade" || g.LedgerSequence != rl.Seq ||
				g.OperationType != horizonOpNames[w.opType] {
				t.Fatalf("ledger %d trade %d: got %v want %+v", rl.Seq, i, js, w)
			}
			if w.pool != "" {
				pools++
				if g.TradeType != "liquidity_pool" || g.LiquidityPool == nil || *g.LiquidityPool != w.pool || js["buyer_id"] != nil || js["orderbook_id"] != nil {
					t.Fatalf("ledger %d pool trade %d: %v", rl.Seq, i, js)
				}
			} else if g.TradeType != "orderbook" || g.BuyerID == nil || *g.BuyerID != w.buyer || g.OrderbookID == nil || js["liquidity_pool"] != nil {
				t.Fatalf("ledger %d offer trade %d: %v want %+v", rl.Seq, i, js, w)
			}
			if g.PriceD == 0 || g.Price != float64(g.PriceN)/float64(g.PriceD) {
				t.Fatalf("price %v = %d/%d", g.Price, g.PriceN, g.PriceD)
			}
			var sd, bd map[string]any
			if json.Unmarshal(g.SellAssetDetails, &sd) != nil || json.Unmarshal(g.BuyAssetDetails, &bd) != nil {
				t.Fatalf("asset details %s %s", g.SellAssetDetails, g.BuyAssetDetails)
			}
			if (g.SellAsset == "native") != (sd["code"] == "XLM" && sd["issuer"] == nil && sd["type"] == "native") {
				t.Fatalf("sell asset %s details %v", g.SellAsset, sd)
			}
			if g.BuyAsset != "native" && bd["code"].(string)+":"+bd["issuer"].(string) != g.BuyAsset {
				t.Fatalf("buy asset %s details %v", g.BuyAsset, bd)
			}
		}
		if proctest.Checksum(gk) != proctest.Checksum(wk) {
			t.Fatal("key checksum differs")
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["trades_found"] != float64(len(recs)) || st["liquidity_pool_trades"] != float64(pools) || pools == 0 || pools == len(recs) {
			t.Errorf("ledger %d: stats %v (%d pool trades)", rl.Seq, st, pools)
		}
		t.Logf("ledger %d: %d trades (%d liquidity pool, %d zeroed atoms skipped)", rl.Seq, len(recs), pools, zeroed)
	}
}

// stellar-core gives some create_passive_sell_offer operations a manage_sell_offer result
// (not on the real ledgers): the trade is found and named after the operation.
func TestTransformToAppTradePassiveOfferWithSellOfferResult(t *testing.T) {
	p := proctest.New(t, NewTransformToAppTrade, map[string]any{"network": "pubnet"}).(*TransformToAppTrade)
	seller := xdr.MustAddress("GCAQSQVXUJZPDND4EUWQYRCJ64IGQ3REQK2CVSXHUQQ26GCTEMIGJDSC")
	taker := xdr.MustAddress("GBKYZ5F4GXQVAC66ZWL4RXXR4XIFOZRZA74UZFKNAA7VRPKIJ25L7PDN")
	usd := xdr.MustNewCreditAsset("USD", seller.Address())
	atom := xdr.ClaimAtom{Type: xdr.ClaimAtomTypeClaimAtomTypeOrderBook, OrderBook: &xdr.ClaimOfferAtom{
		SellerId: seller, OfferId: 9, AssetSold: usd, AmountSold: 20e7, AssetBought: xdr.MustNewNativeAsset(), AmountBought: 10e7}}
	res := xdr.TransactionResult{Result: xdr.TransactionResultResult{Code: xdr.TransactionResultCodeTxSuccess, Results: &[]xdr.OperationResult{{
		Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{Type: xdr.OperationTypeManageSellOffer,
			ManageSellOfferResult: &xdr.ManageSellOfferResult{Code: xdr.ManageSellOfferResultCodeManageSellOfferSuccess,
				Success: &xdr.ManageOfferSuccessResult{OffersClaimed: []xdr.ClaimAtom{atom}}}}}}}}
	env := xdr.TransactionEnvelope{Type: xdr.EnvelopeTypeEnvelopeTypeTx, V1: &xdr.TransactionV1Envelope{Tx: xdr.Transaction{
		SourceAccount: taker.ToMuxedAccount(), Operations: []xdr.Operation{{Body: xdr.OperationBody{
			Type: xdr.OperationTypeCreatePassiveSellOffer, CreatePassiveSellOfferOp: &xdr.CreatePassiveSellOfferOp{
				Selling: xdr.MustNewNativeAsset(), Buying: usd, Amount: 10e7, Price: xdr.Price{N: 2, D: 1}}}}}}}}
	out, err := p.trades(nil, tradeTx{seq: 7, hash: "ab", index: 1}, res, func() (xdr.TransactionEnvelope, error) { return env, nil })
	if err != nil || len(out) != 1 {
		t.Fatalf("%d trades, %v", len(out), err)
	}
	g := out[0].(AppTrade)
	if g.OperationType != "create_passive_sell_offer" || g.SellerID != taker.Address() || *g.BuyerID != seller.Address() ||
		g.SellAsset != "native" || g.SellAmount != "10.0000000" || g.BuyAsset != usd.StringCanonical() || g.BuyAmount != "20.0000000" ||
		g.Price != 2 || *g.OrderbookID != "9" || g.NaturalKey() != "pubnet:7:ab:0:0" {
		t.Fatalf("%+v", g)
	}
}
