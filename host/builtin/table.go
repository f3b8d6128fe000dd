package builtin

import (
	c "github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/file"
	"github.com/withobsrvr/cdpd/host/consumer/kv"
	"github.com/withobsrvr/cdpd/host/consumer/sql"
	"github.com/withobsrvr/cdpd/host/consumer/stream"
	"github.com/withobsrvr/cdpd/host/processor/account"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/effects"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/raw"
	"github.com/withobsrvr/cdpd/host/processor/wallet"
	"github.com/withobsrvr/cdpd/host/source"
)

// Table is every built-in component: CDP type name, one-line description, constructor (whose
// config struct gives the keys and defaults), aliases. `cdpd components` and the README's
// component table are generated from it. Keep each section sorted by type name.
func Table() []c.Spec {
	return []c.Spec{
		// Sources: galexie datastores (GCS, S3, a directory), Stellar RPC and captive core.
		c.SourceSpec("BufferedStorageSourceAdapter", "Ledgers from a galexie datastore on GCS, S3 or a local directory (storage_type).", source.NewBufferedStorage),
		c.SourceSpec("CaptiveCoreInboundAdapter", "Ledgers from a captive stellar-core run by the SDK's captive-core backend (needs the stellar-core binary).", source.NewCaptiveCore),
		c.SourceSpec("FSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a local directory.", source.NewFS),
		c.SourceSpec("GCSBufferedStorageSourceAdapter", "Ledgers from a galexie datastore in a GCS bucket.", source.NewGCS),
		c.SourceSpec("RPCSourceAdapter", "Ledgers from a Stellar RPC server (getLedgers, whatever rpc_method says).", source.NewRPC),
		c.SourceSpec("S3BufferedStorageSourceAdapter", "Ledgers from a galexie datastore in an S3 bucket (or an S3-compatible store).", source.NewS3),
		c.SourceSpec("SorobanSourceAdapter", "Ledgers from a Stellar RPC server (getLedgers), with upstream's checkpoint keys accepted.", source.NewSoroban),

		// Processors — accounts and trustlines.
		c.ProcessorSpec("AccountTransaction", "The operations of the transactions that involve an account (or of every transaction), one row per operation.", account.NewAccountTransaction),
		c.ProcessorSpec("CreateAccount", "Successful create_account operations (funder, new account, starting balance), read from the zero-copy transaction views.", account.NewCreateAccount, "CreateAccountTransformer"),
		c.ProcessorSpec("ProcessAccountDataFull", "Account entry changes from the SDK's change reader, appended to the records it receives (an enricher).", account.NewAccountData, "AccountData"),
		c.ProcessorSpec("TransformToAppTrustline", "Trustline entry changes (created, updated, removed) from the SDK's change reader.", account.NewTransformToAppTrustline),
		c.ProcessorSpec("TransformToTickerAsset", "One row per asset touched by a successful set_trust_line_flags, change_trust, payment or create_claimable_balance operation, read from the zero-copy transaction views.", account.NewTransformToTickerAsset),
		// Processors — contract (Soroban).
		c.ProcessorSpec("ContractCreation", "Contracts created by create_contract host functions (v1, v2) and deployed by other contracts.", contract.NewContractCreation),
		c.ProcessorSpec("ContractData", "Contract data ledger entry changes (created, updated, removed, restored).", contract.NewContractData, "ContractDataProcessor"),
		c.ProcessorSpec("ContractEvent", "Soroban contract events as history_contract_events rows, read from the zero-copy view.", contract.NewContractEvent, "ContractEventProcessor", "StellarContractEvent"),
		c.ProcessorSpec("ContractFilter", "Passes on the contract records of the processor before it that belong to the given contracts.", contract.NewContractFilter),
		c.ProcessorSpec("ContractInvocation", "One row per InvokeHostFunction operation: contract, function, arguments, authorized calls, state and TTL changes.", contract.NewContractInvocation, "FilteredContractInvocation"),
		c.ProcessorSpec("ContractInvocationExtractor", "Business fields (funder, recipient, amount, project_id, memo_text, email) read from ContractInvocation's records by extraction schemas.", contract.NewContractInvocationExtractor),
		c.ProcessorSpec("EventPaymentExtractor", "Kwickbit payment processor payments from ContractEvent's records.", contract.NewEventPaymentExtractor),
		c.ProcessorSpec("FilterEventsProcessor", "Contract data changes that match every rule (field, operator, value).", contract.NewFilterEventsProcessor),
		c.ProcessorSpec("GetEventsRPC", "Contract events in the shape of Stellar RPC's getEvents, with its filters, read from the zero-copy view.", contract.NewGetEventsRPC),
		c.ProcessorSpec("Soroswap", "Soroswap new pairs, reserve syncs and swaps from ContractEvent's records.", contract.NewSoroswap),
		c.ProcessorSpec("SoroswapRouter", "Soroswap router swaps and liquidity adds and removals from ContractEvent's records.", contract.NewSoroswapRouter),
		// Processors — ledger.
		c.ProcessorSpec("BronzeExtractors", "Bronze-layer tables ledgers_row_v2, transactions_row_v2 and ttl_snapshot_v1 from the SDK's transaction and change readers.", raw.NewBronzeExtractors, "SilverLedgerReader"),
		c.ProcessorSpec("LatestLedger", "One summary row per ledger (transactions, operations, fees), read from the zero-copy view.", raw.NewLatestLedger, "LatestLedgerProcessor", "LatestLedgerRPC"),
		c.ProcessorSpec("LedgerChanges", "Every ledger entry change (fees, transactions, operations, refunds, upgrades) from the SDK's change reader.", raw.NewLedgerChanges),
		c.ProcessorSpec("LedgerReader", "One row per transaction (hash, success, envelope, result and meta XDR), read from the zero-copy view.", raw.NewLedgerReader),
		c.ProcessorSpec("LedgerToJSON", "The ledger as one JSON document: header fields, transactions, operations, entry changes and events.", raw.NewLedgerToJSON),
		c.ProcessorSpec("Passthrough", "Forwards its input records unchanged, followed by the ledger (key fields and, by default, its full XDR).", raw.NewPassthrough),
		c.ProcessorSpec("TransformToAppMetrics", "One row of network metrics per ledger (transactions, fees, payment volume, accounts, operation kinds), read from the zero-copy view.", raw.NewTransformToAppMetrics),
		// Processors — payments and tokens.
		c.ProcessorSpec("FilterPayments", "Payment operations, filtered by amount, asset and account.", payment.NewFilterPayments, "PaymentProcessor"),
		c.ProcessorSpec("TokenTransfer", "The SDK's token transfer events (transfers, mints, burns, clawbacks, fees) of every asset.", payment.NewTokenTransfer, "TokenTransferProcessor"),
		c.ProcessorSpec("TransformToAppPayment", "Payments in the flat app form (from, to, amount, asset, memo).", payment.NewTransformToAppPayment),
		c.ProcessorSpec("TransformToAppTrade", "Trades as Horizon defines them (the claim atoms of offer and path payment results), read from the zero-copy transaction views.", payment.NewTransformToAppTrade),
		// Processors — wallet / effects (the wallet-backend chain; each forwards what it receives).
		c.ProcessorSpec("ParticipantExtractor", "The accounts each transaction touches (Horizon's participants), with upstream's roles.", wallet.NewParticipantExtractor),
		c.ProcessorSpec("StellarEffects", "Horizon's operation effects (credits, debits, trades, signers, sponsorships ...) as history_effects rows.", effects.NewStellarEffects),
		c.ProcessorSpec("TransactionXDRExtractor", "Each transaction's envelope, result and meta (and each operation) as base64 XDR.", wallet.NewTransactionXDRExtractor),
		c.ProcessorSpec("WalletBackend", "Per-account state changes (credits, debits, signers, trustlines, offers ...) as wallet-backend state_changes rows.", wallet.NewWalletBackend),

		// Consumers.
		c.ConsumerSpec("BronzeToDuckDB", "BronzeExtractors' rows in upstream's bronze tables of a DuckDB file, upserted, with the cursor in the same transaction.", sql.NewBronzeToDuckDB),
		c.ConsumerSpec("BufferedPostgreSQL", "Wallet-backend state changes and participants in upstream's tables, other records as JSON in generic_events, through the PostgreSQL writer.", sql.NewBufferedPostgreSQL),
		c.ConsumerSpec("DebugLogger", "Logs each record (kind, key, its first max_fields fields) at debug level.", file.NewDebugLogger),
		c.ConsumerSpec("LogDebug", "Logs a summary of each ledger (and, with log_level debug, each record's JSON) at debug level.", file.NewLogDebug),
		c.ConsumerSpec("NotificationDispatcher", "Webhook notifications for records that match rules, delivered as the control plane's alerts are.", stream.NewNotificationDispatcher),
		c.ConsumerSpec("PublishToGooglePubSub", "Every record as a Google Pub/Sub message, ordered by ledger, with its natural key as an attribute.", stream.NewPublishToGooglePubSub),
		c.ConsumerSpec("PublishToGooglePubSubV2", "Payment records as Google Pub/Sub messages in upstream's V2 envelope, ordered by ledger.", stream.NewPublishToGooglePubSubV2),
		c.ConsumerSpec("SaveAccountDataToDuckDB", "ProcessAccountDataFull's account changes in upstream's stellar.accounts table of a DuckDB file, with the cursor in the same transaction.", sql.NewSaveAccountDataToDuckDB),
		c.ConsumerSpec("SaveAccountDataToPostgreSQL", "ProcessAccountDataFull's account changes in upstream's stellar.accounts table, through the PostgreSQL writer.", sql.NewSaveAccountDataToPostgreSQL),
		c.ConsumerSpec("SaveAssetToPostgreSQL", "One row per asset (code, issuer) in upstream's assets table, from TransformToTickerAsset's records or payments, first_seen_ledger kept, through the PostgreSQL writer.", sql.NewSaveAssetToPostgreSQL),
		c.ConsumerSpec("SaveContractDataToPostgreSQL", "ContractData's entry changes in one table (table_name), through the PostgreSQL writer.", sql.NewSaveContractDataToPostgreSQL),
		c.ConsumerSpec("SaveContractEventsToPostgreSQL", "ContractEvent's events in upstream's contract_events table, through the PostgreSQL writer.", sql.NewSaveContractEventsToPostgreSQL),
		c.ConsumerSpec("SaveContractInvocationsToPostgreSQL", "ContractInvocation's invocations in upstream's contract_invocations table, through the PostgreSQL writer.", sql.NewSaveContractInvocationsToPostgreSQL),
		c.ConsumerSpec("SaveContractToDuckDB", "GetEventsRPC's events in upstream's soroban_events table of a DuckDB file (other kinds in their own tables).", sql.NewSaveContractToDuckDB),
		c.ConsumerSpec("SaveEventPaymentToPostgreSQL", "EventPaymentExtractor's payments in upstream's event_payments table, through the PostgreSQL writer.", sql.NewSaveEventPaymentToPostgreSQL),
		c.ConsumerSpec("SaveExtractedContractInvocationsToPostgreSQL", "ContractInvocationExtractor's records in upstream's extracted_contract_invocations table, through the PostgreSQL writer.", sql.NewSaveExtractedContractInvocationsToPostgreSQL),
		c.ConsumerSpec("SaveLatestLedgerToExcel", "One row per ledger (LatestLedger's summary and header fields) in an .xlsx workbook, rewritten whole with its cursor.", file.NewSaveLatestLedgerToExcel),
		c.ConsumerSpec("SaveLatestLedgerToRedis", "The latest ledger and the last 1000 ledger hashes in Redis, with the cursor in the same transaction.", kv.NewSaveLatestLedgerToRedis),
		c.ConsumerSpec("SavePaymentToPostgreSQL", "TransformToAppPayment's payments in upstream's payments table, through the PostgreSQL writer.", sql.NewSavePaymentToPostgreSQL),
		c.ConsumerSpec("SavePaymentsToRedis", "App payments as Redis hashes indexed by source and destination account, with the cursor in the same transaction.", kv.NewSavePaymentsToRedis),
		c.ConsumerSpec("SaveSoroswapPairsToDuckDB", "Soroswap's new pairs, reserve syncs and swaps in soroswap_pairs, soroswap_syncs and soroswap_swaps of a DuckDB file, with the cursor in the same transaction.", sql.NewSaveSoroswapPairsToDuckDB),
		c.ConsumerSpec("SaveSoroswapRouterToDuckDB", "SoroswapRouter's events in upstream's soroswap_router_events table of a DuckDB file, with the cursor in the same transaction.", sql.NewSaveSoroswapRouterToDuckDB),
		c.ConsumerSpec("SaveSoroswapToPostgreSQL", "Soroswap's new pairs, syncs and swaps in soroswap_pairs, soroswap_syncs and soroswap_swaps, through the PostgreSQL writer.", sql.NewSaveSoroswapToPostgreSQL),
		c.ConsumerSpec("SaveToDuckDB", "Upserts on natural keys into a DuckDB file (upstream's payments and create_accounts tables, other kinds in their own), with the cursor in the same transaction.", sql.NewSaveToDuckDB),
		c.ConsumerSpec("SaveToExcel", "Every record in an .xlsx workbook, one sheet per record kind, rewritten whole with its cursor; a replay never doubles rows.", file.NewSaveToExcel),
		c.ConsumerSpec("SaveToGCS", "Records as JSON lines in GCS objects named by ledger range; a replay skips ledgers an object holds, never doubles lines.", file.NewSaveToGCS),
		c.ConsumerSpec("SaveToLedgerParquet", "LedgerToJSON's ledgers, one row per ledger with its transactions as nested columns, in Parquet files named by ledger range (SaveToParquet's writer); a replay replaces a file, never doubles rows.", file.NewSaveToLedgerParquet),
		c.ConsumerSpec("SaveToParquet", "Parquet files named by ledger range on a local directory, GCS or S3; a replay replaces a file, never doubles rows.", file.NewSaveToParquet, "SaveToParquetConsumer"),
		c.ConsumerSpec("SaveToPostgreSQL", "Upserts on each record's natural key, with the consumer's cursor in the same transaction.", sql.NewSaveToPostgreSQL, "SaveToPostgreSQLConsumer"),
		c.ConsumerSpec("SaveToRedis", "Every record as JSON under its natural key in Redis (with a TTL), with the cursor in the same transaction.", kv.NewSaveToRedis),
		c.ConsumerSpec("SaveToRedisOrderbook", "Orderbook snapshots and their bid, ask, spread and volume series in Redis, with the cursor in the same transaction.", kv.NewSaveToRedisOrderbook),
		c.ConsumerSpec("SaveToWebSocket", "A WebSocket server streaming records to registered clients; slow clients are dropped.", stream.NewSaveToWebSocket),
		c.ConsumerSpec("SaveToZeroMQ", "Every record as a message on a ZeroMQ PUB socket (pure Go).", stream.NewSaveToZeroMQ),
		c.ConsumerSpec("StdoutConsumer", "Every record as one JSON line on standard output.", file.NewStdoutConsumer, "StdoutSink"),
		c.ConsumerSpec("WalletBackendPostgreSQL", "Wallet-backend transactions, state changes, participants, effects and accounts in upstream's tables, through the PostgreSQL writer.", sql.NewWalletBackendPostgreSQL),
	}
}
