package sql

import (
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// DuckDBConfig is the config of the DuckDB consumers (upstream's key db_path, plus cdpd's).
type DuckDBConfig struct {
	// DBPath is the database file (created when missing). Upstream's defaults: SaveToDuckDB
	// stellar_operations.duckdb, SaveContractToDuckDB soroban_events.duckdb;
	// SaveAccountDataToDuckDB requires it.
	DBPath string `mapstructure:"db_path"`
	// TableName renames the table of a consumer that writes one table (SaveToDuckDB: the
	// table of every record, of one kind).
	TableName string `mapstructure:"table_name"`
	// BatchSize: records per transaction (default 10000); FlushInterval: the longest a batch
	// waits (default 2s). See DuckDB.
	BatchSize     int           `mapstructure:"batch_size"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// CursorTable holds the consumer's position (default cdpd_cursors).
	CursorTable string `mapstructure:"cursor_table"`
}

// SetDefaults implements component.Defaulter.
func (c *DuckDBConfig) SetDefaults() {
	*c = DuckDBConfig{BatchSize: 10000, FlushInterval: 2 * time.Second, CursorTable: "cdpd_cursors"}
}

// NewSaveToDuckDB is SaveToDuckDB: upstream's payments (TransformToAppPayment) and
// create_accounts (CreateAccount) tables, every other record kind in a table of its own name.
func NewSaveToDuckDB(c *DuckDBConfig, env component.Env) (component.Consumer, error) {
	if c.DBPath == "" {
		c.DBPath = "stellar_operations.duckdb"
	}
	return duckConsumer("SaveToDuckDB", saveToDuckDBLayout, c, env)
}

// NewSaveContractToDuckDB is SaveContractToDuckDB: GetEventsRPC's events in upstream's
// soroban_events table, every other record kind in a table of its own name.
func NewSaveContractToDuckDB(c *DuckDBConfig, env component.Env) (component.Consumer, error) {
	if c.DBPath == "" {
		c.DBPath = "soroban_events.duckdb"
	}
	return duckConsumer("SaveContractToDuckDB", contractDuckDBLayout, c, env)
}

// NewSaveAccountDataToDuckDB is SaveAccountDataToDuckDB: ProcessAccountDataFull's account
// changes in upstream's stellar.accounts table.
func NewSaveAccountDataToDuckDB(c *DuckDBConfig, env component.Env) (component.Consumer, error) {
	return duckConsumer("SaveAccountDataToDuckDB", accountsLayout, c, env)
}

var (
	saveToDuckDBLayout = &Layout{Others: OthersOwnTable, Tables: map[string]Table{
		"app_payments":    {Name: "payments", Columns: appPaymentColumns},
		"create_accounts": {Name: "create_accounts", Columns: map[string]string{"timestamp": "timestamp_unix", "closed_at": "timestamp"}},
	}}
	contractDuckDBLayout = &Layout{Others: OthersOwnTable, Tables: map[string]Table{
		"rpc_events": {Name: "soroban_events", Columns: map[string]string{"ledgerClosedAt": "timestamp", "contractId": "contract_id",
			"id": "event_id", "txHash": "tx_hash", "type": "event_type", "inSuccessfulContractCall": "in_successful_contract_call",
			"operationIndex": "operation_index", "transactionIndex": "transaction_index", "topicJson": "topic_json", "valueJson": "value_json"}},
	}}
)
