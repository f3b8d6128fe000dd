package effects

import (
	"github.com/stellar/go-stellar-sdk/ingest"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Sponsorship effects, read from the ledger entry changes of any operation (begin/end/revoke
// sponsorship have no others).

// sponsorshipTypes: created, updated and removed effect of each sponsorable entry type (offers
// have none, as Horizon gives offers no creation effects).
var sponsorshipTypes = map[xdr.LedgerEntryType][3]hz.EffectType{
	xdr.LedgerEntryTypeAccount: {hz.EffectAccountSponsorshipCreated, hz.EffectAccountSponsorshipUpdated, hz.EffectAccountSponsorshipRemoved},
	xdr.LedgerEntryTypeTrustline: {hz.EffectTrustlineSponsorshipCreated, hz.EffectTrustlineSponsorshipUpdated,
		hz.EffectTrustlineSponsorshipRemoved},
	xdr.LedgerEntryTypeData: {hz.EffectDataSponsorshipCreated, hz.EffectDataSponsorshipUpdated, hz.EffectDataSponsorshipRemoved},
	xdr.LedgerEntryTypeClaimableBalance: {hz.EffectClaimableBalanceSponsorshipCreated,
		hz.EffectClaimableBalanceSponsorshipUpdated, hz.EffectClaimableBalanceSponsorshipRemoved},
}

func sponsorOf(e *xdr.LedgerEntry) string {
	if e == nil || e.SponsoringID() == nil {
		return ""
	}
	return e.SponsoringID().Address()
}

// entrySponsorship adds the sponsorship effect of a change whose entry gained, changed or
// lost its sponsor.
func (o *operation) entrySponsorship(ch ingest.Change) {
	types, ok := sponsorshipTypes[ch.Type]
	if !ok {
		return
	}
	pre, post := sponsorOf(ch.Pre), sponsorOf(ch.Post)
	d := map[string]any{}
	var typ hz.EffectType
	switch {
	case pre == "" && post != "":
		typ, d["sponsor"] = types[0], post
	case pre != "" && post == "":
		typ, d["former_sponsor"] = types[2], pre
	case pre != "" && post != "" && pre != post:
		typ, d["former_sponsor"], d["new_sponsor"] = types[1], pre, post
	default:
		return
	}
	entry := ch.Post
	if entry == nil {
		entry = ch.Pre
	}
	switch ch.Type {
	case xdr.LedgerEntryTypeAccount:
		o.addAccount(entry.Data.MustAccount().AccountId, typ, d)
	case xdr.LedgerEntryTypeTrustline:
		tl := entry.Data.MustTrustLine()
		if tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare {
			d["asset_type"] = "liquidity_pool"
			d["liquidity_pool_id"] = poolID(*tl.Asset.LiquidityPoolId)
		} else {
			d["asset"] = tl.Asset.ToAsset().StringCanonical()
		}
		o.addAccount(tl.AccountId, typ, d)
	case xdr.LedgerEntryTypeData:
		d["data_name"] = string(entry.Data.MustData().DataName)
		o.addMuxed(o.source, typ, d)
	case xdr.LedgerEntryTypeClaimableBalance:
		id, err := balanceID(entry.Data.MustClaimableBalance().BalanceId)
		if err != nil {
			panic(err) // a decoded balance id always encodes; run turns this into an error
		}
		d["balance_id"] = id
		o.addMuxed(o.source, typ, d)
	}
}

// signerSponsorship adds signer_sponsorship_created / _updated / _removed for the signers of
// an account change whose sponsor changed (signers sorted).
func (o *operation) signerSponsorship(ch ingest.Change) {
	if ch.Type != xdr.LedgerEntryTypeAccount {
		return
	}
	var pre, post map[string]xdr.AccountId
	var account xdr.AccountId
	if ch.Pre != nil {
		a := ch.Pre.Data.MustAccount()
		pre, account = a.SponsorPerSigner(), a.AccountId
	}
	if ch.Post != nil {
		a := ch.Post.Data.MustAccount()
		post, account = a.SponsorPerSigner(), a.AccountId
	}
	all := map[string]struct{}{}
	for k := range pre {
		all[k] = struct{}{}
	}
	for k := range post {
		all[k] = struct{}{}
	}
	for _, signer := range sortedKeys(all) {
		before, hadPre := pre[signer]
		after, hasPost := post[signer]
		switch {
		case !hadPre && hasPost:
			o.addAccount(account, hz.EffectSignerSponsorshipCreated, map[string]any{"sponsor": after.Address(), "signer": signer})
		case hadPre && !hasPost:
			o.addAccount(account, hz.EffectSignerSponsorshipRemoved, map[string]any{"former_sponsor": before.Address(), "signer": signer})
		case before.Address() != after.Address():
			o.addAccount(account, hz.EffectSignerSponsorshipUpdated, map[string]any{
				"former_sponsor": before.Address(), "new_sponsor": after.Address(), "signer": signer})
		}
	}
}
