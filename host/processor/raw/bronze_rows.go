package raw

import (
	"strconv"
	"time"

	"github.com/withobsrvr/cdpd/host/processor"
)

// The bronze rows: upstream's bronze table columns (their SQL column names), for the columns
// the SDK gives faithfully. Nullable columns are pointers.

// BronzeLedgerRow is a row of ledgers_row_v2.
type BronzeLedgerRow struct {
	Sequence             uint32     `json:"sequence"`
	LedgerHash           string     `json:"ledger_hash"`
	PreviousLedgerHash   string     `json:"previous_ledger_hash"`
	ClosedAt             time.Time  `json:"closed_at"`
	ProtocolVersion      uint32     `json:"protocol_version"`
	TotalCoins           int64      `json:"total_coins"`
	FeePool              int64      `json:"fee_pool"`
	BaseFee              uint32     `json:"base_fee"`
	BaseReserve          uint32     `json:"base_reserve"`
	MaxTxSetSize         uint32     `json:"max_tx_set_size"`
	SuccessfulTxCount    uint32     `json:"successful_tx_count"`
	FailedTxCount        uint32     `json:"failed_tx_count"`
	IngestionTimestamp   *time.Time `json:"ingestion_timestamp"`
	LedgerRange          *uint32    `json:"ledger_range"`
	TransactionCount     *uint32    `json:"transaction_count"`
	OperationCount       *uint32    `json:"operation_count"`        // operations of successful transactions
	TxSetOperationCount  *uint32    `json:"tx_set_operation_count"` // every operation of the tx set
	SorobanFeeWrite1KB   *int64     `json:"soroban_fee_write_1kb"`
	NodeID               *string    `json:"node_id"`
	Signature            *string    `json:"signature"`     // base64
	LedgerHeader         *string    `json:"ledger_header"` // base64 XDR LedgerHeader
	BucketListSize       *uint64    `json:"bucket_list_size"`
	LiveSorobanStateSize *uint64    `json:"live_soroban_state_size"`
	EvictedKeysCount     *uint32    `json:"evicted_keys_count"`

	network string
}

// RecordKind implements component.Record.
func (BronzeLedgerRow) RecordKind() string { return "ledgers_row_v2" }

// NaturalKey implements component.Record: network and ledger.
func (r BronzeLedgerRow) NaturalKey() string {
	return processor.Key(r.network, r.Sequence)
}

// BronzeTransactionRow is a row of transactions_row_v2 (plus transaction_index, the apply
// position that keys it).
type BronzeTransactionRow struct {
	LedgerSequence               uint32    `json:"ledger_sequence"`
	TransactionHash              string    `json:"transaction_hash"`
	TransactionIndex             int       `json:"transaction_index"` // 1-based apply order
	SourceAccount                string    `json:"source_account"`
	FeeCharged                   int64     `json:"fee_charged"`
	MaxFee                       int64     `json:"max_fee"`
	Successful                   bool      `json:"successful"`
	TransactionResultCode        string    `json:"transaction_result_code"`
	OperationCount               int32     `json:"operation_count"`
	MemoType                     *string   `json:"memo_type"`
	Memo                         *string   `json:"memo"`
	CreatedAt                    time.Time `json:"created_at"` // the ledger's close time
	AccountSequence              *int64    `json:"account_sequence"`
	LedgerRange                  *uint32   `json:"ledger_range"`
	SourceAccountMuxed           *string   `json:"source_account_muxed"`
	FeeAccountMuxed              *string   `json:"fee_account_muxed"`
	InnerTransactionHash         *string   `json:"inner_transaction_hash"`
	FeeBumpFee                   *int64    `json:"fee_bump_fee"`
	TimeboundsMinTime            *int64    `json:"timebounds_min_time"`
	TimeboundsMaxTime            *int64    `json:"timebounds_max_time"`
	LedgerboundsMin              *uint32   `json:"ledgerbounds_min"`
	LedgerboundsMax              *uint32   `json:"ledgerbounds_max"`
	MinSequenceNumber            *int64    `json:"min_sequence_number"`
	MinSequenceAge               *int64    `json:"min_sequence_age"`
	SorobanResourcesInstructions *int64    `json:"soroban_resources_instructions"`
	SorobanResourcesReadBytes    *int64    `json:"soroban_resources_read_bytes"`
	SorobanResourcesWriteBytes   *int64    `json:"soroban_resources_write_bytes"`
	SorobanFeeRefund             *int64    `json:"soroban_fee_refund"`
	SorobanContractEventsCount   *int32    `json:"soroban_contract_events_count"`
	SignaturesCount              int32     `json:"signatures_count"`
	TxEnvelope                   *string   `json:"tx_envelope"` // base64 XDR
	TxResult                     *string   `json:"tx_result"`
	TxMeta                       *string   `json:"tx_meta"`
	TxFeeMeta                    *string   `json:"tx_fee_meta"`

	network string
}

// RecordKind implements component.Record.
func (BronzeTransactionRow) RecordKind() string { return "transactions_row_v2" }

// NaturalKey implements component.Record: network, ledger and apply position.
func (r BronzeTransactionRow) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, strconv.Itoa(r.TransactionIndex))
}

// BronzeTTLRow is a row of ttl_snapshot_v1: one TTL entry change.
type BronzeTTLRow struct {
	KeyHash            string    `json:"key_hash"` // hex
	LedgerSequence     uint32    `json:"ledger_sequence"`
	LiveUntilLedgerSeq int64     `json:"live_until_ledger_seq"`
	TTLRemaining       int64     `json:"ttl_remaining"`
	Expired            bool      `json:"expired"`
	LastModifiedLedger int32     `json:"last_modified_ledger"`
	Deleted            bool      `json:"deleted"`
	ClosedAt           time.Time `json:"closed_at"`
	CreatedAt          time.Time `json:"created_at"`
	LedgerRange        uint32    `json:"ledger_range"`

	network string
	index   int // position among the ledger's TTL changes
}

// RecordKind implements component.Record.
func (BronzeTTLRow) RecordKind() string { return "ttl_snapshot_v1" }

// NaturalKey implements component.Record: network, ledger, position and key hash.
func (r BronzeTTLRow) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, strconv.Itoa(r.index), r.KeyHash)
}
