// Package consumer owns the shared kit of the pipeline sinks (Schema: a record type's columns,
// derived by reflection once per type and cached) and the sinks not yet in a domain package:
// StdoutConsumer (JSON lines) and SaveToParquet (Parquet files on the local filesystem, named by
// ledger range so a replay rewrites instead of doubling). The SQL sinks are in host/consumer/sql.
// host/builtin's table registers them.
package consumer
