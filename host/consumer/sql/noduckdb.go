//go:build !cgo || noduckdb

package sql

import (
	"fmt"

	"github.com/withobsrvr/cdpd/host/component"
)

// DuckDBBuilt says whether this binary has the DuckDB consumers (built with cgo and without
// the noduckdb tag).
const DuckDBBuilt = false

// duckConsumer: this binary was built without DuckDB (see DuckDB's doc in duckdb.go).
func duckConsumer(typ string, _ *Layout, _ *DuckDBConfig, _ component.Env) (component.Consumer, error) {
	return nil, fmt.Errorf("%s: this cdpd was built without DuckDB (CGO_ENABLED=0 or the noduckdb tag); use a build with cgo", typ)
}
