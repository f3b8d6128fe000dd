package raw

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// bronzeConfig is BronzeExtractors' config.
type bronzeConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// BronzeExtractors emits upstream's bronze-layer tables, one record kind per table (the kind
// is upstream's table name), for the tables the SDK's readers give faithfully:
//
//   - ledgers_row_v2: one row per ledger (header, counts from the transaction reader, SCP
//     signature, Soroban state size, evicted key count);
//   - transactions_row_v2: one row per transaction, from the SDK's LedgerTransaction
//     accessors (envelope, fee, memo, preconditions, Soroban resources, events, XDR parts);
//   - ttl_snapshot_v1: one row per TTL entry change, from the SDK's change reader.
//
// It reads the shared decoded ledger and ignores its input records. Every row carries the
// ledger sequence and ledger_range (the sequence rounded down to 10000, upstream's partition
// key); keys are network, ledger and position, so a replay upserts.
//
// Upstream's other tables (operations_row_v2, effects_row_v1, trades_row_v1,
// native_balances_snapshot_v1, accounts_snapshot_v1, trustlines_snapshot_v1,
// offers_snapshot_v1, claimable_balances_snapshot_v1, liquidity_pools_snapshot_v1,
// contract_events_stream_v1, contract_data_snapshot_v1, contract_code_snapshot_v1,
// config_settings_snapshot_v1, evicted_keys_state_v1, restored_keys_state_v1,
// account_signers_snapshot_v1) are not emitted yet; ContractEvent, ContractData and
// LedgerChanges carry the same facts in their own tables.
//
// Upstream differences (bugs there): tx_set_operation_count counts every operation of the tx
// set (upstream skips transactions without operation results) and failed_tx_count counts
// failed transactions only; soroban_resources_instructions is the declared instruction budget
// (upstream writes the non-refundable fee charged there); ingestion_timestamp is set (the
// processor's clock); a transaction that fails to read fails the ledger (upstream logs it
// and drops the row).
type BronzeExtractors struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewBronzeExtractors is the BronzeExtractors constructor.
func NewBronzeExtractors(c *bronzeConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("BronzeExtractors", env)
	if err != nil {
		return nil, err
	}
	return &BronzeExtractors{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers", "last_ledger",
		"last_processed_time", "ledgers_row_v2", "transactions_row_v2", "ttl_snapshot_v1")}, nil
}

// Stats implements component.StatsReporter.
func (p *BronzeExtractors) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *BronzeExtractors) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *BronzeExtractors) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return nil, fmt.Errorf("BronzeExtractors: %w", err)
	}
	b := bronzeLedger{net: p.net, l: l, lcm: lcm, rng: l.Sequence() / 10000 * 10000}
	led, txs, err := b.ledgerAndTransactions(ctx, p.now())
	if err != nil {
		return nil, fmt.Errorf("BronzeExtractors: ledger %d: %w", l.Sequence(), err)
	}
	ttls, err := b.ttls(ctx)
	if err != nil {
		return nil, fmt.Errorf("BronzeExtractors: ledger %d: %w", l.Sequence(), err)
	}
	out := make([]component.Record, 0, 1+len(txs)+len(ttls))
	out = append(out, led)
	for _, t := range txs {
		out = append(out, t)
	}
	for _, t := range ttls {
		out = append(out, t)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["ledgers_row_v2"]++
		m["transactions_row_v2"] += float64(len(txs))
		m["ttl_snapshot_v1"] += float64(len(ttls))
	})
	return out, nil
}

// bronzeLedger is one ledger being extracted.
type bronzeLedger struct {
	net processor.NetID
	l   *ledger.Ledger
	lcm *xdr.LedgerCloseMeta // shared: read only
	rng uint32
}

func ptr[T any](v T) *T { return &v }

func (b bronzeLedger) ledgerAndTransactions(ctx context.Context, now time.Time) (BronzeLedgerRow, []BronzeTransactionRow, error) {
	hh := b.lcm.LedgerHeaderHistoryEntry()
	h := hh.Header
	led := BronzeLedgerRow{network: b.net.Name, Sequence: b.l.Sequence(), LedgerHash: hex.EncodeToString(hh.Hash[:]),
		PreviousLedgerHash: hex.EncodeToString(h.PreviousLedgerHash[:]), ClosedAt: b.l.CloseTime(),
		ProtocolVersion: uint32(h.LedgerVersion), TotalCoins: int64(h.TotalCoins), FeePool: int64(h.FeePool),
		BaseFee: uint32(h.BaseFee), BaseReserve: uint32(h.BaseReserve), MaxTxSetSize: uint32(h.MaxTxSetSize),
		IngestionTimestamp: ptr(now.UTC()), LedgerRange: ptr(b.rng)}
	if ext, ok := ledgerMetaExt(b.lcm); ok && ext.V == 1 {
		led.SorobanFeeWrite1KB = ptr(int64(ext.V1.SorobanFeeWrite1Kb))
	}
	if sig, ok := h.ScpValue.Ext.GetLcValueSignature(); ok {
		id, err := strkey.Encode(strkey.VersionByteAccountID, sig.NodeId.Ed25519[:])
		if err != nil {
			return led, nil, fmt.Errorf("encoding the SCP node id: %w", err)
		}
		led.NodeID, led.Signature = &id, ptr(base64.StdEncoding.EncodeToString(sig.Signature))
	}
	hb, err := xdr.MarshalBase64(h)
	if err != nil {
		return led, nil, fmt.Errorf("encoding the header: %w", err)
	}
	led.LedgerHeader = &hb
	switch b.lcm.V {
	case 1:
		led.BucketListSize = ptr(uint64(b.lcm.V1.TotalByteSizeOfLiveSorobanState))
		led.EvictedKeysCount = ptr(uint32(len(b.lcm.V1.EvictedKeys))) //nolint:gosec // small
	case 2:
		led.BucketListSize = ptr(uint64(b.lcm.V2.TotalByteSizeOfLiveSorobanState))
		led.EvictedKeysCount = ptr(uint32(len(b.lcm.V2.EvictedKeys))) //nolint:gosec // small
	}
	led.LiveSorobanStateSize = led.BucketListSize

	var txs []BronzeTransactionRow
	var ops, txSetOps uint32
	if err := eachTransaction(ctx, b.net.Passphrase, b.lcm, func(tx *ingest.LedgerTransaction) error {
		row, err := b.transaction(tx)
		if err != nil {
			return fmt.Errorf("transaction %s: %w", tx.Hash.HexString(), err)
		}
		txSetOps += uint32(row.OperationCount) //nolint:gosec // small
		if row.Successful {
			led.SuccessfulTxCount++
			ops += uint32(row.OperationCount) //nolint:gosec // small
		} else {
			led.FailedTxCount++
		}
		txs = append(txs, row)
		return nil
	}); err != nil {
		return led, nil, err
	}
	led.TransactionCount, led.OperationCount, led.TxSetOperationCount = ptr(uint32(len(txs))), &ops, &txSetOps //nolint:gosec // small
	return led, txs, nil
}

func (b bronzeLedger) transaction(tx *ingest.LedgerTransaction) (BronzeTransactionRow, error) {
	account, err := tx.Account()
	if err != nil {
		return BronzeTransactionRow{}, err
	}
	charged, _ := tx.FeeCharged()
	r := BronzeTransactionRow{network: b.net.Name, LedgerSequence: b.l.Sequence(), TransactionHash: tx.Result.TransactionHash.HexString(),
		TransactionIndex: int(tx.Index), SourceAccount: account, FeeCharged: charged, MaxFee: int64(tx.MaxFee()),
		Successful: tx.Successful(), TransactionResultCode: tx.ResultCode(), OperationCount: int32(tx.OperationCount()), //nolint:gosec // small
		CreatedAt: b.l.CloseTime(), AccountSequence: ptr(tx.AccountSequence()), LedgerRange: ptr(b.rng),
		SignaturesCount: int32(len(tx.Envelope.Signatures()))} //nolint:gosec // small
	r.MemoType, r.Memo = bronzeMemo(tx.Envelope.Memo())
	if m, ok := tx.AccountMuxed(); ok {
		r.SourceAccountMuxed = &m
	}
	if fa := tx.FeeAccount(); fa.Type == xdr.CryptoKeyTypeKeyTypeMuxedEd25519 {
		r.FeeAccountMuxed = ptr(fa.Address())
	}
	if h, ok := tx.InnerTransactionHash(); ok {
		r.InnerTransactionHash = &h
	}
	if f, ok := tx.NewMaxFee(); ok {
		r.FeeBumpFee = &f
	}
	if tb := tx.Envelope.TimeBounds(); tb != nil {
		r.TimeboundsMinTime, r.TimeboundsMaxTime = ptr(int64(tb.MinTime)), ptr(int64(tb.MaxTime)) //nolint:gosec // unix times
	}
	if lb := tx.Envelope.LedgerBounds(); lb != nil {
		r.LedgerboundsMin, r.LedgerboundsMax = ptr(uint32(lb.MinLedger)), ptr(uint32(lb.MaxLedger))
	}
	if v, ok := tx.MinSequence(); ok {
		r.MinSequenceNumber = &v
	}
	if v, ok := tx.MinSequenceAge(); ok {
		r.MinSequenceAge = &v
	}
	if v, ok := tx.SorobanResourcesInstructions(); ok {
		r.SorobanResourcesInstructions = ptr(int64(v))
	}
	if v, ok := tx.SorobanResourcesDiskReadBytes(); ok {
		r.SorobanResourcesReadBytes = ptr(int64(v))
	}
	if v, ok := tx.SorobanResourcesWriteBytes(); ok {
		r.SorobanResourcesWriteBytes = ptr(int64(v))
	}
	if tx.IsSorobanTx() {
		r.SorobanFeeRefund = ptr(tx.SorobanResourceFeeRefund())
	}
	evs, err := tx.GetTransactionEvents()
	if err != nil {
		return r, fmt.Errorf("reading events: %w", err)
	}
	n := len(evs.TransactionEvents)
	for _, op := range evs.OperationEvents {
		n += len(op)
	}
	r.SorobanContractEventsCount = ptr(int32(n)) //nolint:gosec // small
	for _, part := range []struct {
		dst **string
		v   any
	}{{&r.TxEnvelope, tx.Envelope}, {&r.TxResult, tx.Result.Result}, {&r.TxMeta, tx.UnsafeMeta}, {&r.TxFeeMeta, tx.FeeChanges}} {
		s, err := xdr.MarshalBase64(part.v)
		if err != nil {
			return r, fmt.Errorf("encoding XDR: %w", err)
		}
		*part.dst = &s
	}
	return r, nil
}

// bronzeMemo is the memo as upstream's bronze columns give it: type none|text|id|hash|return,
// hashes in hex.
func bronzeMemo(m xdr.Memo) (*string, *string) {
	switch m.Type {
	case xdr.MemoTypeMemoText:
		return ptr("text"), ptr(m.MustText())
	case xdr.MemoTypeMemoId:
		return ptr("id"), ptr(strconv.FormatUint(uint64(m.MustId()), 10))
	case xdr.MemoTypeMemoHash:
		h := m.MustHash()
		return ptr("hash"), ptr(hex.EncodeToString(h[:]))
	case xdr.MemoTypeMemoReturn:
		h := m.MustRetHash()
		return ptr("return"), ptr(hex.EncodeToString(h[:]))
	}
	return ptr("none"), nil
}

func (b bronzeLedger) ttls(ctx context.Context) ([]BronzeTTLRow, error) {
	var out []BronzeTTLRow
	err := eachChange(ctx, b.net.Passphrase, b.lcm, func(ch ingest.Change) error {
		if ch.Type != xdr.LedgerEntryTypeTtl {
			return nil
		}
		entry, deleted := ch.Post, false
		if entry == nil {
			entry, deleted = ch.Pre, true
		}
		ttl := entry.Data.MustTtl()
		live := int64(ttl.LiveUntilLedgerSeq)
		remaining := live - int64(b.l.Sequence())
		out = append(out, BronzeTTLRow{network: b.net.Name, index: len(out), KeyHash: hex.EncodeToString(ttl.KeyHash[:]),
			LedgerSequence: b.l.Sequence(), LiveUntilLedgerSeq: live, TTLRemaining: remaining, Expired: remaining <= 0,
			LastModifiedLedger: int32(entry.LastModifiedLedgerSeq), Deleted: deleted, ClosedAt: b.l.CloseTime(), //nolint:gosec // ledger seqs fit
			CreatedAt: b.l.CloseTime(), LedgerRange: b.rng})
		return nil
	})
	return out, err
}
