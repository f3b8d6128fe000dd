// Package sql owns cdpd's SQL sinks: SaveToPostgreSQL (upserts on the record's natural key with
// the consumer's cursor in the same transaction). Columns follow the record type through the
// shared consumer.Schema. host/builtin's table registers them.
package sql
