package sql

import (
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// DuckDBConfig is the config of the DuckDB consumers (upstream's key db_path, plus cdpd's).
type DuckDBConfig struct {
	// DBPath is the database file (created when missing). Upstream's defaults: SaveToDuckDB
	// stellar_operations.duckdb, SaveContractToDuckDB soroban_events.duckdb,
	// SaveSoroswapPairsToDuckDB soroswap_pairs.duckdb, SaveSoroswapRouterToDuckDB
	// soroswap_router.duckdb; SaveAccountDataToDuckDB requires it.
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

// duckTyped makes the constructor of a DuckDB consumer: the writer under upstream's type
// name typ, writing the tables of layout, in the file defaultPath unless db_path names one
// ("": db_path is required).
func duckTyped(typ, defaultPath string, layout *Layout) func(*DuckDBConfig, component.Env) (component.Consumer, error) {
	return func(c *DuckDBConfig, env component.Env) (component.Consumer, error) {
		if c.DBPath == "" {
			c.DBPath = defaultPath
		}
		return duckConsumer(typ, layout, c, env)
	}
}

var (
	// NewSaveToDuckDB is SaveToDuckDB: upstream's payments (TransformToAppPayment) and
	// create_accounts (CreateAccount) tables, every other record kind in a table of its own
	// name.
	NewSaveToDuckDB = duckTyped("SaveToDuckDB", "stellar_operations.duckdb", saveToDuckDBLayout)

	// NewSaveContractToDuckDB is SaveContractToDuckDB: GetEventsRPC's events in upstream's
	// soroban_events table, every other record kind in a table of its own name.
	NewSaveContractToDuckDB = duckTyped("SaveContractToDuckDB", "soroban_events.duckdb", contractDuckDBLayout)

	// NewSaveAccountDataToDuckDB is SaveAccountDataToDuckDB: ProcessAccountDataFull's account
	// changes in upstream's stellar.accounts table.
	NewSaveAccountDataToDuckDB = duckTyped("SaveAccountDataToDuckDB", "", accountsLayout)

	// NewSaveSoroswapPairsToDuckDB is SaveSoroswapPairsToDuckDB: Soroswap's records in a
	// DuckDB file (default soroswap_pairs.duckdb), under upstream's DuckDB column names: new
	// pairs in soroswap_pairs (one row per new_pair event: factory_contract_id, pair_address,
	// token_0, token_1, created_at), reserve syncs in soroswap_syncs (pair_address, reserve_0,
	// reserve_1, ledger_sequence, timestamp: one row per sync), swaps in soroswap_swaps.
	//
	// Data safety: exactly-once, as every DuckDB consumer (rows and cursor in one
	// transaction; see DuckDB). Differences from upstream, each a fix: upstream's
	// soroswap_pairs was current state, each sync overwriting the pair's reserves in place,
	// with no cursor (a replay from an earlier ledger moved reserves back until it caught up,
	// and no past reserves were kept); here each sync is a row, so a pair's reserves at any
	// ledger are its latest soroswap_syncs row up to that ledger (current reserves: the row of
	// the highest ledger_sequence per pair_address), and a replay rewrites the same rows.
	// Upstream dropped syncs of pairs it had not seen created (pairs created before its start
	// ledger); they are kept. Upstream's Soroswap emitted no swaps (its consumer failed on
	// them); cdpd's does, and they are kept in soroswap_swaps.
	NewSaveSoroswapPairsToDuckDB = duckTyped("SaveSoroswapPairsToDuckDB", "soroswap_pairs.duckdb", soroswapDuckDBLayout)

	// NewSaveSoroswapRouterToDuckDB is SaveSoroswapRouterToDuckDB: SoroswapRouter's records in
	// upstream's soroswap_router_events table of a DuckDB file (default
	// soroswap_router.duckdb), type as event_type, one row per router event (natural_key
	// instead of upstream's serial event_id); the columns upstream lacked (pair, liquidity,
	// path, amounts) are kept.
	//
	// Data safety: exactly-once, as every DuckDB consumer (rows and cursor in one
	// transaction; see DuckDB). Upstream inserted each event without a key or a cursor: a
	// restart replayed and doubled rows.
	NewSaveSoroswapRouterToDuckDB = duckTyped("SaveSoroswapRouterToDuckDB", "soroswap_router.duckdb", soroswapRouterDuckDBLayout)
)

var (
	soroswapDuckDBLayout = &Layout{Others: OthersError, Tables: map[string]Table{
		"soroswap_new_pair": {Name: "soroswap_pairs", Columns: map[string]string{"contract_id": "factory_contract_id", "timestamp": "created_at"}},
		"soroswap_sync": {Name: "soroswap_syncs", Columns: map[string]string{"contract_id": "pair_address",
			"new_reserve_0": "reserve_0", "new_reserve_1": "reserve_1"}},
		"soroswap_swap": {Name: "soroswap_swaps", Columns: map[string]string{"contract_id": "pair_address"}},
	}}
	soroswapRouterDuckDBLayout = &Layout{Others: OthersError, Tables: map[string]Table{
		"soroswap_router_events": {Name: "soroswap_router_events", Columns: map[string]string{"type": "event_type"}},
	}}
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
