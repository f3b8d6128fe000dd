package raw

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// LedgerSummary is the LatestLedger record: one per ledger. Field names follow the upstream CDP
// LatestLedger processor; counts are read from the ledger's zero-copy view.
type LedgerSummary struct {
	Network            string    `json:"network"`
	Sequence           uint32    `json:"sequence"`
	Hash               string    `json:"hash"`
	PreviousHash       string    `json:"previous_ledger_hash"`
	ClosedAt           time.Time `json:"closed_at"`
	ProtocolVersion    uint32    `json:"protocol_version"`
	BaseFee            uint32    `json:"base_fee"`
	TransactionCount   int       `json:"transaction_count"`
	SuccessfulTxCount  int       `json:"successful_tx_count"`
	FailedTxCount      int       `json:"failed_tx_count"`
	OperationCount     int       `json:"operation_count"`            // every operation of the tx set
	SuccessfulOpCount  int       `json:"successful_operation_count"` // operations of successful transactions
	TotalFeeCharged    int64     `json:"total_fee_charged"`          // stroops, every transaction
	SorobanTxCount     int       `json:"soroban_tx_count"`
	TotalSorobanFees   int64     `json:"total_soroban_fees"` // declared resource fees of Soroban transactions
	ResourceInstrTotal uint64    `json:"total_resource_instructions"`
	SorobanInclFees    uint64    `json:"soroban_inclusion_fees"` // fee charged minus resource fee charged, summed
}

// RecordKind implements component.Record.
func (LedgerSummary) RecordKind() string { return "latest_ledger" }

// NaturalKey implements component.Record: network and sequence.
func (r LedgerSummary) NaturalKey() string {
	return processor.Key(r.Network, r.Sequence)
}

type latestLedgerConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// LatestLedger emits one LedgerSummary per ledger without decoding the ledger.
//
// It is also registered as LatestLedgerRPC: upstream computes that one from RPC responses with
// a subset of these fields under the same names (sequence, hash, transaction_count,
// operation_count, successful_tx_count, failed_tx_count, total_fee_charged, closed_at,
// base_fee, soroban_tx_count, total_soroban_fees, total_resource_instructions), and on cdpd's
// ledger path they are this summary. Upstream's closed_at there is the wall-clock time the
// RPC answer arrived; here it is the ledger's close time.
type LatestLedger struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewLatestLedger is the LatestLedger constructor (config: network | network_passphrase).
func NewLatestLedger(c *latestLedgerConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("LatestLedger", env)
	if err != nil {
		return nil, err
	}
	return &LatestLedger{net: net, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time", "transactions", "operations")}, nil
}

// Stats implements component.StatsReporter.
func (p *LatestLedger) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *LatestLedger) Process(_ context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	s, err := summarize(l)
	if err != nil {
		return nil, fmt.Errorf("LatestLedger: summarizing ledger %d: %w", l.Sequence(), err)
	}
	s.Network = p.net.Name
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, s.Sequence, p.now())
		m["transactions"] += float64(s.TransactionCount)
		m["operations"] += float64(s.OperationCount)
	})
	return []component.Record{s}, nil
}

// summarize reads a LedgerSummary from the ledger's view: header fields, the transactions'
// results (processor.TxParts, the walk shared with the pipelines holding the ledger: success,
// fees, per-op results) and one walk over the tx set's envelopes (operation counts and Soroban
// resources; sums do not depend on envelope order, so no pairing by hash).
func summarize(l *ledger.Ledger) (LedgerSummary, error) {
	var s LedgerSummary
	v := l.View()
	hdr, err := v.LedgerHeader()
	if err != nil {
		return s, fmt.Errorf("reading ledger header: %w", err)
	}
	if err := processor.Try(func() {
		s.Hash = hex.EncodeToString(hdr.MustHash().MustRaw())
		h := hdr.MustHeader()
		s.Sequence = h.MustLedgerSeq().MustValue()
		s.PreviousHash = hex.EncodeToString(h.MustPreviousLedgerHash().MustRaw())
		s.ClosedAt = time.Unix(int64(h.MustScpValue().MustCloseTime().MustValue()), 0).UTC() //nolint:gosec // close times fit int64
		s.ProtocolVersion = h.MustLedgerVersion().MustValue()
		s.BaseFee = h.MustBaseFee().MustValue()
	}); err != nil {
		return s, fmt.Errorf("reading ledger header fields: %w", err)
	}

	parts, err := processor.TxParts(l)
	if err != nil {
		return s, err
	}
	s.TransactionCount = len(parts)
	for i := range parts {
		if err := processor.Try(func() {
			res := parts[i].Result.MustResult()
			s.TotalFeeCharged += res.MustFeeCharged().MustValue()
			inner := res.MustResult()
			switch inner.MustCode() {
			case xdr.TransactionResultCodeTxSuccess:
				s.SuccessfulTxCount++
				s.SuccessfulOpCount += inner.MustResults().MustCount()
			case xdr.TransactionResultCodeTxFeeBumpInnerSuccess:
				s.SuccessfulTxCount++
				s.SuccessfulOpCount += inner.MustInnerResultPair().MustResult().MustResult().MustResults().MustCount()
			default:
				s.FailedTxCount++
			}
		}); err != nil {
			return s, fmt.Errorf("reading result of transaction %d: %w", i+1, err)
		}
	}
	fees, err := ingest.FeesFromTxParts(parts)
	if err != nil {
		return s, fmt.Errorf("reading fees: %w", err)
	}
	for _, f := range fees.SorobanInclusionFees {
		s.SorobanInclFees += f
	}

	if err := processor.WalkEnvelopes(v, func(env xdr.TransactionEnvelopeView) {
		e := readEnvelope(env)
		s.OperationCount += e.opCount
		if e.soroban {
			s.SorobanTxCount++
			s.TotalSorobanFees += e.resource.MustResourceFee().MustValue()
			s.ResourceInstrTotal += uint64(e.resource.MustResources().MustInstructions().MustValue())
		}
	}); err != nil {
		return s, fmt.Errorf("walking the transaction set: %w", err)
	}
	return s, nil
}
