//go:build !cgo || noduckdb

package reliability

import "testing"

// duckEnabled: built without DuckDB (no cgo, or the noduckdb tag): the crash pipelines do not
// write to it.
const duckEnabled = false

func duckPath(out, table string) string { return "" }

func (e *crashEnv) checkDuckPrefix(*testing.T, string) (uint32, uint32) { return 0, 0 }

func (e *crashEnv) checkDuckComplete(*testing.T, string) {}
