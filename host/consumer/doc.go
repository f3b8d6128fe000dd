// Package consumer owns the pipeline sinks cdpd offers under their CDP type names:
// StdoutConsumer (JSON lines), SaveToParquet (Parquet files on the local filesystem, named by
// ledger range so a replay rewrites instead of doubling), and SaveToPostgreSQL (upserts on
// the record's natural key with the consumer's cursor in the same transaction). host/builtin's
// table registers them.
//
// Both table-shaped sinks derive their columns from the record's Go type through one
// reflection-based schema (see Schema), cached per type.
//
// It is also the kit of the consumer domain packages (kv: Redis; stream: ZeroMQ, WebSocket,
// Pub/Sub, notifications; consumertest: their tests' ledgers): Metrics, the
// cdp_pipeline_consumer_* counters every consumer reports, labelled with its component name.
package consumer
