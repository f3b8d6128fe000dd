package effects

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/amount"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Claimable balances: creation, claim and clawback.

func (o *operation) createClaimableBalance() error {
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeClaimableBalance || ch.Post == nil {
			continue
		}
		cb := ch.Post.Data.MustClaimableBalance()
		if _, err := o.claimableBalanceCreated(cb); err != nil {
			return err
		}
		d := map[string]any{"amount": amount.String(cb.Amount)}
		if err := assetDetails(d, cb.Asset, ""); err != nil {
			return err
		}
		o.addMuxed(o.source, hz.EffectAccountDebited, d)
		return nil
	}
	return fmt.Errorf("no claimable balance entry created")
}

// claimableBalanceCreated adds claimable_balance_created for the source and
// claimable_balance_claimant_created for each claimant, and returns the balance id. The
// claimants of a create_claimable_balance operation are read from the operation (core turns
// relative predicates into absolute ones in the entry); those of a revocation from the entry.
func (o *operation) claimableBalanceCreated(cb xdr.ClaimableBalanceEntry) (string, error) {
	id, err := balanceID(cb.BalanceId)
	if err != nil {
		return "", err
	}
	d := map[string]any{"balance_id": id, "amount": amount.String(cb.Amount), "asset": cb.Asset.StringCanonical()}
	claimableFlagDetails(d, cb)
	o.addMuxed(o.source, hz.EffectClaimableBalanceCreated, d)
	claimants := cb.Claimants
	if op, ok := o.op.Body.GetCreateClaimableBalanceOp(); ok {
		claimants = op.Claimants
	}
	for _, c := range claimants {
		v0 := c.MustV0()
		o.addAccount(v0.Destination, hz.EffectClaimableBalanceClaimantCreated, map[string]any{
			"balance_id": id,
			"amount":     amount.String(cb.Amount),
			"predicate":  v0.Predicate,
			"asset":      cb.Asset.StringCanonical(),
		})
	}
	return id, nil
}

func claimableFlagDetails(d map[string]any, cb xdr.ClaimableBalanceEntry) {
	if cb.Flags().IsClawbackEnabled() {
		d["claimable_balance_clawback_enabled_flag"] = true
	}
}

// removedBalance returns the claimable balance entry with the given id that the operation
// removed.
func (o *operation) removedBalance(id xdr.ClaimableBalanceId) (xdr.ClaimableBalanceEntry, string, error) {
	want, err := balanceID(id)
	if err != nil {
		return xdr.ClaimableBalanceEntry{}, "", err
	}
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeClaimableBalance || ch.Pre == nil || ch.Post != nil {
			continue
		}
		cb := ch.Pre.Data.MustClaimableBalance()
		if got, err := balanceID(cb.BalanceId); err == nil && got == want {
			return cb, want, nil
		}
	}
	return xdr.ClaimableBalanceEntry{}, want, fmt.Errorf("claimable balance %s not removed by the operation", want)
}

func (o *operation) claimClaimableBalance() error {
	cb, id, err := o.removedBalance(o.op.Body.MustClaimClaimableBalanceOp().BalanceId)
	if err != nil {
		return err
	}
	d := map[string]any{"amount": amount.String(cb.Amount), "balance_id": id, "asset": cb.Asset.StringCanonical()}
	claimableFlagDetails(d, cb)
	o.addMuxed(o.source, hz.EffectClaimableBalanceClaimed, d)
	credit := map[string]any{"amount": amount.String(cb.Amount)}
	if err := assetDetails(credit, cb.Asset, ""); err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectAccountCredited, credit)
	return nil
}

// clawbackClaimableBalance adds claimable_balance_clawed_back and, as Horizon does although
// the asset is burnt, a credit of the issuer (the source).
func (o *operation) clawbackClaimableBalance() error {
	op := o.op.Body.MustClawbackClaimableBalanceOp()
	id, err := balanceID(op.BalanceId)
	if err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectClaimableBalanceClawedBack, map[string]any{"balance_id": id})
	cb, _, err := o.removedBalance(op.BalanceId)
	if err != nil {
		return nil // Horizon adds no credit when it finds no removed entry
	}
	d := map[string]any{"amount": amount.String(cb.Amount)}
	if err := assetDetails(d, cb.Asset, ""); err != nil {
		return err
	}
	o.addMuxed(o.source, hz.EffectAccountCredited, d)
	return nil
}
