package wallet

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/effects"
)

// changeBuilder turns one successful transaction into WalletBackend's state changes.
type changeBuilder struct {
	p    *WalletBackend
	l    *ledger.Ledger
	tx   *ingest.LedgerTransaction
	hash string
	out  []component.Record
}

func (b *changeBuilder) transaction() error {
	effs, err := b.p.comp.Transaction(b.tx)
	if err != nil {
		return err
	}
	effsByOp := map[uint32][]effects.Effect{}
	for _, e := range effs {
		effsByOp[e.OperationIndex] = append(effsByOp[e.OperationIndex], e)
	}
	tt, err := b.p.tokens.EventsFromTransaction(*b.tx)
	if err != nil {
		return fmt.Errorf("reading token transfers: %w", err)
	}
	tokensByOp := map[uint32][]*token_transfer.TokenTransferEvent{}
	for _, ev := range tt.OperationEvents {
		if i := ev.GetMeta().OperationIndex; i != nil && *i > 0 {
			tokensByOp[*i-1] = append(tokensByOp[*i-1], ev) // SEP-35 operation indexes are 1-based
		}
	}
	var events ingest.TransactionEvents
	if b.p.events {
		if events, err = b.tx.GetTransactionEvents(); err != nil {
			return fmt.Errorf("reading contract events: %w", err)
		}
	}
	for i, op := range b.tx.Envelope.Operations() {
		changes, err := b.tx.GetOperationChanges(uint32(i))
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
		typ := int32(op.Body.Type)
		base := b.base(int32(i), &typ)
		bal := balances(changes)
		for _, ev := range tokensByOp[uint32(i)] {
			b.token(base, ev, bal)
		}
		for _, e := range effsByOp[uint32(i)] {
			b.effect(base, e)
		}
		for _, ch := range changes {
			b.offer(base, ch)
		}
		if i < len(events.OperationEvents) {
			src := opSource(b.tx, op)
			for _, ev := range events.OperationEvents[i] {
				if err := b.event(base, muxedAddress(src), ev); err != nil {
					return fmt.Errorf("operation %d: %w", i, err)
				}
			}
		}
	}
	for _, te := range events.TransactionEvents {
		if err := b.event(b.base(-1, nil), muxedAddress(b.tx.Envelope.SourceAccount()), te.Event); err != nil {
			return err
		}
	}
	return nil
}

func (b *changeBuilder) base(op int32, typ *int32) StateChangeRecord {
	return StateChangeRecord{LedgerSequence: b.l.Sequence(), TransactionHash: b.hash, TransactionIndex: int32(b.tx.Index),
		OperationIndex: op, OperationType: typ, Timestamp: b.l.CloseTime().Unix(), network: b.p.net.Name}
}

func (b *changeBuilder) add(r StateChangeRecord) {
	r.ApplicationOrder = int32(len(b.out))
	b.out = append(b.out, r)
}

func str(s string) *string { return &s }

func u32(v uint32) *uint32 { return &v }

func metadata(v any) json.RawMessage {
	m, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("encoding state change metadata: %w", err)) // maps of strings, numbers and SDK values
	}
	return m
}

// setAsset fills the asset columns (native: code XLM, as upstream).
func setAsset(r *StateChangeRecord, a xdr.Asset) {
	var typ, code, issuer string
	if err := a.Extract(&typ, &code, &issuer); err != nil {
		return
	}
	r.AssetType = str(typ)
	if a.Type == xdr.AssetTypeAssetTypeNative {
		r.AssetCode = str("XLM")
		return
	}
	r.AssetCode, r.AssetIssuer = str(code), str(issuer)
}

// balances maps "<account>|<canonical asset>" to the account's balance before and after the
// operation, for the accounts and trustlines the operation changed.
func balances(changes []ingest.Change) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, ch := range changes {
		var key string
		var v [2]int64
		for i, e := range []*xdr.LedgerEntry{ch.Pre, ch.Post} {
			if e == nil {
				continue
			}
			switch ch.Type {
			case xdr.LedgerEntryTypeAccount:
				key, v[i] = address(e.Data.Account.AccountId)+"|native", int64(e.Data.Account.Balance)
			case xdr.LedgerEntryTypeTrustline:
				tl := e.Data.TrustLine
				if tl.Asset.Type == xdr.AssetTypeAssetTypePoolShare {
					continue
				}
				key, v[i] = address(tl.AccountId)+"|"+tl.Asset.ToAsset().StringCanonical(), int64(tl.Balance)
			}
		}
		if key != "" {
			out[key] = v
		}
	}
	return out
}

// token adds the rows of one token transfer event.
func (b *changeBuilder) token(base StateChangeRecord, ev *token_transfer.TokenTransferEvent, bal map[string][2]int64) {
	kind := ev.GetEventType()
	base.Amount = str(ev.GetAmount())
	base.ContractID = str(ev.GetMeta().GetContractAddress())
	canonical := ""
	if a := ev.GetAsset(); a != nil {
		x := a.ToXdrAsset()
		setAsset(&base, x)
		canonical = x.StringCanonical()
	}
	party := func(who, typ, counterparty string) {
		if !strkey.IsValidEd25519PublicKey(who) && !strkey.IsValidContractAddress(who) {
			return // a claimable balance or a pool
		}
		r := base
		r.Type, r.Account = typ, who
		if v, ok := bal[who+"|"+canonical]; ok && canonical != "" {
			r.BalanceBefore, r.BalanceAfter = str(strconv.FormatInt(v[0], 10)), str(strconv.FormatInt(v[1], 10))
		}
		m := map[string]string{"token_event": kind}
		if counterparty != "" {
			m["counterparty"] = counterparty
		}
		r.Metadata = metadata(m)
		b.add(r)
	}
	switch e := ev.GetEvent().(type) {
	case *token_transfer.TokenTransferEvent_Transfer:
		party(e.Transfer.GetFrom(), "DEBIT", e.Transfer.GetTo())
		party(e.Transfer.GetTo(), "CREDIT", e.Transfer.GetFrom())
	case *token_transfer.TokenTransferEvent_Mint:
		party(e.Mint.GetTo(), "MINT", "")
	case *token_transfer.TokenTransferEvent_Burn:
		party(e.Burn.GetFrom(), "BURN", "")
	case *token_transfer.TokenTransferEvent_Clawback:
		party(e.Clawback.GetFrom(), "CLAWBACK", "")
	}
}

// offer adds OFFER_CREATED / _UPDATED / _REMOVED for an offer entry change.
func (b *changeBuilder) offer(base StateChangeRecord, ch ingest.Change) {
	if ch.Type != xdr.LedgerEntryTypeOffer {
		return
	}
	e := ch.Post
	switch {
	case ch.Pre == nil:
		base.Type = "OFFER_CREATED"
	case ch.Post == nil:
		base.Type, e = "OFFER_REMOVED", ch.Pre
	default:
		base.Type = "OFFER_UPDATED"
	}
	o := e.Data.MustOffer()
	base.Account = address(o.SellerId)
	setAsset(&base, o.Selling)
	base.Amount = str(strconv.FormatInt(int64(o.Amount), 10))
	base.Metadata = metadata(map[string]any{"offer_id": int64(o.OfferId), "selling": o.Selling.StringCanonical(),
		"buying": o.Buying.StringCanonical(), "price_n": int32(o.Price.N), "price_d": int32(o.Price.D)})
	b.add(base)
}

// event adds CONTRACT_EVENT for a contract event.
func (b *changeBuilder) event(base StateChangeRecord, account string, ev xdr.ContractEvent) error {
	base.Type, base.Account = "CONTRACT_EVENT", account
	if ev.ContractId != nil {
		base.ContractID = str(strkey.MustEncode(strkey.VersionByteContract, ev.ContractId[:]))
	}
	body, ok := ev.Body.GetV0()
	if !ok {
		return fmt.Errorf("contract event body version %d", ev.Body.V)
	}
	if len(body.Topics) > 0 {
		if sym, ok := body.Topics[0].GetSym(); ok {
			base.ContractEventType = str(string(sym))
		}
	}
	topics, err := processor.ScValsJSON(body.Topics)
	if err != nil {
		return fmt.Errorf("contract event topics: %w", err)
	}
	data, err := processor.ScValJSON(body.Data)
	if err != nil {
		return fmt.Errorf("contract event data: %w", err)
	}
	kind := map[xdr.ContractEventType]string{xdr.ContractEventTypeSystem: "system", xdr.ContractEventTypeContract: "contract",
		xdr.ContractEventTypeDiagnostic: "diagnostic"}[ev.Type]
	base.ContractEventData = metadata(map[string]any{"type": kind, "topics": topics, "data": data})
	b.add(base)
	return nil
}

// effectTypes maps Horizon's effects to upstream's state change types (effects that move
// balances are covered by the token events, trades by them and the offer changes).
var effectTypes = map[hz.EffectType]string{
	hz.EffectAccountCreated: "ACCOUNT_CREATED", hz.EffectAccountRemoved: "ACCOUNT_REMOVED",
	hz.EffectSignerCreated: "SIGNER", hz.EffectSignerUpdated: "SIGNER", hz.EffectSignerRemoved: "SIGNER",
	hz.EffectAccountThresholdsUpdated: "THRESHOLD", hz.EffectAccountFlagsUpdated: "FLAGS",
	hz.EffectAccountInflationDestinationUpdated: "INFLATION", hz.EffectAccountHomeDomainUpdated: "HOME_DOMAIN",
	hz.EffectDataCreated: "DATA_ENTRY", hz.EffectDataUpdated: "DATA_ENTRY", hz.EffectDataRemoved: "DATA_ENTRY",
	hz.EffectTrustlineCreated: "TRUSTLINE_CREATED", hz.EffectTrustlineUpdated: "TRUSTLINE_UPDATED",
	hz.EffectTrustlineRemoved: "TRUSTLINE_REMOVED", hz.EffectTrustlineFlagsUpdated: "TRUSTLINE_UPDATED",
	hz.EffectLiquidityPoolDeposited: "LIQUIDITY_POOL_DEPOSIT", hz.EffectLiquidityPoolWithdrew: "LIQUIDITY_POOL_WITHDRAW",
}

func init() {
	// Every sponsorship effect: types 60 (account_sponsorship_created) to 74.
	for t := hz.EffectAccountSponsorshipCreated; t <= hz.EffectSignerSponsorshipRemoved; t++ {
		effectTypes[t] = "SPONSORSHIP"
	}
}

// Flag bits of the effects' flag details.
var (
	accountFlagBits   = map[string]uint32{"auth_required_flag": 1, "auth_revocable_flag": 2, "auth_immutable_flag": 4, "auth_clawback_enabled_flag": 8}
	trustlineFlagBits = map[string]uint32{"authorized_flag": 1, "authorized_to_maintain_liabilites": 2, "clawback_enabled_flag": 4}
)

// flagMasks turns an effect's flag details (name: true set, false cleared) into bit masks.
func flagMasks(d map[string]any, bits map[string]uint32) (set, cleared *uint32) {
	var s, c uint32
	for name, bit := range bits {
		v, present := d[name].(bool)
		switch {
		case !present:
		case v:
			s |= bit
		default:
			c |= bit
		}
	}
	if s != 0 {
		set = &s
	}
	if c != 0 {
		cleared = &c
	}
	return set, cleared
}

func detailString(d map[string]any, key string) *string {
	if v, ok := d[key].(string); ok {
		return &v
	}
	return nil
}

func detailUint(d map[string]any, key string) *uint32 {
	switch v := d[key].(type) {
	case int:
		return u32(uint32(v))
	case int32:
		return u32(uint32(v))
	case xdr.Uint32:
		return u32(uint32(v))
	}
	return nil
}

// stroops converts an effect's amount ("12.3456789") back to an integer string.
func stroops(d map[string]any, key string) *string {
	s, ok := d[key].(string)
	if !ok {
		return nil
	}
	v, err := amount.ParseInt64(s)
	if err != nil {
		return nil
	}
	return str(strconv.FormatInt(v, 10))
}

// effect adds the state changes one of Horizon's effects stands for.
func (b *changeBuilder) effect(base StateChangeRecord, e effects.Effect) {
	typ, ok := effectTypes[e.Type]
	if !ok {
		return
	}
	d := e.Details
	base.Type, base.Account = typ, e.Address
	base.Metadata = metadata(map[string]any{"effect": e.TypeName(), "details": d})
	switch typ {
	case "SIGNER":
		base.SignerKey, base.SignerWeight = detailString(d, "public_key"), detailUint(d, "weight")
		if e.Type == hz.EffectSignerRemoved {
			base.SignerWeight = u32(0)
		}
	case "THRESHOLD":
		for _, t := range [][2]string{{"low_threshold", "low"}, {"med_threshold", "medium"}, {"high_threshold", "high"}} {
			if v := detailUint(d, t[0]); v != nil {
				r := base
				r.ThresholdType, r.ThresholdValue = str(t[1]), v
				b.add(r)
			}
		}
		return
	case "FLAGS":
		base.FlagsSet, base.FlagsClear = flagMasks(d, accountFlagBits)
	case "HOME_DOMAIN":
		base.DataValue = detailString(d, "home_domain")
	case "DATA_ENTRY":
		base.DataName, base.DataValue = detailString(d, "name"), detailString(d, "value")
	case "SPONSORSHIP":
		for _, k := range []string{"new_sponsor", "sponsor", "former_sponsor"} {
			if base.SponsorshipAccount = detailString(d, k); base.SponsorshipAccount != nil {
				break
			}
		}
	case "TRUSTLINE_CREATED", "TRUSTLINE_UPDATED", "TRUSTLINE_REMOVED":
		base.AssetType, base.AssetCode, base.AssetIssuer = detailString(d, "asset_type"), detailString(d, "asset_code"), detailString(d, "asset_issuer")
		base.Amount = stroops(d, "limit")
		if e.Type == hz.EffectTrustlineFlagsUpdated {
			if t := detailString(d, "trustor"); t != nil {
				base.Account = *t // the trustline's owner, not the issuer who changed it
			}
			base.FlagsSet, base.FlagsClear = flagMasks(d, trustlineFlagBits)
		}
	case "LIQUIDITY_POOL_DEPOSIT":
		base.AssetType, base.Amount = str("liquidity_pool_shares"), stroops(d, "shares_received")
	case "LIQUIDITY_POOL_WITHDRAW":
		base.AssetType, base.Amount = str("liquidity_pool_shares"), stroops(d, "shares_redeemed")
	}
	b.add(base)
}
