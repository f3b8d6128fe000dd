package raw

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// LedgerJSON is the ledger as LedgerToJSON renders it: upstream's top-level fields as columns
// and the transactions (with their operations, entry changes and events) as one JSON array.
type LedgerJSON struct {
	Sequence                   uint32          `json:"sequence"`
	LedgerHash                 string          `json:"ledger_hash"`
	PreviousLedgerHash         string          `json:"previous_ledger_hash"`
	ClosedAtMillis             int64           `json:"closed_at"` // unix milliseconds, as upstream
	ProtocolVersion            uint32          `json:"protocol_version"`
	TotalCoins                 int64           `json:"total_coins"`
	FeePool                    int64           `json:"fee_pool"`
	BaseFee                    uint32          `json:"base_fee"`
	BaseReserve                uint32          `json:"base_reserve"`
	MaxTxSetSize               uint32          `json:"max_tx_set_size"`
	SuccessfulTransactionCount int             `json:"successful_transaction_count"`
	FailedTransactionCount     int             `json:"failed_transaction_count"`
	SorobanFeeWrite1KB         *int64          `json:"soroban_fee_write_1kb"` // null when the ledger meta has no such extension
	Transactions               json.RawMessage `json:"transactions"`          // []TxJSON

	network string
}

// RecordKind implements component.Record.
func (LedgerJSON) RecordKind() string { return "ledger_json" }

// NaturalKey implements component.Record: network and ledger.
func (r LedgerJSON) NaturalKey() string {
	return processor.Key(r.network, r.Sequence)
}

// TxJSON is one transaction of LedgerJSON.Transactions. The parquet tags are the nested
// columns of SaveToLedgerParquet (a field JSON omits when empty is a null there).
type TxJSON struct {
	TransactionHash       string      `json:"transaction_hash" parquet:"transaction_hash"`
	Account               string      `json:"account" parquet:"account"`
	AccountMuxed          string      `json:"account_muxed,omitempty" parquet:"account_muxed,optional"`
	AccountSequence       int64       `json:"account_sequence" parquet:"account_sequence"`
	MaxFee                uint32      `json:"max_fee" parquet:"max_fee"`
	FeeCharged            int64       `json:"fee_charged" parquet:"fee_charged"`
	Successful            bool        `json:"successful" parquet:"successful"`
	OperationCount        int         `json:"operation_count" parquet:"operation_count"`
	InnerTransactionHash  string      `json:"inner_transaction_hash,omitempty" parquet:"inner_transaction_hash,optional"`
	NewMaxFee             *int64      `json:"new_max_fee,omitempty" parquet:"new_max_fee,optional"`
	MemoType              string      `json:"memo_type,omitempty" parquet:"memo_type,optional"`
	Memo                  string      `json:"memo,omitempty" parquet:"memo,optional"`
	TimeBoundsLower       uint64      `json:"time_bounds_lower,omitempty" parquet:"time_bounds_lower,optional"`
	TimeBoundsUpper       uint64      `json:"time_bounds_upper,omitempty" parquet:"time_bounds_upper,optional"`
	TransactionResultCode string      `json:"transaction_result_code,omitempty" parquet:"transaction_result_code,optional"` // failed transactions only
	Operations            []OpJSON    `json:"operations" parquet:"operations,list"`
	Events                []EventJSON `json:"events,omitempty" parquet:"events,list"` // transaction-level events
}

// OpJSON is one operation of TxJSON.
type OpJSON struct {
	ID                 string       `json:"id" parquet:"id"` // <transaction hash>-<index>
	Type               string       `json:"type" parquet:"type"`
	ResultCode         string       `json:"result_code,omitempty" parquet:"result_code,optional"`
	SourceAccount      string       `json:"source_account,omitempty" parquet:"source_account,optional"`
	SourceAccountMuxed string       `json:"source_account_muxed,omitempty" parquet:"source_account_muxed,optional"`
	Body               string       `json:"body" parquet:"body"` // base64 XDR OperationBody
	LedgerEntryChanges []ChangeJSON `json:"ledger_entry_changes,omitempty" parquet:"ledger_entry_changes,list"`
	Events             []EventJSON  `json:"events,omitempty" parquet:"events,list"`
}

// ChangeJSON is one ledger entry change of an operation.
type ChangeJSON struct {
	ID                         string `json:"id" parquet:"id"`
	ChangeType                 string `json:"change_type" parquet:"change_type"` // created|updated|removed|restored
	LedgerEntryType            string `json:"ledger_entry_type" parquet:"ledger_entry_type"`
	EntryData                  string `json:"entry_data" parquet:"entry_data"` // base64 XDR LedgerEntryData (after, or before a removal)
	LastModifiedLedgerSequence uint32 `json:"last_modified_ledger_sequence,omitempty" parquet:"last_modified_ledger_sequence,optional"`
}

// EventJSON is one contract event.
type EventJSON struct {
	ID                       string   `json:"id" parquet:"id"`
	Type                     string   `json:"type" parquet:"type"` // contract|system|diagnostic
	InSuccessfulContractCall bool     `json:"in_successful_contract_call" parquet:"in_successful_contract_call"`
	ContractID               string   `json:"contract_id,omitempty" parquet:"contract_id,optional"`
	Topics                   []string `json:"topics,omitempty" parquet:"topics,list"` // base64 XDR ScVal each
	Data                     string   `json:"data,omitempty" parquet:"data,optional"` // base64 XDR ScVal
}

type ledgerToJSONConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// LedgerToJSON emits the ledger as one LedgerJSON (upstream's "AWS-like" layout: header
// fields, then every transaction with its operations, each operation's ledger entry changes
// and contract events). It reads the shared decoded ledger through the SDK's transaction
// reader (envelope and result accessors, GetOperationChanges, GetTransactionEvents): no view
// serves per-operation changes. The SDK v0.7.3 has no XDR-to-JSON marshalling of its own (the
// xdr2json converter lives with stellar-rpc, in Rust, behind cgo), so the encoding is this
// processor's: the layout above, nested values as base64 XDR. It ignores its input records.
// Keyed by network and ledger.
//
// Upstream differences (bugs there): an operation's result_code is given for failed
// transactions and fee bumps too (upstream only for successful non-fee-bump ones);
// source_account_muxed is the M... address (upstream encodes the 8-byte id alone); new_max_fee
// is the fee bump's own fee (upstream repeats the inner fee); event types are the event's
// (upstream says "contract" for all) and topics are each topic's XDR (upstream base64s Go's
// JSON of the topic structs); soroban_fee_write_1kb is null when absent (upstream panics on
// ledgers without the extension); an error fails the ledger (upstream drops events and
// changes it fails to read).
type LedgerToJSON struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewLedgerToJSON is the LedgerToJSON constructor.
func NewLedgerToJSON(c *ledgerToJSONConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("LedgerToJSON", env)
	if err != nil {
		return nil, err
	}
	return &LedgerToJSON{net: net, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time", "transactions")}, nil
}

// Stats implements component.StatsReporter.
func (p *LedgerToJSON) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *LedgerToJSON) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *LedgerToJSON) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	r, n, err := p.render(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("LedgerToJSON: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions"] += float64(n)
	})
	return []component.Record{r}, nil
}

func (p *LedgerToJSON) render(ctx context.Context, l *ledger.Ledger) (LedgerJSON, int, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return LedgerJSON{}, 0, err
	}
	h := lcm.LedgerHeaderHistoryEntry().Header
	r := LedgerJSON{network: p.net.Name, Sequence: lcm.LedgerSequence(), LedgerHash: lcm.LedgerHash().HexString(),
		PreviousLedgerHash: h.PreviousLedgerHash.HexString(), ClosedAtMillis: int64(h.ScpValue.CloseTime) * 1000, //nolint:gosec // close times fit
		ProtocolVersion: uint32(h.LedgerVersion), TotalCoins: int64(h.TotalCoins), FeePool: int64(h.FeePool),
		BaseFee: uint32(h.BaseFee), BaseReserve: uint32(h.BaseReserve), MaxTxSetSize: uint32(h.MaxTxSetSize)}
	if ext, ok := ledgerMetaExt(lcm); ok && ext.V == 1 {
		v := int64(ext.V1.SorobanFeeWrite1Kb)
		r.SorobanFeeWrite1KB = &v
	}
	txs := []TxJSON{}
	if err := eachTransaction(ctx, p.net.Passphrase, lcm, func(tx *ingest.LedgerTransaction) error {
		t, err := txJSON(tx)
		if err != nil {
			return fmt.Errorf("transaction %s: %w", tx.Hash.HexString(), err)
		}
		if t.Successful {
			r.SuccessfulTransactionCount++
		} else {
			r.FailedTransactionCount++
		}
		txs = append(txs, t)
		return nil
	}); err != nil {
		return r, 0, err
	}
	if r.Transactions, err = json.Marshal(txs); err != nil {
		return r, 0, err
	}
	return r, len(txs), nil
}

// ledgerMetaExt is the LedgerCloseMeta V1/V2 extension.
func ledgerMetaExt(lcm *xdr.LedgerCloseMeta) (xdr.LedgerCloseMetaExt, bool) {
	switch lcm.V {
	case 1:
		return lcm.V1.Ext, true
	case 2:
		return lcm.V2.Ext, true
	}
	return xdr.LedgerCloseMetaExt{}, false
}

func txJSON(tx *ingest.LedgerTransaction) (TxJSON, error) {
	hash := tx.Result.TransactionHash.HexString()
	account, err := tx.Account()
	if err != nil {
		return TxJSON{}, err
	}
	charged, _ := tx.FeeCharged()
	t := TxJSON{TransactionHash: hash, Account: account, AccountSequence: tx.AccountSequence(), MaxFee: tx.MaxFee(),
		FeeCharged: charged, Successful: tx.Successful(), OperationCount: len(tx.Envelope.Operations())}
	t.AccountMuxed, _ = tx.AccountMuxed()
	t.InnerTransactionHash, _ = tx.InnerTransactionHash()
	if fee, ok := tx.NewMaxFee(); ok {
		t.NewMaxFee = &fee
	}
	if mt := tx.MemoType(); mt != "none" {
		t.MemoType, t.Memo = mt, tx.Memo()
	}
	if tb := tx.Envelope.TimeBounds(); tb != nil {
		t.TimeBoundsLower, t.TimeBoundsUpper = uint64(tb.MinTime), uint64(tb.MaxTime)
	}
	if !t.Successful {
		t.TransactionResultCode = coreResultCode(tx.Result.Result.Result.Code)
	}
	evs, err := tx.GetTransactionEvents()
	if err != nil {
		return t, fmt.Errorf("reading events: %w", err)
	}
	for i, e := range evs.TransactionEvents {
		ev, err := eventJSON(fmt.Sprintf("%s-tx-%d", hash, i), e.Event, t.Successful)
		if err != nil {
			return t, err
		}
		t.Events = append(t.Events, ev)
	}
	results, _ := tx.Result.OperationResults()
	t.Operations = make([]OpJSON, 0, t.OperationCount)
	for i, op := range tx.Envelope.Operations() {
		o := OpJSON{ID: fmt.Sprintf("%s-%d", hash, i), Type: op.Body.Type.String()}
		if i < len(results) {
			o.ResultCode = results[i].Code.String()
		}
		if op.SourceAccount != nil {
			o.SourceAccount = op.SourceAccount.ToAccountId().Address()
			if op.SourceAccount.Type == xdr.CryptoKeyTypeKeyTypeMuxedEd25519 {
				o.SourceAccountMuxed = op.SourceAccount.Address()
			}
		}
		if o.Body, err = xdr.MarshalBase64(op.Body); err != nil {
			return t, err
		}
		changes, err := tx.GetOperationChanges(uint32(i)) //nolint:gosec // operation indexes are small
		if err != nil {
			return t, fmt.Errorf("operation %d changes: %w", i, err)
		}
		for k, ch := range changes {
			c, err := changeJSON(fmt.Sprintf("%s-op%d-change%d", hash, i, k), ch)
			if err != nil {
				return t, err
			}
			o.LedgerEntryChanges = append(o.LedgerEntryChanges, c)
		}
		if i < len(evs.OperationEvents) {
			for k, e := range evs.OperationEvents[i] {
				ev, err := eventJSON(fmt.Sprintf("%s-op%d-%d", hash, i, k), e, t.Successful)
				if err != nil {
					return t, err
				}
				o.Events = append(o.Events, ev)
			}
		}
		t.Operations = append(t.Operations, o)
	}
	return t, nil
}

func changeJSON(id string, ch ingest.Change) (ChangeJSON, error) {
	kind, err := changeTypeName(ch.ChangeType)
	if err != nil {
		return ChangeJSON{}, err
	}
	entry := ch.Post
	if entry == nil {
		entry = ch.Pre
	}
	c := ChangeJSON{ID: id, ChangeType: kind, LedgerEntryType: entry.Data.Type.String(),
		LastModifiedLedgerSequence: uint32(entry.LastModifiedLedgerSeq)}
	c.EntryData, err = xdr.MarshalBase64(entry.Data)
	return c, err
}

func eventJSON(id string, e xdr.ContractEvent, successful bool) (EventJSON, error) {
	ev := EventJSON{ID: id, InSuccessfulContractCall: successful,
		Type: strings.ToLower(strings.TrimPrefix(e.Type.String(), "ContractEventType"))}
	if e.ContractId != nil {
		var err error
		if ev.ContractID, err = strkey.Encode(strkey.VersionByteContract, e.ContractId[:]); err != nil {
			return ev, err
		}
	}
	if e.Body.V == 0 && e.Body.V0 != nil {
		for _, topic := range e.Body.V0.Topics {
			s, err := xdr.MarshalBase64(topic)
			if err != nil {
				return ev, err
			}
			ev.Topics = append(ev.Topics, s)
		}
		var err error
		if ev.Data, err = xdr.MarshalBase64(e.Body.V0.Data); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// coreResultCode spells a transaction result code as stellar-core and upstream do
// (TransactionResultCodeTxBadSeq -> txBAD_SEQ).
func coreResultCode(c xdr.TransactionResultCode) string {
	name := strings.TrimPrefix(c.String(), "TransactionResultCodeTx")
	var b strings.Builder
	b.WriteString("tx")
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteString(strings.ToUpper(string(r)))
	}
	return b.String()
}
