// Package effects owns StellarEffects: Horizon's operation effects (account_credited, trade,
// signer_created, ...) derived from a ledger's transactions, and the Computer that derives them
// (also used by the wallet domain's WalletBackend).
//
// Semantics are Horizon's effects ingestion (services/horizon/internal/ingest/processors,
// effects_processor.go, now in stellar/stellar-horizon): the same effects, in the same order,
// with the same details, for every operation type; effect type numbers and names are the SDK's
// protocols/horizon/effects. The SDK (v0.7.3) has no effects processor, so this package reads
// the SDK's ingest.LedgerTransaction (operation results, GetOperationChanges) and takes the
// Soroban token movements of InvokeHostFunction from the SDK's processors/token_transfer.
package effects

import (
	"encoding/hex"
	"fmt"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor"
)

// Effect is one Horizon effect of an operation.
type Effect struct {
	Address        string // the G account the effect belongs to
	AddressMuxed   string // its M address when the operation named a muxed account, else ""
	OperationIndex uint32 // 0-based, in the transaction
	OperationID    int64  // the operation's TOID
	Order          uint32 // 0-based position among the operation's effects
	Type           hz.EffectType
	Details        map[string]any
}

// TypeName is the effect type's name (protocols/horizon/effects.EffectTypeNames).
func (e Effect) TypeName() string { return hz.EffectTypeNames[e.Type] }

// Computer derives the effects of transactions on one network. It holds no per-ledger state;
// it is used from one goroutine at a time.
type Computer struct {
	passphrase string
	tokens     *token_transfer.EventsProcessor
}

// NewComputer returns a Computer for the network with the given passphrase (Stellar Asset
// Contract events are recognised by the contract id the passphrase gives each asset).
func NewComputer(passphrase string) *Computer {
	return &Computer{passphrase: passphrase, tokens: token_transfer.NewEventsProcessor(passphrase)}
}

// Transaction returns the effects of every operation of tx, in operation order; a failed
// transaction has none (as in Horizon). tx is read only.
func (c *Computer) Transaction(tx *ingest.LedgerTransaction) ([]Effect, error) {
	if !tx.Result.Successful() {
		return nil, nil
	}
	ops := tx.Envelope.Operations()
	results, ok := tx.Result.OperationResults()
	if !ok || len(results) != len(ops) {
		return nil, fmt.Errorf("transaction %s: %d operation results for %d operations", tx.Hash.HexString(), len(results), len(ops))
	}
	var out []Effect
	for i := range ops {
		o := operation{c: c, tx: tx, index: uint32(i), op: ops[i], result: results[i]}
		if err := o.run(); err != nil {
			return nil, fmt.Errorf("transaction %s operation %d (%s): %w", tx.Hash.HexString(), i, ops[i].Body.Type, err)
		}
		out = append(out, o.effects...)
	}
	return out, nil
}

// operation is one operation being turned into effects.
type operation struct {
	c       *Computer
	tx      *ingest.LedgerTransaction
	index   uint32
	op      xdr.Operation
	result  xdr.OperationResult
	tr      xdr.OperationResultTr
	source  xdr.MuxedAccount
	changes []ingest.Change
	effects []Effect
}

// run computes the operation's effects. The decoded XDR's Must accessors panic on input that
// does not have the shape its operation type promises; that is returned as an error.
func (o *operation) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed operation or result: %v", r)
		}
	}()
	tr, ok := o.result.GetTr()
	if !ok {
		return fmt.Errorf("operation result code %s in a successful transaction", o.result.Code)
	}
	o.tr = tr
	if o.op.SourceAccount != nil {
		o.source = *o.op.SourceAccount
	} else {
		o.source = o.tx.Envelope.SourceAccount()
	}
	if o.changes, err = o.tx.GetOperationChanges(o.index); err != nil {
		return err
	}
	if err := o.byType(); err != nil {
		return err
	}
	// Effects every operation type can have, each category together (as Horizon orders them).
	for _, ch := range o.changes {
		o.entrySponsorship(ch)
		o.signerSponsorship(ch)
	}
	for _, ch := range o.changes {
		o.poolCreatedOrRemoved(ch)
	}
	for i := range o.effects {
		o.effects[i].Order = uint32(i)
	}
	return nil
}

func (o *operation) byType() error {
	switch o.op.Body.Type {
	case xdr.OperationTypeCreateAccount:
		o.createAccount()
	case xdr.OperationTypePayment:
		return o.payment()
	case xdr.OperationTypePathPaymentStrictReceive:
		return o.pathPaymentStrictReceive()
	case xdr.OperationTypePathPaymentStrictSend:
		return o.pathPaymentStrictSend()
	case xdr.OperationTypeManageSellOffer:
		return o.trades(o.tr.MustManageSellOfferResult().MustSuccess().OffersClaimed)
	case xdr.OperationTypeManageBuyOffer:
		return o.trades(o.tr.MustManageBuyOfferResult().MustSuccess().OffersClaimed)
	case xdr.OperationTypeCreatePassiveSellOffer:
		// stellar-core has set the manage_sell_offer arm on some passive offer results.
		if o.tr.Type == xdr.OperationTypeManageSellOffer {
			return o.trades(o.tr.MustManageSellOfferResult().MustSuccess().OffersClaimed)
		}
		return o.trades(o.tr.MustCreatePassiveSellOfferResult().MustSuccess().OffersClaimed)
	case xdr.OperationTypeSetOptions:
		o.setOptions()
	case xdr.OperationTypeChangeTrust:
		return o.changeTrust()
	case xdr.OperationTypeAllowTrust:
		return o.allowTrust()
	case xdr.OperationTypeAccountMerge:
		o.accountMerge()
	case xdr.OperationTypeInflation:
		o.inflation()
	case xdr.OperationTypeManageData:
		o.manageData()
	case xdr.OperationTypeBumpSequence:
		o.bumpSequence()
	case xdr.OperationTypeCreateClaimableBalance:
		return o.createClaimableBalance()
	case xdr.OperationTypeClaimClaimableBalance:
		return o.claimClaimableBalance()
	case xdr.OperationTypeBeginSponsoringFutureReserves, xdr.OperationTypeEndSponsoringFutureReserves,
		xdr.OperationTypeRevokeSponsorship:
		// Only the sponsorship effects read from the changes (in run).
	case xdr.OperationTypeClawback:
		return o.clawback()
	case xdr.OperationTypeClawbackClaimableBalance:
		return o.clawbackClaimableBalance()
	case xdr.OperationTypeSetTrustLineFlags:
		return o.setTrustLineFlags()
	case xdr.OperationTypeLiquidityPoolDeposit:
		return o.poolDeposit()
	case xdr.OperationTypeLiquidityPoolWithdraw:
		return o.poolWithdraw()
	case xdr.OperationTypeInvokeHostFunction:
		return o.invokeHostFunction()
	case xdr.OperationTypeExtendFootprintTtl, xdr.OperationTypeRestoreFootprint:
		// Horizon gives these no effects.
	default:
		return fmt.Errorf("unknown operation type %d", o.op.Body.Type)
	}
	return nil
}

// add appends an effect of account address (muxed: its M address or "").
func (o *operation) add(address, muxed string, typ hz.EffectType, details map[string]any) {
	o.effects = append(o.effects, Effect{
		Address:        address,
		AddressMuxed:   muxed,
		OperationIndex: o.index,
		OperationID:    processor.OperationID(o.tx.Ledger.LedgerSequence(), int(o.tx.Index), int(o.index)),
		Type:           typ,
		Details:        details,
	})
}

func (o *operation) addAccount(id xdr.AccountId, typ hz.EffectType, details map[string]any) {
	o.add(id.Address(), "", typ, details)
}

func (o *operation) addMuxed(m xdr.MuxedAccount, typ hz.EffectType, details map[string]any) {
	muxed := ""
	if m.Type == xdr.CryptoKeyTypeKeyTypeMuxedEd25519 {
		muxed = m.Address()
	}
	id := m.ToAccountId()
	o.add(id.Address(), muxed, typ, details)
}

// assetDetails sets <prefix>asset_type, and for issued assets <prefix>asset_code and
// <prefix>asset_issuer.
func assetDetails(d map[string]any, a xdr.Asset, prefix string) error {
	var typ, code, issuer string
	if err := a.Extract(&typ, &code, &issuer); err != nil {
		return fmt.Errorf("reading an asset: %w", err)
	}
	d[prefix+"asset_type"] = typ
	if a.Type != xdr.AssetTypeAssetTypeNative {
		d[prefix+"asset_code"] = code
		d[prefix+"asset_issuer"] = issuer
	}
	return nil
}

// poolID is a liquidity pool id as Horizon shows it (hex).
func poolID(id xdr.PoolId) string { return hex.EncodeToString(id[:]) }

// balanceID is a claimable balance id as Horizon shows it (hex of its XDR).
func balanceID(id xdr.ClaimableBalanceId) (string, error) {
	s, err := xdr.MarshalHex(id)
	if err != nil {
		return "", fmt.Errorf("encoding a claimable balance id: %w", err)
	}
	return s, nil
}
