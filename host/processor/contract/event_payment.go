package contract

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// EventPaymentRecord is one payment of Kwickbit's payment processor contract, with upstream's
// EventPayment field names (the event_payments table and Pub/Sub message of upstream's
// kwickbit pipeline). id is upstream's "<ledger>-<first 8 hex of the tx hash>-<event index in
// its operation>".
type EventPaymentRecord struct {
	ID             string    `json:"id"`
	PaymentID      string    `json:"payment_id"` // 0x + hex of the payment id bytes
	TokenID        string    `json:"token_id"`   // token contract
	Amount         uint64    `json:"amount"`
	FromID         string    `json:"from_id"`
	MerchantID     string    `json:"merchant_id"`
	RoyaltyAmount  uint64    `json:"royalty_amount"`
	TxHash         string    `json:"tx_hash"`
	BlockHeight    uint32    `json:"block_height"`
	BlockTimestamp time.Time `json:"block_timestamp"`

	network    string
	eventIndex int
}

// RecordKind implements component.Record.
func (EventPaymentRecord) RecordKind() string { return "event_payments" }

// NaturalKey implements component.Record: network, ledger, transaction and event position.
func (r EventPaymentRecord) NaturalKey() string {
	return processor.Key(r.network, r.BlockHeight, r.TxHash, strconv.Itoa(r.eventIndex))
}

type eventPaymentConfig struct {
	PaymentContractID string `mapstructure:"payment_contract_id"`
}

// EventPaymentExtractor is a transformer of ContractEvent's records (upstream chains it after
// ContractEvent): each contract event of a successful transaction whose first symbol topic is
// "payment" (upstream's event-type detection) and whose data is the payment struct
// {payment_id: bytes, token: address, amount, from: address, merchant: address,
// royalty_amount} becomes an EventPaymentRecord; other records are ignored.
//
// Config: payment_contract_id (optional: only that contract's events; upstream's file sets
// it but upstream ignored it, here it is honoured). Amounts of any Soroban integer type are
// accepted when they fit 0..2^64-1.
//
// A payment event whose data does not have that shape is skipped, counted
// (extraction_errors) and logged, as upstream does: it is the contract's data, the same on
// every replay, and must not stop the pipeline. Unlike upstream, events of failed
// transactions are not payments (upstream's ContractEvent dropped them before they got here).
type EventPaymentExtractor struct {
	contracts contractSet
	skips     *processor.SkipLog
	now       func() time.Time
	stats     *processor.Counters
}

// NewEventPaymentExtractor is the EventPaymentExtractor constructor.
func NewEventPaymentExtractor(c *eventPaymentConfig, env component.Env) (component.Processor, error) {
	set, err := parseContracts("EventPaymentExtractor", map[string][]string{"payment_contract_id": {c.PaymentContractID}})
	if err != nil {
		return nil, err
	}
	return &EventPaymentExtractor{contracts: set, skips: processor.NewSkipLog(env.Logger), now: processor.Clock(env), stats: processor.NewCounters(
		"processed_ledgers", "total_events", "extracted_payments", "skipped_events", "extraction_errors",
		"last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *EventPaymentExtractor) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it reads the contract events in in.
func (p *EventPaymentExtractor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var out []component.Record
	var total, skipped, errs int
	for _, r := range in {
		ev, ok := r.(ContractEventRecord)
		if !ok {
			continue
		}
		total++
		if !ev.Successful || ev.Type != int32(xdr.ContractEventTypeContract) || !p.contracts.has(ev.contractAddress()) {
			skipped++
			continue
		}
		d, err := decodeEventRecord(ev)
		if err != nil {
			return nil, fmt.Errorf("EventPaymentExtractor: ledger %d transaction %s event %d: %w", ev.LedgerSequence, ev.TransactionHash, ev.EventIndex, err)
		}
		if firstSymbol(d.topics) != "payment" {
			skipped++
			continue
		}
		rec, err := payment(ev, d.data)
		if err != nil {
			errs++
			p.skips.Warn("EventPaymentExtractor: skipping a payment event whose data is not a payment",
				"ledger", ev.LedgerSequence, "transaction", ev.TransactionHash, "event_index", ev.EventIndex, "error", err)
			continue
		}
		out = append(out, rec)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["total_events"] += float64(total)
		m["extracted_payments"] += float64(len(out))
		m["skipped_events"] += float64(skipped)
		m["extraction_errors"] += float64(errs)
	})
	return out, nil
}

func payment(ev ContractEventRecord, data xdr.ScVal) (EventPaymentRecord, error) {
	r := EventPaymentRecord{network: ev.network, eventIndex: ev.EventIndex, TxHash: ev.TransactionHash,
		BlockHeight: ev.LedgerSequence, BlockTimestamp: ev.ClosedAt.UTC(),
		ID: fmt.Sprintf("%d-%s-%d", ev.LedgerSequence, ev.TransactionHash[:min(8, len(ev.TransactionHash))], ev.opEventIndex)}
	fs, err := structFields(data)
	if err != nil {
		return r, err
	}
	pid, err := field(fs, "payment_id")
	if err != nil {
		return r, err
	}
	b, ok := pid.GetBytes()
	if !ok {
		return r, fmt.Errorf("field payment_id is a %s, not bytes", pid.Type)
	}
	r.PaymentID = "0x" + hex.EncodeToString(b)
	if r.TokenID, err = addressField(fs, "token"); err != nil {
		return r, err
	}
	if r.FromID, err = addressField(fs, "from"); err != nil {
		return r, err
	}
	if r.MerchantID, err = addressField(fs, "merchant"); err != nil {
		return r, err
	}
	if r.Amount, err = uint64Field(fs, "amount"); err != nil {
		return r, err
	}
	if r.RoyaltyAmount, err = uint64Field(fs, "royalty_amount"); err != nil {
		return r, err
	}
	return r, nil
}
