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
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

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
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash)
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
// successful or failed, in apply order: the envelope, the result pair and the meta as base64
// XDR, the transaction's source, success, operation count and fee, and each operation's own
// XDR. It reads the SDK's zero-copy transaction views (ingest.LedgerTransactionViewRange,
// which pairs each result with its envelope by hash): the XDR is the ledger's own bytes, not
// a re-encoding, and only each (small) envelope is decoded, never the whole ledger.
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
	views, err := ingest.LedgerTransactionViewRange(l.View(), 0, 0, p.net.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("TransactionXDRExtractor: reading the transactions of ledger %d: %w", l.Sequence(), err)
	}
	own := make([]component.Record, 0, len(views))
	ops := 0
	for i := range views {
		r, err := p.record(l, &views[i])
		if err != nil {
			return nil, fmt.Errorf("TransactionXDRExtractor: ledger %d transaction %x: %w", l.Sequence(), views[i].Hash, err)
		}
		ops += r.OperationCount
		own = append(own, r)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["transactions_found"] += float64(len(own))
		m["operations_found"] += float64(ops)
	})
	return processor.Enrich(in, own), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// record builds the row of one transaction view. The view's byte slices alias the ledger:
// they are only encoded (copied), never kept.
func (p *TransactionXDRExtractor) record(l *ledger.Ledger, v *ingest.LedgerTransactionView) (TransactionXDRRecord, error) {
	var env xdr.TransactionEnvelope
	if err := xdr.SafeUnmarshal(v.Envelope, &env); err != nil {
		return TransactionXDRRecord{}, fmt.Errorf("decoding the envelope: %w", err)
	}
	fee, err := xdr.TransactionResultView(v.Result).FeeCharged()
	if err != nil {
		return TransactionXDRRecord{}, fmt.Errorf("reading the fee charged: %w", err)
	}
	feeCharged, err := fee.Value()
	if err != nil {
		return TransactionXDRRecord{}, fmt.Errorf("reading the fee charged: %w", err)
	}
	// A TransactionResultPair is the transaction hash followed by the result.
	pair := make([]byte, 0, len(v.Hash)+len(v.Result))
	pair = append(append(pair, v.Hash[:]...), v.Result...)
	src := env.SourceAccount()
	srcID := src.ToAccountId()
	r := TransactionXDRRecord{
		LedgerSequence:   l.Sequence(),
		TransactionHash:  hex.EncodeToString(v.Hash[:]),
		TransactionIndex: v.ApplicationOrder,
		Timestamp:        l.CloseTime(),
		EnvelopeXDR:      b64(v.Envelope),
		ResultXDR:        b64(pair),
		ResultMetaXDR:    b64(v.Meta),
		SourceAccount:    srcID.Address(),
		Success:          v.Successful,
		FeeCharged:       feeCharged,
		network:          p.net.Name,
	}
	envOps := env.Operations()
	ops := make([]OperationXDR, len(envOps))
	for i, op := range envOps {
		opSrc := srcID
		if op.SourceAccount != nil {
			opSrc = op.SourceAccount.ToAccountId()
		}
		raw, err := op.MarshalBinary()
		if err != nil {
			return r, fmt.Errorf("encoding operation %d: %w", i, err)
		}
		ops[i] = OperationXDR{Index: i, Type: op.Body.Type.String(), SourceAccount: opSrc.Address(), OperationXDR: b64(raw)}
	}
	r.OperationCount = len(ops)
	if r.Operations, err = json.Marshal(ops); err != nil {
		return r, fmt.Errorf("encoding the operations: %w", err)
	}
	return r, nil
}
