// Package wallet owns the wallet-backend chain upstream CDP ships
// (config/base/wallet_backend_unified*.yaml): TransactionXDRExtractor (each transaction's
// envelope, result and meta as base64 XDR), WalletBackend (per-account state changes) and
// ParticipantExtractor (the accounts each transaction touches). With StellarEffects
// (host/processor/effects) and ProcessAccountDataFull they feed upstream's
// WalletBackendPostgreSQL consumer. Each is an enricher: it returns the records it received
// followed by its own, so the last processor of the chain hands the consumer every kind.
package wallet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// TransactionXDRRecord is one transaction with its raw XDR (upstream's TransactionXDROutput).
type TransactionXDRRecord struct {
	LedgerSequence   uint32          `json:"ledger_sequence"`
	TransactionHash  string          `json:"transaction_hash"`
	TransactionIndex int32           `json:"transaction_index"` // 1-based, apply order
	Timestamp        time.Time       `json:"timestamp"`         // the ledger's close time
	EnvelopeXDR      string          `json:"envelope_xdr"`      // TransactionEnvelope, base64
	ResultXDR        string          `json:"result_xdr"`        // TransactionResultPair (hash and result), base64
	ResultMetaXDR    string          `json:"result_meta_xdr"`   // TransactionMeta, base64
	SourceAccount    string          `json:"source_account"`    // G address of the (inner) transaction's source
	Success          bool            `json:"success"`
	OperationCount   int             `json:"operation_count"`
	FeeCharged       int64           `json:"fee_charged"` // stroops
	Operations       json.RawMessage `json:"operations"`  // [OperationXDR, ...]

	network string
}

// OperationXDR is one element of TransactionXDRRecord.Operations.
type OperationXDR struct {
	Index         int    `json:"index"`          // 0-based
	Type          string `json:"type"`           // e.g. "OperationTypePayment" (xdr.OperationType's name)
	SourceAccount string `json:"source_account"` // the operation's source, else the transaction's (G address)
	OperationXDR  string `json:"operation_xdr"`  // Operation, base64
}

// RecordKind implements component.Record.
func (TransactionXDRRecord) RecordKind() string { return "transaction_xdr" }

// NaturalKey implements component.Record: network, ledger and transaction hash.
func (r TransactionXDRRecord) NaturalKey() string {
	return r.network + ":" + strconv.FormatUint(uint64(r.LedgerSequence), 10) + ":" + r.TransactionHash
}

// OperationList decodes Operations.
func (r TransactionXDRRecord) OperationList() ([]OperationXDR, error) {
	var ops []OperationXDR
	if err := json.Unmarshal(r.Operations, &ops); err != nil {
		return nil, fmt.Errorf("decoding the operations of transaction %s: %w", r.TransactionHash, err)
	}
	return ops, nil
}

type transactionXDRConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// TransactionXDRExtractor emits one TransactionXDRRecord per transaction of the ledger,
// successful or failed, in apply order: the envelope, the result pair and the meta re-encoded
// as base64 XDR from the SDK's LedgerTransactionReader over the ledger's shared full decode,
// with the transaction's source, success, operation count and fee, and each operation's own
// XDR.
//
// Config: network | network_passphrase (upstream defaults to testnet's passphrase; here the
// pipeline's network is the default).
//
// Chain: an enricher (see the package doc). Keys: network, ledger, transaction hash.
//
// Upstream differences: upstream logs and skips a transaction it cannot read or encode (so a
// ledger's rows can silently lack it) and leaves a field empty when encoding fails; here the
// ledger fails with an error naming the transaction.
type TransactionXDRExtractor struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewTransactionXDRExtractor is the TransactionXDRExtractor constructor.
func NewTransactionXDRExtractor(c *transactionXDRConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TransactionXDRExtractor", env)
	if err != nil {
		return nil, err
	}
	return &TransactionXDRExtractor{net: net, now: processor.Clock(env), stats: processor.NewCounters(
		"processed_ledgers", "last_ledger", "last_processed_time", "transactions_found", "operations_found")}, nil
}

// Stats implements component.StatsReporter.
func (p *TransactionXDRExtractor) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor.
func (p *TransactionXDRExtractor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var own []component.Record
	ops := 0
	err := processor.EachTransaction(l, p.net.Passphrase, func(tx *ingest.LedgerTransaction) error {
		r, err := p.record(l, tx)
		if err != nil {
			return fmt.Errorf("transaction %s: %w", tx.Hash.HexString(), err)
		}
		ops += r.OperationCount
		own = append(own, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("TransactionXDRExtractor: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_found"] += float64(len(own))
		m["operations_found"] += float64(ops)
	})
	return processor.Enrich(in, own), nil
}

type binaryMarshaler interface{ MarshalBinary() ([]byte, error) }

func b64(v binaryMarshaler, what string) (string, error) {
	b, err := v.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("encoding the %s: %w", what, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func (p *TransactionXDRExtractor) record(l *ledger.Ledger, tx *ingest.LedgerTransaction) (TransactionXDRRecord, error) {
	src := tx.Envelope.SourceAccount()
	srcID := src.ToAccountId()
	r := TransactionXDRRecord{
		LedgerSequence:   l.Sequence(),
		TransactionHash:  tx.Hash.HexString(),
		TransactionIndex: int32(tx.Index),
		Timestamp:        l.CloseTime(),
		SourceAccount:    srcID.Address(),
		Success:          tx.Result.Successful(),
		FeeCharged:       int64(tx.Result.Result.FeeCharged),
		network:          p.net.Name,
	}
	var err error
	if r.EnvelopeXDR, err = b64(tx.Envelope, "envelope"); err != nil {
		return r, err
	}
	if r.ResultXDR, err = b64(tx.Result, "result"); err != nil {
		return r, err
	}
	if r.ResultMetaXDR, err = b64(tx.UnsafeMeta, "meta"); err != nil {
		return r, err
	}
	envOps := tx.Envelope.Operations()
	ops := make([]OperationXDR, len(envOps))
	for i, op := range envOps {
		opSrc := srcID
		if op.SourceAccount != nil {
			opSrc = op.SourceAccount.ToAccountId()
		}
		ops[i] = OperationXDR{Index: i, Type: op.Body.Type.String(), SourceAccount: opSrc.Address()}
		if ops[i].OperationXDR, err = b64(op, fmt.Sprintf("operation %d", i)); err != nil {
			return r, err
		}
	}
	r.OperationCount = len(ops)
	if r.Operations, err = json.Marshal(ops); err != nil {
		return r, fmt.Errorf("encoding the operations: %w", err)
	}
	return r, nil
}
