package effects

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// EffectRecord is one effect as a row of the history_effects table: the field names of
// upstream's effect output (stellar-etl's EffectOutput), plus the transaction and the
// operation's index it belongs to.
type EffectRecord struct {
	Address          string          `json:"address"`
	AddressMuxed     *string         `json:"address_muxed"` // null unless the operation named a muxed account
	OperationID      int64           `json:"operation_id"`
	Details          json.RawMessage `json:"details"` // Horizon's details of the effect type
	Type             int32           `json:"type"`    // protocols/horizon/effects.EffectType
	TypeString       string          `json:"type_string"`
	LedgerClosed     time.Time       `json:"closed_at"`
	LedgerSequence   uint32          `json:"ledger_sequence"`
	EffectIndex      uint32          `json:"index"` // 0-based, in the operation
	EffectID         string          `json:"id"`    // "<operation_id>-<index>"
	TransactionHash  string          `json:"transaction_hash"`
	TransactionIndex int             `json:"transaction_index"` // 1-based, apply order
	OperationIndex   int             `json:"operation_index"`   // 0-based, in the transaction

	network string
}

// RecordKind implements component.Record.
func (EffectRecord) RecordKind() string { return "history_effects" }

// NaturalKey implements component.Record: network, ledger and effect id.
func (r EffectRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.EffectID)
}

type stellarEffectsConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// StellarEffects emits Horizon's effects of every operation of every successful transaction
// (failed transactions have none), one EffectRecord each, in ledger order: transactions in
// apply order, operations in order, effects in Horizon's order. It reads the SDK's
// LedgerTransactionReader over the ledger's shared full decode (see the package doc for the
// semantics).
//
// Config: network | network_passphrase (upstream requires network_passphrase; here it
// defaults to the pipeline's network).
//
// Chain: an enricher, like upstream's (which adds its effects to the message's metadata and
// forwards the ledger): it returns the records it received followed by its own.
//
// Keys: network, ledger, "<operation_id>-<index>": a replay upserts the same rows.
//
// Upstream differences: upstream (stellar-etl's copy of Horizon's code) skips a transaction
// whose effects fail to compute and goes on (the ledger's effects then silently lack it);
// here the ledger fails with an error naming the transaction and operation. Upstream adds
// extend_footprint_ttl and restore_footprint effects (types 98 and 99) that Horizon does not
// have; Horizon's semantics are followed (none). Stellar Asset Contract events are read by the
// SDK's token_transfer processor, which reports a protocol-22 SAC transfer from (to) the
// asset's issuer as a mint (burn): the effect is then only the credit (debit) of the other
// side, where Horizon adds the issuer's debit (credit). Details keys are those Horizon's
// ingestion writes (and upstream outputs): "auth_revocable_flag" and
// "authorized_to_maintain_liabilites" where protocols/horizon/effects reads
// "auth_revokable_flag" and "authorized_to_maintain_liabilites_flag".
type StellarEffects struct {
	net   processor.NetID
	comp  *Computer
	now   func() time.Time
	stats *processor.Counters
}

// NewStellarEffects is the StellarEffects constructor.
func NewStellarEffects(c *stellarEffectsConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("StellarEffects", env)
	if err != nil {
		return nil, err
	}
	return &StellarEffects{net: net, comp: NewComputer(net.Passphrase), now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time",
			"transactions_processed", "operations_processed", "effects_found")}, nil
}

// Stats implements component.StatsReporter.
func (p *StellarEffects) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *StellarEffects) NeedsDecode() bool { return true }

// Prepare implements component.Preparer: the ledger's transactions (processor.Transactions)
// are read on the decode-ahead workers.
func (p *StellarEffects) Prepare(l *ledger.Ledger) {
	_, _ = processor.Transactions(l, p.net.Passphrase)
}

// Process implements component.Processor.
func (p *StellarEffects) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var own []component.Record
	txs, ops := 0, 0
	err := processor.EachTransaction(l, p.net.Passphrase, func(tx *ingest.LedgerTransaction) error {
		txs++
		ops += len(tx.Envelope.Operations())
		effs, err := p.comp.Transaction(tx)
		if err != nil {
			return err
		}
		hash := tx.Hash.HexString()
		for _, e := range effs {
			rec, err := p.record(l, tx, hash, e)
			if err != nil {
				return err
			}
			own = append(own, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("StellarEffects: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_processed"] += float64(txs)
		m["operations_processed"] += float64(ops)
		m["effects_found"] += float64(len(own))
	})
	return processor.Enrich(in, own), nil
}

func (p *StellarEffects) record(l *ledger.Ledger, tx *ingest.LedgerTransaction, hash string, e Effect) (EffectRecord, error) {
	details, err := json.Marshal(e.Details)
	if err != nil {
		return EffectRecord{}, fmt.Errorf("encoding the details of a %s effect of operation %d: %w", e.TypeName(), e.OperationID, err)
	}
	r := EffectRecord{
		Address:          e.Address,
		OperationID:      e.OperationID,
		Details:          details,
		Type:             int32(e.Type),
		TypeString:       e.TypeName(),
		LedgerClosed:     l.CloseTime(),
		LedgerSequence:   l.Sequence(),
		EffectIndex:      e.Order,
		EffectID:         strconv.FormatInt(e.OperationID, 10) + "-" + strconv.FormatUint(uint64(e.Order), 10),
		TransactionHash:  hash,
		TransactionIndex: int(tx.Index),
		OperationIndex:   int(e.OperationIndex),
		network:          p.net.Name,
	}
	if e.AddressMuxed != "" {
		m := e.AddressMuxed
		r.AddressMuxed = &m
	}
	return r, nil
}
