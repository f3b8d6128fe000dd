package sql

import (
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// BronzeDuckDBConfig is BronzeToDuckDB's config, with upstream's keys (db_path, batch_size,
// flush_interval_seconds) and cdpd's cursor_table.
type BronzeDuckDBConfig struct {
	// DBPath is the database file (default bronze.duckdb, as upstream).
	DBPath string `mapstructure:"db_path"`
	// BatchSize: records per transaction (default 100, as upstream).
	BatchSize int `mapstructure:"batch_size"`
	// FlushIntervalSeconds: the longest a batch waits, in seconds (default 10, as upstream).
	FlushIntervalSeconds int `mapstructure:"flush_interval_seconds"`
	// CursorTable holds the consumer's position (default cdpd_cursors).
	CursorTable string `mapstructure:"cursor_table"`
}

// SetDefaults implements component.Defaulter.
func (c *BronzeDuckDBConfig) SetDefaults() {
	*c = BronzeDuckDBConfig{DBPath: "bronze.duckdb", BatchSize: 100, FlushIntervalSeconds: 10, CursorTable: "cdpd_cursors"}
}

// bronzeDuckDBLayout: BronzeExtractors' record kinds are upstream's bronze table names and
// their fields its column names, so each kind goes to the table of its name unrenamed.
var bronzeDuckDBLayout = &Layout{Others: OthersError, Tables: map[string]Table{
	"ledgers_row_v2":      {Name: "ledgers_row_v2"},
	"transactions_row_v2": {Name: "transactions_row_v2"},
	"ttl_snapshot_v1":     {Name: "ttl_snapshot_v1"},
}}

// NewBronzeToDuckDB is BronzeToDuckDB: BronzeExtractors' rows in upstream's bronze tables
// (ledgers_row_v2, transactions_row_v2, ttl_snapshot_v1) of a DuckDB file, through the DuckDB
// writer (see DuckDB). Records of other kinds are an error naming the kinds it takes (upstream
// skipped a message without a table name, logging a warning).
//
// Data safety: exactly-once, as every DuckDB consumer: a batch of whole ledgers and the cursor
// commit in one transaction and rows are upserted on natural_key, so a crash (kill -9) loses
// nothing past the cursor and a replay doubles nothing. Upstream appended rows without a key
// (a replay doubled them), kept no cursor, and kept failed rows in memory only.
func NewBronzeToDuckDB(c *BronzeDuckDBConfig, env component.Env) (component.Consumer, error) {
	if c.FlushIntervalSeconds <= 0 {
		return nil, fmt.Errorf("BronzeToDuckDB: flush_interval_seconds must be positive (got %d)", c.FlushIntervalSeconds)
	}
	return duckConsumer("BronzeToDuckDB", bronzeDuckDBLayout, &DuckDBConfig{DBPath: c.DBPath, BatchSize: c.BatchSize,
		FlushInterval: time.Duration(c.FlushIntervalSeconds) * time.Second, CursorTable: c.CursorTable}, env)
}
