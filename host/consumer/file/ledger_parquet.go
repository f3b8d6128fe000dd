package file

import (
	"fmt"

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
// upstream's top-level columns (sequence, ledger_hash, previous_ledger_hash, closed_at in unix
// milliseconds, protocol_version, total_coins, fee_pool, base_fee, base_reserve,
// max_tx_set_size, successful_transaction_count, failed_transaction_count,
// soroban_fee_write_1kb) and transactions, LedgerToJSON's array of transactions with their
// operations, entry changes and events, as a JSON column (Parquet's JSON logical type), where
// upstream wrote nested LIST<STRUCT> columns; node_id and signature are absent (LedgerToJSON
// has no such fields). Records of another kind are an error. buffer_size counts ledgers, as
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
	return newParquet("SaveToLedgerParquet", raw.LedgerJSON{}.RecordKind(), &c, env)
}
