package sql

import (
	"errors"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// UpstreamPostgresConfig is the config of the typed PostgreSQL consumers: the writer's keys
// (PostgresConfig) plus the keys upstream's typed consumers take. database_url is
// connection_string; buffer_size is batch_size; flush_interval_ms is flush_interval;
// create_schema false is create_table false. max_retries and retry_delay_ms are accepted and
// not used: while the database is unreachable the writer retries with capped backoff
// (max_retry_wait) until it succeeds or the pipeline stops, instead of giving up (and
// dropping the batch) after max_retries as upstream did. drop_existing is accepted and has no
// effect (a warning): cdpd never drops tables, as a restart that dropped them would lose what the
// cursor says is written.
type UpstreamPostgresConfig struct {
	PostgresConfig  `mapstructure:",squash"`
	DatabaseURL     string `mapstructure:"database_url"`
	BufferSize      int    `mapstructure:"buffer_size"`
	FlushIntervalMs int    `mapstructure:"flush_interval_ms"`
	MaxRetries      int    `mapstructure:"max_retries" cdpd:"ignored: the writer retries with capped backoff until it succeeds (upstream dropped the batch)"`
	RetryDelayMs    int    `mapstructure:"retry_delay_ms" cdpd:"ignored: the writer's backoff is max_retry_wait"`
	CreateSchema    *bool  `mapstructure:"create_schema"`
	DropExisting    bool   `mapstructure:"drop_existing" cdpd:"ignored: cdpd never drops tables (a restart would lose what the cursor says is written)"`
}

// SetDefaults implements component.Defaulter.
func (c *UpstreamPostgresConfig) SetDefaults() { c.PostgresConfig.SetDefaults() }

// typedPostgres makes the constructor of a typed PostgreSQL consumer: the writer under
// upstream's type name, writing the tables of layout.
func typedPostgres(typ string, layout *Layout) func(*UpstreamPostgresConfig, component.Env) (component.Consumer, error) {
	return func(u *UpstreamPostgresConfig, env component.Env) (component.Consumer, error) {
		c := u.PostgresConfig
		if u.DatabaseURL != "" {
			if c.ConnectionString != "" {
				return nil, errors.New(typ + ": give either database_url or connection_string, not both")
			}
			c.ConnectionString = u.DatabaseURL
		}
		if u.BufferSize != 0 {
			c.BatchSize = u.BufferSize
		}
		if u.FlushIntervalMs != 0 {
			c.FlushInterval = time.Duration(u.FlushIntervalMs) * time.Millisecond
		}
		if u.CreateSchema != nil && c.CreateTable == nil {
			c.CreateTable = u.CreateSchema
		}
		p, err := newPostgres(typ, layout, &c, env)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// The typed PostgreSQL consumers: upstream's type names and tables, cdpd's records.
var (
	NewSaveContractEventsToPostgreSQL = typedPostgres("SaveContractEventsToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"contract_events": {Name: "contract_events", Columns: map[string]string{"closed_at": "timestamp", "topics": "topic",
			"topics_decoded": "topic_decoded", "successful": "in_successful_tx"}},
	}})
	NewSavePaymentToPostgreSQL = typedPostgres("SavePaymentToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"app_payments": {Name: "payments", Columns: appPaymentColumns},
	}})
	NewSaveAccountDataToPostgreSQL         = typedPostgres("SaveAccountDataToPostgreSQL", accountsLayout)
	NewSaveContractInvocationsToPostgreSQL = typedPostgres("SaveContractInvocationsToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"contract_invocations": {Name: "contract_invocations"},
	}})
	// NewSaveExtractedContractInvocationsToPostgreSQL: ContractInvocationExtractor's records in
	// upstream's extracted_contract_invocations (one row per invocation, natural_key instead of
	// upstream's serial id and toid key; toid is a column). Exactly-once as every writer here;
	// upstream's processed_at and created_at (the wall clock) are absent.
	NewSaveExtractedContractInvocationsToPostgreSQL = typedPostgres("SaveExtractedContractInvocationsToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"extracted_contract_invocations": {Name: "extracted_contract_invocations", Columns: map[string]string{"transaction_hash": "tx_hash"}},
	}})
	NewSaveContractDataToPostgreSQL = typedPostgres("SaveContractDataToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"contract_data": {Name: "contract_data"},
	}})
	NewSaveEventPaymentToPostgreSQL = typedPostgres("SaveEventPaymentToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"event_payments": {Name: "event_payments"},
	}})
	NewSaveSoroswapToPostgreSQL = typedPostgres("SaveSoroswapToPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"soroswap_new_pair": {Name: "soroswap_pairs", Columns: map[string]string{"contract_id": "factory_contract_id",
			"token_0": "token0", "token_1": "token1"}},
		"soroswap_sync": {Name: "soroswap_syncs", Columns: map[string]string{"contract_id": "pair_address",
			"new_reserve_0": "reserve0", "new_reserve_1": "reserve1"}},
		"soroswap_swap": {Name: "soroswap_swaps", Columns: map[string]string{"contract_id": "pair_address"}},
	}})
	NewBufferedPostgreSQL = typedPostgres("BufferedPostgreSQL", &Layout{Others: OthersJSON, JSONTable: "generic_events", Tables: map[string]Table{
		"state_changes":            {Name: "state_changes", Columns: map[string]string{"type": "change_type"}},
		"transaction_participants": {Name: "transaction_participants"},
	}})
	NewWalletBackendPostgreSQL = typedPostgres("WalletBackendPostgreSQL", &Layout{Others: OthersError, Tables: map[string]Table{
		"transaction_xdr": {Name: "transactions", Columns: map[string]string{"transaction_hash": "hash", "timestamp": "created_at",
			"success": "successful"}},
		"state_changes":            {Name: "state_changes", Columns: map[string]string{"type": "change_type"}},
		"transaction_participants": {Name: "transaction_participants"},
		"history_effects": {Name: "effects", Columns: map[string]string{"address": "account", "type": "type_i", "type_string": "type",
			"index": "effect_index", "closed_at": "created_at"}},
		"accounts": {Name: "accounts", Columns: map[string]string{"sequence": "sequence_number", "low_threshold": "threshold_low",
			"medium_threshold": "threshold_medium", "high_threshold": "threshold_high", "closed_at": "last_modified_time"}},
	}})
)

var (
	// appPaymentColumns: TransformToAppPayment's source is upstream's seller, its destination
	// the buyer.
	appPaymentColumns = map[string]string{"source_account_id": "seller_account_id", "destination_account_id": "buyer_account_id",
		"transaction_hash": "tx_hash", "timestamp": "timestamp_unix", "closed_at": "timestamp"}
	// accountsLayout is upstream's stellar.accounts (SaveAccountDataToPostgreSQL and ...ToDuckDB).
	accountsLayout = &Layout{Others: OthersError, Tables: map[string]Table{
		"accounts": {Name: "stellar.accounts", Columns: map[string]string{"sequence": "sequence_number", "low_threshold": "threshold_low",
			"medium_threshold": "threshold_medium", "high_threshold": "threshold_high"}},
	}}
)
