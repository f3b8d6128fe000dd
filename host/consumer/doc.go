// Package consumer owns the pipeline sinks cdpd offers under their CDP type names:
// StdoutConsumer (JSON lines), SaveToParquet (Parquet files on the local filesystem, named by
// ledger range so a replay rewrites instead of doubling), SaveToPostgreSQL (upserts on the
// record's natural key with the consumer's cursor in the same transaction) and SaveToFile
// (rotated JSON lines). Register adds them all to a component.Registry.
//
// Both table-shaped sinks derive their columns from the record's Go type through one
// reflection-based schema (see Schema), cached per type.
package consumer

import "github.com/withobsrvr/cdpd/host/component"

// Register registers every consumer of this package under its CDP type name and aliases.
func Register(r *component.Registry) error {
	for _, c := range []struct {
		f     component.ConsumerFactory
		names []string
	}{
		{NewStdoutConsumer, []string{"StdoutConsumer", "StdoutSink"}},
		{NewSaveToParquet, []string{"SaveToParquet", "SaveToParquetConsumer"}},
		{NewSaveToPostgreSQL, []string{"SaveToPostgreSQL", "SaveToPostgreSQLConsumer"}},
	} {
		if err := r.AddConsumer(c.f, c.names...); err != nil {
			return err
		}
	}
	return nil
}
