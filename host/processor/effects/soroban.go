package effects

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// InvokeHostFunction: the balance effects of Stellar Asset Contract events, and (CAP-73) the
// trustlines and accounts a SAC call creates without an event.

// invokeHostFunction turns the operation's SAC transfer, mint, burn and clawback events into
// account_credited / account_debited effects of G accounts, or contract_credited /
// contract_debited effects (of the operation's source, naming the contract) for contract
// addresses. The events are read by the SDK's token_transfer processor; events of tokens that
// are not a Stellar Asset Contract are ignored, as in Horizon.
func (o *operation) invokeHostFunction() error {
	events, err := o.c.tokens.EventsFromOperation(*o.tx, o.index, o.op, o.result)
	if err != nil {
		return fmt.Errorf("reading token events: %w", err)
	}
	for _, ev := range events {
		if ev.GetAsset() == nil {
			continue
		}
		if err := o.sacEvent(ev); err != nil {
			return err
		}
	}
	o.sacTrustlinesCreated()
	o.sacAccountsCreated()
	return nil
}

func (o *operation) sacEvent(ev *token_transfer.TokenTransferEvent) error {
	d := map[string]any{}
	if err := assetDetails(d, ev.GetAsset().ToXdrAsset(), ""); err != nil {
		return err
	}
	amt, err := amount.IntStringToAmount(ev.GetAmount())
	if err != nil {
		return fmt.Errorf("token event amount: %w", err)
	}
	d["amount"] = amt
	switch e := ev.GetEvent().(type) {
	case *token_transfer.TokenTransferEvent_Transfer:
		to := make(map[string]any, len(d)+1)
		for k, v := range d {
			to[k] = v
		}
		o.sacDebit(e.Transfer.GetFrom(), d)
		return o.sacCredit(e.Transfer.GetTo(), ev, to)
	case *token_transfer.TokenTransferEvent_Mint:
		return o.sacCredit(e.Mint.GetTo(), ev, d)
	case *token_transfer.TokenTransferEvent_Burn:
		o.sacDebit(e.Burn.GetFrom(), d)
	case *token_transfer.TokenTransferEvent_Clawback:
		o.sacDebit(e.Clawback.GetFrom(), d)
	}
	return nil
}

func (o *operation) sacDebit(from string, d map[string]any) {
	if strkey.IsValidEd25519PublicKey(from) {
		o.add(from, "", hz.EffectAccountDebited, d)
		return
	}
	d["contract"] = from
	o.addMuxed(o.source, hz.EffectContractDebited, d)
}

// sacCredit credits to; a muxed id the event carries (CAP-67 to_muxed_id) gives the effect's
// muxed address. Horizon reads only numeric ids; so does this.
func (o *operation) sacCredit(to string, ev *token_transfer.TokenTransferEvent, d map[string]any) error {
	if !strkey.IsValidEd25519PublicKey(to) {
		d["contract"] = to
		o.addMuxed(o.source, hz.EffectContractCredited, d)
		return nil
	}
	muxed := ""
	if info := ev.GetMeta().GetToMuxedInfo(); info != nil {
		if id, ok := info.GetContent().(*token_transfer.MuxedInfo_Id); ok {
			m, err := xdr.MuxedAccountFromAccountId(to, id.Id)
			if err != nil {
				return fmt.Errorf("muxed destination of %s: %w", to, err)
			}
			muxed = m.Address()
		}
	}
	o.add(to, muxed, hz.EffectAccountCredited, d)
	return nil
}

// sacTrustlinesCreated adds trustline_created for trustlines the call created (the SAC's
// trust() function emits no event).
func (o *operation) sacTrustlinesCreated() {
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeTrustline || ch.Pre != nil || ch.Post == nil {
			continue
		}
		tl := ch.Post.Data.MustTrustLine()
		if tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare {
			continue // a contract cannot create pool share trustlines
		}
		d := map[string]any{"limit": amount.String(tl.Limit)}
		if err := assetDetails(d, tl.Asset.ToAsset(), ""); err != nil {
			continue
		}
		o.addAccount(tl.AccountId, hz.EffectTrustlineCreated, d)
	}
}

// sacAccountsCreated adds account_created and signer_created for accounts the call created
// (an XLM SAC transfer to a missing account creates it; the transfer's own effects cover the
// payment).
func (o *operation) sacAccountsCreated() {
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeAccount || ch.Pre != nil || ch.Post == nil {
			continue
		}
		a := ch.Post.Data.MustAccount()
		o.addAccount(a.AccountId, hz.EffectAccountCreated, map[string]any{"starting_balance": amount.String(a.Balance)})
		o.addAccount(a.AccountId, hz.EffectSignerCreated, map[string]any{"public_key": a.AccountId.Address(), "weight": keypair.DefaultSignerWeight})
	}
}
