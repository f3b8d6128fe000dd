package effects

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/amount"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Trustlines: change_trust, allow_trust and set_trust_line_flags (and the pool revocations
// the last two can cause).

// changeTrust adds one trustline_created / _updated / _removed effect: for the first trustline
// change of the operation's asset kind (an issued asset or pool shares; changing a pool share
// trustline also touches the pool's asset trustlines).
func (o *operation) changeTrust() error {
	op := o.op.Body.MustChangeTrustOp()
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeTrustline {
			continue
		}
		var typ hz.EffectType
		var tl xdr.TrustLineEntry
		switch {
		case ch.Pre == nil && ch.Post != nil:
			typ, tl = hz.EffectTrustlineCreated, ch.Post.Data.MustTrustLine()
		case ch.Pre != nil && ch.Post == nil:
			typ, tl = hz.EffectTrustlineRemoved, ch.Pre.Data.MustTrustLine()
		case ch.Pre != nil && ch.Post != nil:
			typ, tl = hz.EffectTrustlineUpdated, ch.Post.Data.MustTrustLine()
		default:
			return fmt.Errorf("trustline change without a before or after state")
		}
		if op.Line.Type != tl.Asset.Type {
			continue
		}
		d := map[string]any{"limit": amount.String(op.Limit)}
		if tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare {
			if err := poolShareDetails(d, *op.Line.LiquidityPool); err != nil {
				return err
			}
		} else if err := assetDetails(d, op.Line.ToAsset(), ""); err != nil {
			return err
		}
		o.addMuxed(o.source, typ, d)
		return nil
	}
	return nil
}

// poolShareDetails sets asset_type liquidity_pool_shares and the pool's id.
func poolShareDetails(d map[string]any, p xdr.LiquidityPoolParameters) error {
	d["asset_type"] = "liquidity_pool_shares"
	if p.Type != xdr.LiquidityPoolTypeLiquidityPoolConstantProduct {
		return fmt.Errorf("unknown liquidity pool type %d", p.Type)
	}
	cp := p.MustConstantProduct()
	id, err := xdr.NewPoolId(cp.AssetA, cp.AssetB, cp.Fee)
	if err != nil {
		return fmt.Errorf("computing a pool id: %w", err)
	}
	d["liquidity_pool_id"] = poolID(id)
	return nil
}

// allowTrust adds the (deprecated, still emitted) trustline_authorized /
// _authorized_to_maintain_liabilities / _deauthorized effect, then trustline_flags_updated,
// then a pool revocation if the deauthorization caused one.
func (o *operation) allowTrust() error {
	op := o.op.Body.MustAllowTrustOp()
	asset := op.Asset.ToAsset(o.source.ToAccountId())
	d := map[string]any{"trustor": op.Trustor.Address()}
	if err := assetDetails(d, asset, ""); err != nil {
		return err
	}
	var set, clr *xdr.Uint32
	switch f := xdr.TrustLineFlags(op.Authorize); {
	case f.IsAuthorized():
		//lint:ignore SA1019 Horizon still emits it next to trustline_flags_updated
		o.addMuxed(o.source, hz.EffectTrustlineAuthorized, d)
		v := xdr.Uint32(xdr.TrustLineFlagsAuthorizedFlag)
		set = &v
	case f.IsAuthorizedToMaintainLiabilitiesFlag():
		//lint:ignore SA1019 Horizon still emits it next to trustline_flags_updated
		o.addMuxed(o.source, hz.EffectTrustlineAuthorizedToMaintainLiabilities, d)
		v := xdr.Uint32(xdr.TrustLineFlagsAuthorizedToMaintainLiabilitiesFlag)
		set = &v
	default:
		//lint:ignore SA1019 Horizon still emits it next to trustline_flags_updated
		o.addMuxed(o.source, hz.EffectTrustlineDeauthorized, d)
		v := xdr.Uint32(xdr.TrustLineFlagsAuthorizedFlag | xdr.TrustLineFlagsAuthorizedToMaintainLiabilitiesFlag)
		clr = &v
	}
	if err := o.trustLineFlags(op.Trustor, asset, set, clr); err != nil {
		return err
	}
	return o.poolRevoked()
}

func (o *operation) setTrustLineFlags() error {
	op := o.op.Body.MustSetTrustLineFlagsOp()
	if err := o.trustLineFlags(op.Trustor, op.Asset, &op.SetFlags, &op.ClearFlags); err != nil {
		return err
	}
	return o.poolRevoked()
}

// trustLineFlags adds trustline_flags_updated (when set or clear is given, even if zero).
func (o *operation) trustLineFlags(trustor xdr.AccountId, asset xdr.Asset, set, clr *xdr.Uint32) error {
	if set == nil && clr == nil {
		return nil
	}
	d := map[string]any{"trustor": trustor.Address()}
	if err := assetDetails(d, asset, ""); err != nil {
		return err
	}
	if set != nil {
		trustLineFlagDetails(d, xdr.TrustLineFlags(*set), true)
	}
	if clr != nil {
		trustLineFlagDetails(d, xdr.TrustLineFlags(*clr), false)
	}
	o.addMuxed(o.source, hz.EffectTrustlineFlagsUpdated, d)
	return nil
}

// trustLineFlagDetails uses the keys Horizon's ingestion writes (its misspelt
// "authorized_to_maintain_liabilites" included; protocols/horizon/effects reads it with a
// "_flag" suffix).
func trustLineFlagDetails(d map[string]any, f xdr.TrustLineFlags, value bool) {
	if f.IsAuthorized() {
		d["authorized_flag"] = value
	}
	if f.IsAuthorizedToMaintainLiabilitiesFlag() {
		d["authorized_to_maintain_liabilites"] = value
	}
	if f.IsClawbackEnabledFlag() {
		d["clawback_enabled_flag"] = value
	}
}
