package file

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

// LedgerParquetConfig is SaveToLedgerParquet's config: SaveToParquet's keys with upstream's
// defaults for this consumer, and upstream's output_path.
type LedgerParquetConfig struct {
	// OutputPath is upstream's name for local_path: the directory of FS storage. Without it,
	// local_path, storage_type or bucket_name, the files go to ./ledger-parquet (upstream's
	// default).
	OutputPath    string `mapstructure:"output_path"`
	ParquetConfig `mapstructure:",squash"`
}

// defaultLedgerParquetDir is upstream's default output_path.
const defaultLedgerParquetDir = "./ledger-parquet"

// SetDefaults implements component.Defaulter: SaveToParquet's defaults but upstream's for
// this consumer (buffer_size 100 ledgers, max_file_size_mb 1024, zstd) and no partition
// directories (upstream wrote every file in output_path).
func (c *LedgerParquetConfig) SetDefaults() {
	c.ParquetConfig.SetDefaults()
	c.OutputPath = ""
	c.BufferSize, c.MaxFileSizeMB, c.Compression, c.PartitionBy = 100, 1024, "zstd", "none"
}

// NewSaveToLedgerParquet is SaveToLedgerParquet: LedgerToJSON's ledger documents, one row per
// ledger, in Parquet files named by ledger range, written by SaveToParquet's writer (see
// Parquet): <path_prefix>/ledger_json/ledger_json_<first>-<last>.parquet. A row has
// upstream's columns (its "AWS-compatible" nested layout): the ledger's header fields, closed_at
// a millisecond timestamp, and transactions as a LIST of structs, each with its operations
// (with their ledger_entry_changes and events) and events as nested LISTs. The nested fields
// are LedgerToJSON's, names and types (see raw.TxJSON): upstream's columns LedgerToJSON does
// not fill (node_id, signature, fee_account, tx_signers, Soroban resources and fees,
// diagnostic_events, key_data) are absent. Records of another kind are an error. buffer_size counts ledgers, as
// upstream's did, since each ledger is one record.
//
// Data safety: exactly-once in the files, as SaveToParquet. A kill -9 loses only buffered
// ledgers after DurableLedger, which the checkpoint has not passed, so they are replayed, and
// a replay replaces the files it overlaps. Upstream named files by wall time, so a replay
// wrote the ledgers again in a new file, and never enforced max_file_size_mb.
func NewSaveToLedgerParquet(cp *LedgerParquetConfig, env component.Env) (component.Consumer, error) {
	c := cp.ParquetConfig
	if cp.OutputPath != "" {
		if c.LocalPath != "" {
			return nil, fmt.Errorf("SaveToLedgerParquet: output_path and local_path name the same directory: set one")
		}
		c.LocalPath = cp.OutputPath
	}
	if c.LocalPath == "" && c.StorageType == "" && c.BucketName == "" {
		c.LocalPath = defaultLedgerParquetDir
	}
	return newParquet("SaveToLedgerParquet", ledgerJSONRows, &c, env)
}

// ledgerParquetRow is a SaveToLedgerParquet row: LedgerJSON's top-level fields under
// upstream's column names and types (closed_at a millisecond timestamp), and its transactions
// as nested columns (raw.TxJSON's parquet tags).
type ledgerParquetRow struct {
	Sequence                   int64        `parquet:"sequence"`
	LedgerHash                 string       `parquet:"ledger_hash"`
	PreviousLedgerHash         string       `parquet:"previous_ledger_hash"`
	ClosedAt                   time.Time    `parquet:"closed_at,timestamp(millisecond)"`
	ProtocolVersion            int32        `parquet:"protocol_version"`
	TotalCoins                 int64        `parquet:"total_coins"`
	FeePool                    int64        `parquet:"fee_pool"`
	BaseFee                    int32        `parquet:"base_fee"`
	BaseReserve                int32        `parquet:"base_reserve"`
	MaxTxSetSize               int32        `parquet:"max_tx_set_size"`
	SuccessfulTransactionCount int32        `parquet:"successful_transaction_count"`
	FailedTransactionCount     int32        `parquet:"failed_transaction_count"`
	SorobanFeeWrite1KB         *int64       `parquet:"soroban_fee_write_1kb,optional"`
	Transactions               []raw.TxJSON `parquet:"transactions,list"`
}

var ledgerParquetSchema = parquet.SchemaOf(ledgerParquetRow{})

// ledgerJSONRows makes SaveToLedgerParquet's rows of LedgerToJSON's records.
var ledgerJSONRows = &singleKind{kind: raw.LedgerJSON{}.RecordKind(), schema: ledgerParquetSchema,
	row: func(r component.Record) (parquet.Row, int, error) {
		l, ok := r.(raw.LedgerJSON)
		if !ok {
			return nil, 0, fmt.Errorf("a %s record of type %T, not LedgerToJSON's", r.RecordKind(), r)
		}
		row := ledgerParquetRow{Sequence: int64(l.Sequence), LedgerHash: l.LedgerHash, PreviousLedgerHash: l.PreviousLedgerHash,
			ClosedAt: time.UnixMilli(l.ClosedAtMillis).UTC(), ProtocolVersion: int32(l.ProtocolVersion), TotalCoins: l.TotalCoins,
			FeePool: l.FeePool, BaseFee: int32(l.BaseFee), BaseReserve: int32(l.BaseReserve), MaxTxSetSize: int32(l.MaxTxSetSize),
			SuccessfulTransactionCount: int32(l.SuccessfulTransactionCount), FailedTransactionCount: int32(l.FailedTransactionCount),
			SorobanFeeWrite1KB: l.SorobanFeeWrite1KB}
		if err := json.Unmarshal(l.Transactions, &row.Transactions); err != nil {
			return nil, 0, fmt.Errorf("ledger %d: reading LedgerToJSON's transactions: %w", l.Sequence, err)
		}
		// The JSON's length is the size estimate (max_file_size_mb) of the row's strings.
		return ledgerParquetSchema.Deconstruct(nil, &row), len(l.Transactions) + 128, nil
	}}
