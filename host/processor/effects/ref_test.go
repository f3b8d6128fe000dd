package effects

import (
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// refEffects is the test's own count of the effects of one operation of a successful
// transaction, by effect type name, computed from the operation, its result and its ledger
// entry changes (the SDK's change reader), independently of the processor: each operation
// type's effects are counted the way Horizon documents them, Stellar Asset Contract events are
// recognised from their topics and contract id without the token_transfer processor.
func refEffects(tx ingest.LedgerTransaction, i int) map[string]int {
	op := tx.Envelope.Operations()[i]
	results, _ := tx.Result.OperationResults()
	tr := results[i].MustTr()
	changes, err := tx.GetOperationChanges(uint32(i))
	if err != nil {
		panic(err)
	}
	n := map[string]int{}
	claims := func(cs []xdr.ClaimAtom) {
		for _, c := range cs {
			switch {
			case c.AmountBought() == 0 && c.AmountSold() == 0:
			case c.Type == xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool:
				n["liquidity_pool_trade"]++
			default:
				n["trade"] += 2
			}
		}
	}
	switch op.Body.Type {
	case xdr.OperationTypePayment:
		n["account_credited"]++
		n["account_debited"]++
	case xdr.OperationTypePathPaymentStrictReceive:
		n["account_credited"]++
		n["account_debited"]++
		claims(tr.MustPathPaymentStrictReceiveResult().MustSuccess().Offers)
	case xdr.OperationTypePathPaymentStrictSend:
		n["account_credited"]++
		n["account_debited"]++
		claims(tr.MustPathPaymentStrictSendResult().MustSuccess().Offers)
	case xdr.OperationTypeManageSellOffer:
		claims(tr.MustManageSellOfferResult().MustSuccess().OffersClaimed)
	case xdr.OperationTypeManageBuyOffer:
		claims(tr.MustManageBuyOfferResult().MustSuccess().OffersClaimed)
	case xdr.OperationTypeCreateClaimableBalance:
		n["claimable_balance_created"]++
		n["claimable_balance_claimant_created"] += len(op.Body.MustCreateClaimableBalanceOp().Claimants)
		n["account_debited"]++
	case xdr.OperationTypeClaimClaimableBalance:
		n["claimable_balance_claimed"]++
		n["account_credited"]++
	case xdr.OperationTypeChangeTrust:
		line := op.Body.MustChangeTrustOp().Line.Type
	trustlines:
		for _, c := range changes {
			if c.Type != xdr.LedgerEntryTypeTrustline {
				continue
			}
			switch {
			case c.Pre == nil && c.Post.Data.TrustLine.Asset.Type == line:
				n["trustline_created"]++
			case c.Post == nil && c.Pre.Data.TrustLine.Asset.Type == line:
				n["trustline_removed"]++
			case c.Pre != nil && c.Post != nil && c.Post.Data.TrustLine.Asset.Type == line:
				n["trustline_updated"]++
			default:
				continue
			}
			break trustlines // one effect: the first trustline of the operation's asset kind
		}
	case xdr.OperationTypeInvokeHostFunction:
		evs, err := tx.GetContractEventsForOperation(uint32(i))
		if err != nil {
			panic(err)
		}
		for _, ev := range evs {
			refSACEvent(ev, n)
		}
	default:
		panic("the real ledgers hold no " + op.Body.Type.String())
	}
	for _, c := range changes {
		if kind := refSponsorshipKind(c.Type); kind != "" {
			pre, post := refSponsor(c.Pre), refSponsor(c.Post)
			switch {
			case pre == "" && post != "":
				n[kind+"_sponsorship_created"]++
			case pre != "" && post == "":
				n[kind+"_sponsorship_removed"]++
			case pre != post:
				n[kind+"_sponsorship_updated"]++
			}
		}
		if c.Type == xdr.LedgerEntryTypeLiquidityPool && (c.Pre == nil) != (c.Post == nil) {
			if c.Pre == nil {
				n["liquidity_pool_created"]++
			} else {
				n["liquidity_pool_removed"]++
			}
		}
		if c.Type == xdr.LedgerEntryTypeAccount {
			refSignerSponsorships(c, n)
		}
	}
	return n
}

func refSponsorshipKind(t xdr.LedgerEntryType) string {
	switch t {
	case xdr.LedgerEntryTypeAccount:
		return "account"
	case xdr.LedgerEntryTypeTrustline:
		return "trustline"
	case xdr.LedgerEntryTypeData:
		return "data"
	case xdr.LedgerEntryTypeClaimableBalance:
		return "claimable_balance"
	}
	return ""
}

func refSponsor(e *xdr.LedgerEntry) string {
	if e == nil || e.Ext.V1 == nil || e.Ext.V1.SponsoringId == nil {
		return ""
	}
	return e.Ext.V1.SponsoringId.Address()
}

// refSignerSponsorships counts signers whose sponsor appeared, vanished or changed.
func refSignerSponsorships(c ingest.Change, n map[string]int) {
	sponsors := func(e *xdr.LedgerEntry) map[string]string {
		m := map[string]string{}
		if e == nil {
			return m
		}
		a := e.Data.MustAccount()
		if a.Ext.V1 == nil || a.Ext.V1.Ext.V2 == nil {
			return m
		}
		for j, id := range a.Ext.V1.Ext.V2.SignerSponsoringIDs {
			if id != nil {
				m[a.Signers[j].Key.Address()] = id.Address()
			}
		}
		return m
	}
	pre, post := sponsors(c.Pre), sponsors(c.Post)
	for k, v := range pre {
		switch w, ok := post[k]; {
		case !ok:
			n["signer_sponsorship_removed"]++
		case w != v:
			n["signer_sponsorship_updated"]++
		}
	}
	for k := range post {
		if _, ok := pre[k]; !ok {
			n["signer_sponsorship_created"]++
		}
	}
}

// refSACEvent counts the effects of a Stellar Asset Contract event: transfer (two: the sender
// and the receiver), mint (the receiver), burn and clawback (the holder); an account (G)
// gets account_credited/debited, a contract contract_credited/debited. An event is a SAC event
// when its last topic names an asset whose SAC contract id is the event's contract.
func refSACEvent(ev xdr.ContractEvent, n map[string]int) {
	if ev.Type != xdr.ContractEventTypeContract || ev.ContractId == nil || ev.Body.V != 0 {
		return
	}
	topics := ev.Body.V0.Topics
	if len(topics) < 3 {
		return
	}
	fn, ok := topics[0].GetSym()
	if !ok {
		return
	}
	str, ok := topics[len(topics)-1].GetStr()
	if !ok {
		return
	}
	assets, err := xdr.BuildAssets(string(str))
	if err != nil || len(assets) != 1 {
		return
	}
	id, err := assets[0].ContractID(network.PublicNetworkPassphrase)
	if err != nil || id != *ev.ContractId {
		return
	}
	side := func(t xdr.ScVal, credit bool) {
		addr, ok := t.GetAddress()
		if !ok {
			return
		}
		kind := "account_"
		if addr.Type == xdr.ScAddressTypeScAddressTypeContract {
			kind = "contract_"
		}
		if credit {
			n[kind+"credited"]++
		} else {
			n[kind+"debited"]++
		}
	}
	switch fn {
	case "transfer":
		side(topics[1], false)
		side(topics[2], true)
	case "mint": // V3: mint, admin, to, asset; V4: mint, to, asset
		side(topics[len(topics)-2], true)
	case "burn", "clawback": // V3 clawback: clawback, admin, from, asset
		side(topics[len(topics)-2], false)
	}
}
