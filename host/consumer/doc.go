// Package consumer owns the shared kit of the pipeline sinks: Schema (a record type's columns,
// derived by reflection once per type and cached) and Metrics (the cdp_pipeline_consumer_*
// counters every consumer reports, labelled with its component name). The sinks are in the
// domain packages: file (StdoutConsumer, SaveToParquet on a directory, GCS or S3, SaveToGCS,
// Excel, debug logging), sql (PostgreSQL, DuckDB), kv (Redis), stream (ZeroMQ, WebSocket,
// Pub/Sub, notifications); consumertest is their tests' kit. host/builtin's table registers
// them.
package consumer
