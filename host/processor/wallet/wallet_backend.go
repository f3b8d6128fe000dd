package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/effects"
)

// StateChangeRecord is one change of an account's state (upstream's WalletBackendStateChange;
// upstream's nested asset is flattened into the asset_code / asset_issuer / asset_type
// columns its WalletBackendPostgreSQL consumer writes).
type StateChangeRecord struct {
	LedgerSequence     uint32          `json:"ledger_sequence"`
	TransactionHash    string          `json:"transaction_hash"`
	TransactionIndex   int32           `json:"transaction_index"` // 1-based, apply order
	OperationIndex     int32           `json:"operation_index"`   // 0-based; -1 for a transaction-level contract event
	OperationType      *int32          `json:"operation_type"`    // xdr.OperationType; null for a transaction-level event
	ApplicationOrder   int32           `json:"application_order"` // 0-based position among the transaction's state changes
	Type               string          `json:"type"`              // CREDIT, DEBIT, MINT, BURN, CLAWBACK, SIGNER, ...
	Account            string          `json:"account"`           // G or C address
	Timestamp          int64           `json:"timestamp"`         // the ledger's close time, unix seconds
	AssetCode          *string         `json:"asset_code"`        // "XLM" for the native asset
	AssetIssuer        *string         `json:"asset_issuer"`
	AssetType          *string         `json:"asset_type"` // native, credit_alphanum4, credit_alphanum12, liquidity_pool_shares
	Amount             *string         `json:"amount"`     // integer, in the asset's smallest unit (stroops)
	BalanceBefore      *string         `json:"balance_before"`
	BalanceAfter       *string         `json:"balance_after"`
	SignerKey          *string         `json:"signer_key"`
	SignerWeight       *uint32         `json:"signer_weight"`
	ThresholdType      *string         `json:"threshold_type"` // low, medium, high
	ThresholdValue     *uint32         `json:"threshold_value"`
	FlagsSet           *uint32         `json:"flags_set"`
	FlagsClear         *uint32         `json:"flags_clear"`
	DataName           *string         `json:"data_name"`
	DataValue          *string         `json:"data_value"`
	SponsorshipAccount *string         `json:"sponsorship_account"`
	ContractID         *string         `json:"contract_id"`
	ContractEventType  *string         `json:"contract_event_type"`
	ContractEventData  json.RawMessage `json:"contract_event_data"`
	Metadata           json.RawMessage `json:"metadata"`

	network string
}

// RecordKind implements component.Record.
func (StateChangeRecord) RecordKind() string { return "state_changes" }

// NaturalKey implements component.Record: network, ledger, transaction hash and application
// order.
func (r StateChangeRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.FormatInt(int64(r.ApplicationOrder), 10))
}

type walletBackendConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	ExtractContractEvents   bool `mapstructure:"extract_contract_events"`
	TrackParticipants       bool `mapstructure:"track_participants"`
}

// SetDefaults implements component.Defaulter (upstream's defaults).
func (c *walletBackendConfig) SetDefaults() {
	c.ExtractContractEvents = true
	c.TrackParticipants = true
}

// WalletBackend emits the state changes of every successful transaction (failed ones change
// only fees, which the transaction rows carry), one StateChangeRecord each, operation by
// operation:
//
//   - token movements, from the SDK's token_transfer processor (every asset, every operation
//     type, Stellar Asset Contract and other SEP-41 token events): a transfer is a DEBIT of
//     the sender and a CREDIT of the receiver, a mint a MINT, a burn a BURN, a clawback a
//     CLAWBACK; only G and C addresses get rows (a claimable balance or pool is named as the
//     counterparty in metadata). amount is the integer amount; balance_before/_after are the
//     account's balance of a classic asset before and after the operation, where the
//     operation changed it;
//   - account settings and lifecycle, from Horizon's effects (the effects package):
//     ACCOUNT_CREATED, ACCOUNT_REMOVED, SIGNER (weight 0: removed), THRESHOLD (one per
//     threshold set), FLAGS (account flag bits set / cleared), INFLATION, HOME_DOMAIN
//     (data_value), DATA_ENTRY, SPONSORSHIP (sponsorship_account: the new sponsor, or the
//     former one when removed), TRUSTLINE_CREATED / _UPDATED / _REMOVED (amount: the limit;
//     an authorization change is a TRUSTLINE_UPDATED of the trustor with trustline flag bits),
//     LIQUIDITY_POOL_DEPOSIT / _WITHDRAW; metadata holds the effect and its details;
//   - OFFER_CREATED / _UPDATED / _REMOVED from the operation's offer entry changes, in the
//     SDK change reader's order (by ledger key): the offer's owner, selling asset, amount;
//     metadata: offer id, buying asset, price;
//   - with extract_contract_events (default true), CONTRACT_EVENT for every contract event of
//     the operation (account: the operation's source) and of the transaction (operation_index
//     -1), the event's topics and data as JSON in contract_event_data, its first topic's
//     symbol as contract_event_type.
//
// Config: network | network_passphrase; extract_contract_events (default true);
// track_participants (default true; accepted for upstream's files: upstream's per-transaction
// participant list is not written by its consumer, and the participants are
// ParticipantExtractor's records).
//
// Chain: an enricher (see the package doc). Keys: network, ledger, transaction hash,
// application_order (unique in the transaction).
//
// Upstream differences: upstream stamps changes with the wall clock (the ledger's close time
// here), numbers application_order per operation with contract events at 1000+ (keys would
// collide), emits payments, account creation, set_options, manage_data and change_trust only
// (no path payments, offers, merges, claimable balances, pools, clawbacks or Soroban
// transfers; a created account's funding only as a CREDIT), reads set_options from the
// operation rather than the ledger, pads asset codes with NUL bytes and drops errors.
type WalletBackend struct {
	net    processor.NetID
	events bool
	comp   *effects.Computer
	tokens *token_transfer.EventsProcessor
	now    func() time.Time
	stats  *processor.Counters
}

// NewWalletBackend is the WalletBackend constructor.
func NewWalletBackend(c *walletBackendConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("WalletBackend", env)
	if err != nil {
		return nil, err
	}
	return &WalletBackend{net: net, events: c.ExtractContractEvents, comp: effects.NewComputer(net.Passphrase),
		tokens: token_transfer.NewEventsProcessor(net.Passphrase), now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time", "transactions_processed", "state_changes_found")}, nil
}

// Stats implements component.StatsReporter.
func (p *WalletBackend) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *WalletBackend) NeedsDecode() bool { return true }

// Prepare implements component.Preparer: the ledger's transactions (processor.Transactions)
// are read on the decode-ahead workers.
func (p *WalletBackend) Prepare(l *ledger.Ledger) { _, _ = processor.Transactions(l, p.net.Passphrase) }

// Process implements component.Processor.
func (p *WalletBackend) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var own []component.Record
	txs := 0
	err := processor.EachTransaction(l, p.net.Passphrase, func(tx *ingest.LedgerTransaction) error {
		if !tx.Result.Successful() {
			return nil
		}
		txs++
		b := changeBuilder{p: p, l: l, tx: tx, hash: tx.Hash.HexString()}
		if err := b.transaction(); err != nil {
			return fmt.Errorf("transaction %s: %w", b.hash, err)
		}
		own = append(own, b.out...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("WalletBackend: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_processed"] += float64(txs)
		m["state_changes_found"] += float64(len(own))
	})
	return processor.Enrich(in, own), nil
}
