// Package consumer owns the shared kit of the pipeline sinks (Schema: a record type's columns,
// derived by reflection once per type and cached; Metrics, the cdp_pipeline_consumer_*
// counters every consumer reports, labelled with its component name) and SaveToPostgreSQL
// (upserts on the record's natural key with the consumer's cursor in the same transaction).
// The file sinks (StdoutConsumer, SaveToParquet) are in host/consumer/file; consumertest is
// the consumer packages' test kit. host/builtin's table registers them.
package consumer
