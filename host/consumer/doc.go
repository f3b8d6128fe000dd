// Package consumer owns the shared kit of the pipeline sinks: Schema (a record type's columns,
// derived by reflection once per type and cached) and Metrics (the cdp_pipeline_consumer_*
// counters every consumer reports, labelled with its component name), and the sinks not yet in
// a domain package: StdoutConsumer (JSON lines) and SaveToParquet (Parquet files on the local
// filesystem, named by ledger range so a replay rewrites instead of doubling). The domain
// packages hold the others: sql (PostgreSQL, DuckDB), kv (Redis), stream (ZeroMQ, WebSocket,
// Pub/Sub, notifications); consumertest is their tests' kit. host/builtin's table registers
// them.
package consumer
