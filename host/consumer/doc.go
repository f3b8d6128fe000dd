// Package consumer owns the pipeline sinks cdpd offers under their CDP type names:
// StdoutConsumer (JSON lines), SaveToParquet (Parquet files on the local filesystem, named by
// ledger range so a replay rewrites instead of doubling), and SaveToPostgreSQL (upserts on
// the record's natural key with the consumer's cursor in the same transaction). host/builtin's
// table registers them.
//
// Both table-shaped sinks derive their columns from the record's Go type through one
// reflection-based schema (see Schema), cached per type.
package consumer
