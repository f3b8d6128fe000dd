package effects

import (
	"encoding/base64"
	"sort"

	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Account settings: set_options (home domain, thresholds, flags, inflation destination,
// signers), manage_data and bump_sequence.

func (o *operation) setOptions() {
	op := o.op.Body.MustSetOptionsOp()
	if op.HomeDomain != nil {
		o.addMuxed(o.source, hz.EffectAccountHomeDomainUpdated, map[string]any{"home_domain": string(*op.HomeDomain)})
	}
	th := map[string]any{}
	if op.LowThreshold != nil {
		th["low_threshold"] = *op.LowThreshold
	}
	if op.MedThreshold != nil {
		th["med_threshold"] = *op.MedThreshold
	}
	if op.HighThreshold != nil {
		th["high_threshold"] = *op.HighThreshold
	}
	if len(th) > 0 {
		o.addMuxed(o.source, hz.EffectAccountThresholdsUpdated, th)
	}
	flags := map[string]any{}
	if op.SetFlags != nil {
		accountFlagDetails(flags, xdr.AccountFlags(*op.SetFlags), true)
	}
	if op.ClearFlags != nil {
		accountFlagDetails(flags, xdr.AccountFlags(*op.ClearFlags), false)
	}
	if len(flags) > 0 {
		o.addMuxed(o.source, hz.EffectAccountFlagsUpdated, flags)
	}
	if op.InflationDest != nil {
		o.addMuxed(o.source, hz.EffectAccountInflationDestinationUpdated, map[string]any{"inflation_destination": op.InflationDest.Address()})
	}
	for _, ch := range o.changes {
		if ch.Type == xdr.LedgerEntryTypeAccount && ch.Pre != nil && ch.Post != nil {
			o.signerChanges(ch.Pre.Data.MustAccount(), ch.Post.Data.MustAccount())
		}
	}
}

// accountFlagDetails sets the flags present in f to value (a flag both set and cleared ends
// up cleared, as in Horizon). The keys are those Horizon's ingestion writes.
func accountFlagDetails(d map[string]any, f xdr.AccountFlags, value bool) {
	if f.IsAuthRequired() {
		d["auth_required_flag"] = value
	}
	if f.IsAuthRevocable() {
		d["auth_revocable_flag"] = value
	}
	if f.IsAuthImmutable() {
		d["auth_immutable_flag"] = value
	}
	if f.IsAuthClawbackEnabled() {
		d["auth_clawback_enabled_flag"] = value
	}
}

// signerChanges adds signer_removed / signer_updated for the signers before (sorted), then
// signer_created for the new ones (sorted); the master key counts as a signer while its
// weight is above 0.
func (o *operation) signerChanges(before, after xdr.AccountEntry) {
	pre, post := before.SignerSummary(), after.SignerSummary()
	for _, key := range sortedKeys(pre) {
		w, still := post[key]
		switch {
		case !still:
			o.addMuxed(o.source, hz.EffectSignerRemoved, map[string]any{"public_key": key})
		case w != pre[key]:
			o.addMuxed(o.source, hz.EffectSignerUpdated, map[string]any{"public_key": key, "weight": w})
		}
	}
	for _, key := range sortedKeys(post) {
		if _, existed := pre[key]; !existed {
			o.addMuxed(o.source, hz.EffectSignerCreated, map[string]any{"public_key": key, "weight": post[key]})
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// manageData adds data_created, data_updated or data_removed from the operation's data entry
// change (value: the new value, base64).
func (o *operation) manageData() {
	op := o.op.Body.MustManageDataOp()
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeData {
			continue
		}
		d := map[string]any{"name": string(op.DataName)}
		if ch.Post != nil {
			d["value"] = base64.StdEncoding.EncodeToString(ch.Post.Data.MustData().DataValue)
		}
		switch {
		case ch.Pre == nil:
			o.addMuxed(o.source, hz.EffectDataCreated, d)
		case ch.Post == nil:
			o.addMuxed(o.source, hz.EffectDataRemoved, d)
		default:
			o.addMuxed(o.source, hz.EffectDataUpdated, d)
		}
		return
	}
}

// bumpSequence adds sequence_bumped when the source's sequence number changed.
func (o *operation) bumpSequence() {
	for _, ch := range o.changes {
		if ch.Type != xdr.LedgerEntryTypeAccount || ch.Pre == nil || ch.Post == nil {
			continue
		}
		before, after := ch.Pre.Data.MustAccount(), ch.Post.Data.MustAccount()
		if before.SeqNum != after.SeqNum {
			o.addMuxed(o.source, hz.EffectSequenceBumped, map[string]any{"new_seq": int64(after.SeqNum)})
		}
		return
	}
}
