// Package sql owns cdpd's SQL sinks: one PostgreSQL writer (Postgres) and one DuckDB writer
// (DuckDB), and the Layouts that make upstream CDP's typed consumers out of them (a typed
// consumer is the writer under upstream's type name and connection keys, with a mapping from
// record kinds to upstream's table and column names; never a copy of the writer).
//
// PostgreSQL: SaveToPostgreSQL (each record kind in its own table, or table_name);
// SaveContractEventsToPostgreSQL (contract_events), SavePaymentToPostgreSQL (payments, from
// TransformToAppPayment), SaveAccountDataToPostgreSQL (stellar.accounts),
// SaveContractInvocationsToPostgreSQL (contract_invocations),
// SaveExtractedContractInvocationsToPostgreSQL (extracted_contract_invocations, from
// ContractInvocationExtractor), SaveContractDataToPostgreSQL
// (contract_data, or table_name), SaveEventPaymentToPostgreSQL (event_payments),
// SaveSoroswapToPostgreSQL (soroswap_pairs, soroswap_syncs, soroswap_swaps),
// SaveAssetToPostgreSQL (assets: one row per asset, from TransformToTickerAsset or payments),
// BufferedPostgreSQL (state_changes, transaction_participants, other kinds as JSON in
// generic_events) and WalletBackendPostgreSQL (transactions, state_changes,
// transaction_participants, effects, accounts). DuckDB: SaveToDuckDB, SaveContractToDuckDB,
// SaveAccountDataToDuckDB, SaveSoroswapPairsToDuckDB (soroswap_pairs, soroswap_syncs,
// soroswap_swaps), SaveSoroswapRouterToDuckDB (soroswap_router_events), BronzeToDuckDB
// (BronzeExtractors' bronze tables); see DuckDB for the build.
//
// Data safety, every consumer here: exactly-once. A batch of whole ledgers and the consumer's
// cursor row commit in one transaction; rows are upserted on the record's natural key, so a
// replay rewrites nothing new; the pipeline resumes after the cursor. They are in the kill -9
// reliability suite (test/reliability, SaveToPostgreSQL and SaveToDuckDB; the typed ones are
// the same writers) and crashed at each commit boundary by its failpoint run
// (internal/failpoint, `make failpoints`).
//
// Fencing of stale writers (a paused process that wakes after its replacement took over):
// the PostgreSQL cursor row carries an owner epoch that each writer raises at Start and that
// its commits require (postgres_epoch.go: a stale writer's commit fails with ErrFenced and
// writes nothing); a DuckDB file is held open by one writer from Start to Close, so a
// replacement cannot open it while a stale writer lives (see DuckDB).
//
// Tables and schemas (the data tables, cdpd_cursors, the typed consumers' tables) are created
// under a PostgreSQL advisory lock on their name (postgres_ddl.go), so pipelines starting
// together on one database do not fail on each other's CREATE ... IF NOT EXISTS.
//
// Where the tables differ from upstream's (upstream's rows had serial ids, no key, and were
// doubled on replay):
//   - every table's key is natural_key; columns cdpd's records lack are absent, columns
//     upstream lacked are kept under the record's names; a Table's Keep columns are never
//     overwritten by the upsert (assets.first_seen_ledger, as upstream's ON CONFLICT left it);
//   - nested lists are jsonb/JSON columns of the row instead of child tables
//     (contract_invocations' diagnostic events, calls, state and TTL changes;
//     transactions' operations); transaction_participants is one row per transaction with
//     role arrays (source_accounts, destination_accounts, ...), not a row per (account, role);
//   - upstream's current-state tables are written as history, one row per change: accounts
//     (WalletBackendPostgreSQL), soroswap_pairs' reserves (soroswap_syncs rows here);
//   - wallet-backend timestamps that cdpd's records carry as unix seconds
//     (state_changes.timestamp, transaction_participants.timestamp) are bigint columns.
//
// Every Layout names the record kinds and fields of a processor in the registry; the Soroswap
// tables are tested on a synthetic ledger's records (the SDK's real ledgers hold no Soroswap
// events).
package sql
