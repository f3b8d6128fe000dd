package raw

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// TransactionMessage is one transaction of a ledger as LedgerReader emits it: upstream's
// TransactionMessage (the transaction, its ledger's close time and sequence) with the
// transaction given as its XDR parts (base64) and the columns a sink wants to index.
type TransactionMessage struct {
	LedgerSeqNum     uint32    `json:"ledger_seq_num"`
	CloseTime        int64     `json:"close_time"` // unix seconds, as upstream's CloseTime
	ClosedAt         time.Time `json:"closed_at"`
	TransactionHash  string    `json:"transaction_hash"`  // the outer hash of a fee bump
	TransactionIndex int       `json:"transaction_index"` // 1-based apply order (LedgerTransaction.Index)
	TransactionID    int64     `json:"transaction_id"`    // TOID
	FeeBump          bool      `json:"fee_bump"`
	Successful       bool      `json:"successful"`
	OperationCount   int       `json:"operation_count"`
	EnvelopeXDR      string    `json:"envelope_xdr"` // base64 TransactionEnvelope
	ResultXDR        string    `json:"result_xdr"`   // base64 TransactionResult
	MetaXDR          string    `json:"meta_xdr"`     // base64 TransactionMeta (apply processing)

	network string
}

// RecordKind implements component.Record.
func (TransactionMessage) RecordKind() string { return "ledger_transactions" }

// NaturalKey implements component.Record: network, ledger and apply position.
func (r TransactionMessage) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSeqNum, strconv.Itoa(r.TransactionIndex))
}

type ledgerReaderConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// LedgerReader emits one TransactionMessage per transaction of the ledger, in apply order,
// read from the zero-copy view with the SDK's ingest.LedgerTransactionViewRange (envelopes are
// paired to their results by hash, as the SDK's LedgerTransactionReader pairs them); no full
// decode.
//
// Upstream's LedgerReader turns a LedgerCloseMeta into one JSON TransactionMessage per
// transaction so that the next processor (FilterPayments, WalletBackend, ParticipantExtractor)
// can read transactions. In cdpd every processor receives the ledger itself and reads what it
// needs from it, so a transformer after LedgerReader (FilterPayments) ignores these records and
// emits what it emitted upstream; an enricher after it (which returns its input followed by its
// own records) carries them on to the consumers, which then also receive ledger_transactions
// rows. LedgerReader is thus a source of transaction rows (kind ledger_transactions, keyed by
// network, ledger and apply index, so a replay upserts). It ignores its input records. Config: network | network_passphrase (upstream requires network_passphrase; here
// it may also come from the pipeline's source).
type LedgerReader struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewLedgerReader is the LedgerReader constructor.
func NewLedgerReader(c *ledgerReaderConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("LedgerReader", env)
	if err != nil {
		return nil, err
	}
	return &LedgerReader{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers", "last_ledger",
		"last_processed_time", "successful_transactions", "failed_transactions", "operations_in_successful", "operations_in_failed")}, nil
}

// Stats implements component.StatsReporter.
func (p *LedgerReader) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *LedgerReader) Process(_ context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	txs, err := ingest.LedgerTransactionViewRange(l.View(), 0, 0, p.net.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("LedgerReader: reading transactions of ledger %d: %w", l.Sequence(), err)
	}
	out := make([]component.Record, 0, len(txs))
	var okTx, failTx, okOps, failOps int
	for i := range txs {
		t := &txs[i]
		r := TransactionMessage{network: p.net.Name, LedgerSeqNum: l.Sequence(), CloseTime: t.LedgerCloseTime,
			ClosedAt: l.CloseTime(), TransactionHash: hex.EncodeToString(t.Hash[:]), TransactionIndex: int(t.ApplicationOrder),
			TransactionID: processor.TransactionID(l.Sequence(), int(t.ApplicationOrder)), FeeBump: t.FeeBump,
			Successful: t.Successful, EnvelopeXDR: base64.StdEncoding.EncodeToString(t.Envelope),
			ResultXDR: base64.StdEncoding.EncodeToString(t.Result), MetaXDR: base64.StdEncoding.EncodeToString(t.Meta)}
		if err := processor.Try(func() { r.OperationCount = readEnvelope(xdr.TransactionEnvelopeView(t.Envelope)).opCount }); err != nil {
			return nil, fmt.Errorf("LedgerReader: ledger %d transaction %s: %w", l.Sequence(), r.TransactionHash, err)
		}
		if r.Successful {
			okTx, okOps = okTx+1, okOps+r.OperationCount
		} else {
			failTx, failOps = failTx+1, failOps+r.OperationCount
		}
		out = append(out, r)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["successful_transactions"] += float64(okTx)
		m["failed_transactions"] += float64(failTx)
		m["operations_in_successful"] += float64(okOps)
		m["operations_in_failed"] += float64(failOps)
	})
	return out, nil
}
