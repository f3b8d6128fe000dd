package effects

import (
	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/keypair"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Balance-moving operations: account creation and merge, payments, path payments, offers'
// trades, inflation payouts and clawbacks.

func (o *operation) createAccount() {
	op := o.op.Body.MustCreateAccountOp()
	o.addAccount(op.Destination, hz.EffectAccountCreated, map[string]any{"starting_balance": amount.String(op.StartingBalance)})
	o.addMuxed(o.source, hz.EffectAccountDebited, map[string]any{"asset_type": "native", "amount": amount.String(op.StartingBalance)})
	o.addAccount(op.Destination, hz.EffectSignerCreated, map[string]any{"public_key": op.Destination.Address(), "weight": keypair.DefaultSignerWeight})
}

func (o *operation) payment() error {
	op := o.op.Body.MustPaymentOp()
	d := map[string]any{"amount": amount.String(op.Amount)}
	if err := assetDetails(d, op.Asset, ""); err != nil {
		return err
	}
	// Horizon gives both effects the same details.
	o.addMuxed(op.Destination, hz.EffectAccountCredited, d)
	o.addMuxed(o.source, hz.EffectAccountDebited, d)
	return nil
}

// pathPayment adds the credit of the destination, the debit of the source and the trades.
func (o *operation) pathPayment(dest xdr.MuxedAccount, destAsset xdr.Asset, received xdr.Int64,
	sendAsset xdr.Asset, sent xdr.Int64, claims []xdr.ClaimAtom) error {
	credit := map[string]any{"amount": amount.String(received)}
	if err := assetDetails(credit, destAsset, ""); err != nil {
		return err
	}
	o.addMuxed(dest, hz.EffectAccountCredited, credit)
	debit := map[string]any{"amount": amount.String(sent)}
	if err := assetDetails(debit, sendAsset, ""); err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectAccountDebited, debit)
	return o.trades(claims)
}

func (o *operation) pathPaymentStrictReceive() error {
	op := o.op.Body.MustPathPaymentStrictReceiveOp()
	res := o.tr.MustPathPaymentStrictReceiveResult()
	return o.pathPayment(op.Destination, op.DestAsset, op.DestAmount, op.SendAsset, res.SendAmount(), res.MustSuccess().Offers)
}

func (o *operation) pathPaymentStrictSend() error {
	op := o.op.Body.MustPathPaymentStrictSendOp()
	res := o.tr.MustPathPaymentStrictSendResult()
	return o.pathPayment(op.Destination, op.DestAsset, res.DestAmount(), op.SendAsset, op.SendAmount, res.MustSuccess().Offers)
}

// trades adds a trade effect for each side of every offer the operation crossed, and a
// liquidity_pool_trade effect for every pool it traded with; empty claims are skipped.
func (o *operation) trades(claims []xdr.ClaimAtom) error {
	for _, claim := range claims {
		if claim.AmountSold() == 0 && claim.AmountBought() == 0 {
			continue
		}
		if claim.Type == xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool {
			if err := o.poolTrade(claim.MustLiquidityPool()); err != nil {
				return err
			}
			continue
		}
		if err := o.offerTrade(claim); err != nil {
			return err
		}
	}
	return nil
}

// offerTrade adds the trade effects of the operation's source (the buyer) and of the offer's
// owner (the seller). A claim's "sold" is what the offer's owner sold.
func (o *operation) offerTrade(claim xdr.ClaimAtom) error {
	seller := claim.SellerId()
	buyer := map[string]any{
		"offer_id":      claim.OfferId(),
		"seller":        seller.Address(),
		"bought_amount": amount.String(claim.AmountSold()),
		"sold_amount":   amount.String(claim.AmountBought()),
	}
	if err := assetDetails(buyer, claim.AssetSold(), "bought_"); err != nil {
		return err
	}
	if err := assetDetails(buyer, claim.AssetBought(), "sold_"); err != nil {
		return err
	}
	owner := map[string]any{
		"offer_id":      claim.OfferId(),
		"bought_amount": amount.String(claim.AmountBought()),
		"sold_amount":   amount.String(claim.AmountSold()),
	}
	accountDetails(owner, o.source, "seller")
	if err := assetDetails(owner, claim.AssetBought(), "bought_"); err != nil {
		return err
	}
	if err := assetDetails(owner, claim.AssetSold(), "sold_"); err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectTrade, buyer)
	o.addAccount(seller, hz.EffectTrade, owner)
	return nil
}

// accountDetails sets <prefix> to the G address of a, and for a muxed account
// <prefix>_muxed and <prefix>_muxed_id.
func accountDetails(d map[string]any, a xdr.MuxedAccount, prefix string) {
	id := a.ToAccountId()
	d[prefix] = id.Address()
	if a.Type == xdr.CryptoKeyTypeKeyTypeMuxedEd25519 {
		d[prefix+"_muxed"] = a.Address()
		d[prefix+"_muxed_id"] = uint64(a.Med25519.Id)
	}
}

func (o *operation) accountMerge() {
	dest := o.op.Body.MustDestination()
	d := map[string]any{
		"amount":     amount.String(o.tr.MustAccountMergeResult().MustSourceAccountBalance()),
		"asset_type": "native",
	}
	o.addMuxed(o.source, hz.EffectAccountDebited, d)
	o.addMuxed(dest, hz.EffectAccountCredited, d)
	o.addMuxed(o.source, hz.EffectAccountRemoved, map[string]any{})
}

func (o *operation) inflation() {
	for _, p := range o.tr.MustInflationResult().MustPayouts() {
		o.addAccount(p.Destination, hz.EffectAccountCredited, map[string]any{"amount": amount.String(p.Amount), "asset_type": "native"})
	}
}

// clawback: Horizon credits the issuer (the source) although the asset is burnt, and debits
// the account clawed from.
func (o *operation) clawback() error {
	op := o.op.Body.MustClawbackOp()
	d := map[string]any{"amount": amount.String(op.Amount)}
	if err := assetDetails(d, op.Asset, ""); err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectAccountCredited, d)
	o.addMuxed(op.From, hz.EffectAccountDebited, d)
	return nil
}
