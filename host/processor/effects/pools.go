package effects

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/protocols/horizon/base"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Liquidity pools: deposits, withdrawals, trades with a pool, pool creation and removal, and
// revocations (a deauthorized trustor's pool shares turned into claimable balances).

// poolDelta is the change of a pool's reserves and shares in one operation (after - before).
type poolDelta struct {
	reserveA, reserveB, shares xdr.Int64
}

var errNoPoolChange = errors.New("liquidity pool change not found")

// pool returns the pool entry (its state after the operation, or before it if it was removed)
// and its delta, for the first pool change of the operation (of pool id, when id is not nil).
func (o *operation) pool(id *xdr.PoolId) (*xdr.LiquidityPoolEntry, poolDelta, error) {
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeLiquidityPool {
			continue
		}
		var lp *xdr.LiquidityPoolEntry
		var pre, post poolDelta
		for i, e := range []*xdr.LedgerEntry{ch.Pre, ch.Post} {
			if e == nil {
				continue
			}
			entry := e.Data.MustLiquidityPool()
			if id != nil && entry.LiquidityPoolId != *id {
				continue
			}
			cp, ok := entry.Body.GetConstantProduct()
			if !ok {
				return nil, poolDelta{}, fmt.Errorf("unexpected liquidity pool type %d", entry.Body.Type)
			}
			lp = &entry
			if i == 0 {
				pre = poolDelta{cp.ReserveA, cp.ReserveB, cp.TotalPoolShares}
			} else {
				post = poolDelta{cp.ReserveA, cp.ReserveB, cp.TotalPoolShares}
			}
		}
		if lp == nil {
			continue
		}
		return lp, poolDelta{post.reserveA - pre.reserveA, post.reserveB - pre.reserveB, post.shares - pre.shares}, nil
	}
	return nil, poolDelta{}, errNoPoolChange
}

// poolDetails is Horizon's description of a pool (protocols/horizon/effects.LiquidityPool).
func poolDetails(lp *xdr.LiquidityPoolEntry) map[string]any {
	cp := lp.Body.MustConstantProduct()
	return map[string]any{
		"id":               poolID(lp.LiquidityPoolId),
		"fee_bp":           uint32(cp.Params.Fee),
		"type":             "constant_product",
		"total_trustlines": strconv.FormatInt(int64(cp.PoolSharesTrustLineCount), 10),
		"total_shares":     amount.String(cp.TotalPoolShares),
		"reserves":         reserves(cp.Params, cp.ReserveA, cp.ReserveB),
	}
}

func reserves(p xdr.LiquidityPoolConstantProductParameters, a, b xdr.Int64) []base.AssetAmount {
	return []base.AssetAmount{
		{Asset: p.AssetA.StringCanonical(), Amount: amount.String(a)},
		{Asset: p.AssetB.StringCanonical(), Amount: amount.String(b)},
	}
}

func (o *operation) poolTrade(claim xdr.ClaimLiquidityAtom) error {
	lp, _, err := o.pool(&claim.LiquidityPoolId)
	if err != nil {
		return fmt.Errorf("trade with pool %s: %w", poolID(claim.LiquidityPoolId), err)
	}
	o.addMuxed(o.source, hz.EffectLiquidityPoolTrade, map[string]any{
		"liquidity_pool": poolDetails(lp),
		"sold":           map[string]string{"asset": claim.AssetSold.StringCanonical(), "amount": amount.String(claim.AmountSold)},
		"bought":         map[string]string{"asset": claim.AssetBought.StringCanonical(), "amount": amount.String(claim.AmountBought)},
	})
	return nil
}

func (o *operation) poolDeposit() error {
	op := o.op.Body.MustLiquidityPoolDepositOp()
	lp, delta, err := o.pool(&op.LiquidityPoolId)
	if err != nil {
		return err
	}
	cp := lp.Body.MustConstantProduct()
	o.addMuxed(o.source, hz.EffectLiquidityPoolDeposited, map[string]any{
		"liquidity_pool":     poolDetails(lp),
		"reserves_deposited": reserves(cp.Params, delta.reserveA, delta.reserveB),
		"shares_received":    amount.String(delta.shares),
	})
	return nil
}

func (o *operation) poolWithdraw() error {
	op := o.op.Body.MustLiquidityPoolWithdrawOp()
	lp, delta, err := o.pool(&op.LiquidityPoolId)
	if err != nil {
		return err
	}
	cp := lp.Body.MustConstantProduct()
	o.addMuxed(o.source, hz.EffectLiquidityPoolWithdrew, map[string]any{
		"liquidity_pool":    poolDetails(lp),
		"reserves_received": reserves(cp.Params, -delta.reserveA, -delta.reserveB),
		"shares_redeemed":   amount.String(-delta.shares),
	})
	return nil
}

// poolRevoked adds, when deauthorizing a trustor moved its pool shares' reserves into
// claimable balances, the claimable balance effects and liquidity_pool_revoked.
func (o *operation) poolRevoked() error {
	lp, delta, err := o.pool(nil)
	if errors.Is(err, errNoPoolChange) {
		return nil
	}
	if err != nil {
		return err
	}
	byAsset := map[string]string{}
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeClaimableBalance || ch.Pre != nil || ch.Post == nil {
			continue
		}
		cb := ch.Post.Data.MustClaimableBalance()
		id, err := o.claimableBalanceCreated(cb)
		if err != nil {
			return err
		}
		byAsset[cb.Asset.StringCanonical()] = id
	}
	if len(byAsset) == 0 {
		return nil
	}
	cp := lp.Body.MustConstantProduct()
	revoked := make([]map[string]string, 0, 2)
	for _, aa := range reserves(cp.Params, -delta.reserveA, -delta.reserveB) {
		if id, ok := byAsset[aa.Asset]; ok {
			revoked = append(revoked, map[string]string{"asset": aa.Asset, "amount": aa.Amount, "claimable_balance_id": id})
		}
	}
	o.addMuxed(o.source, hz.EffectLiquidityPoolRevoked, map[string]any{
		"liquidity_pool":   poolDetails(lp),
		"reserves_revoked": revoked,
		"shares_revoked":   amount.String(-delta.shares),
	})
	return nil
}

// poolCreatedOrRemoved adds liquidity_pool_created / _removed for a pool entry the operation
// created or removed (change_trust on pool shares, or a revocation).
func (o *operation) poolCreatedOrRemoved(ch ingest.Change) {
	if ch.Type != xdr.LedgerEntryTypeLiquidityPool {
		return
	}
	switch {
	case ch.Pre == nil && ch.Post != nil:
		lp := ch.Post.Data.MustLiquidityPool()
		o.addMuxed(o.source, hz.EffectLiquidityPoolCreated, map[string]any{"liquidity_pool": poolDetails(&lp)})
	case ch.Pre != nil && ch.Post == nil:
		o.addMuxed(o.source, hz.EffectLiquidityPoolRemoved, map[string]any{"liquidity_pool_id": poolID(ch.Pre.Data.MustLiquidityPool().LiquidityPoolId)})
	}
}
