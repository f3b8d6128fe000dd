//go:build cgo && !noduckdb

package reliability

import (
	"context"
	stdsql "database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

// duckEnabled: this test binary (and the cdpd it builds) has DuckDB, so the crash pipelines
// write to it too.
const duckEnabled = true

// duckPath is the DuckDB file of a crash table (one file per pipeline: DuckDB allows one
// database instance per file).
func duckPath(out, table string) string { return filepath.Join(out, table+".duckdb") }

// Queries of the DuckDB tables: rows and distinct identities per ledger.
const (
	duckLedgersQuery = "SELECT sequence, count(*), count(DISTINCT natural_key) FROM crash_ledgers GROUP BY 1"
	duckEventsQuery  = "SELECT ledger_sequence, count(*), count(DISTINCT (transaction_hash, event_index)) FROM crash_events GROUP BY 1"
)

// duckCounts opens a DuckDB file (cdpd is not running) and returns rows per ledger of a table
// and the pipeline's cursor; a missing file or table (killed before its first commit) is empty.
func duckCounts(t *testing.T, path, query, pipeline string) (map[uint32]int, uint32) {
	t.Helper()
	out := map[uint32]int{}
	connector, err := duckdb.NewConnector(path, nil)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	db := stdsql.OpenDB(connector)
	defer db.Close()
	var cursor int64
	err = db.QueryRowContext(context.Background(), "SELECT last_ledger FROM cdpd_cursors WHERE pipeline = ?", pipeline).Scan(&cursor)
	if err != nil && err != stdsql.ErrNoRows && !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("%s: reading the cursor: %v", path, err)
	}
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return out, uint32(cursor)
		}
		t.Fatalf("%s: %s: %v", path, query, err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var n, distinct int
		if err := rows.Scan(&seq, &n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != distinct {
			t.Errorf("DuckDB %s: ledger %d has %d rows but %d distinct identities (duplicates)", path, seq, n, distinct)
		}
		out[uint32(seq)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, uint32(cursor)
}

// checkDuckPrefix checks the DuckDB files after a SIGKILL as checkPGPrefix checks PostgreSQL.
func (e *crashEnv) checkDuckPrefix(t *testing.T, out string) (lastLedgers, lastEvents uint32) {
	t.Helper()
	got, c := duckCounts(t, duckPath(out, "crash_ledgers"), duckLedgersQuery, "crash-ledgers")
	lastLedgers = e.checkPrefix(t, "DuckDB latest_ledger", got, e.want["latest_ledger"], c)
	got, c = duckCounts(t, duckPath(out, "crash_events"), duckEventsQuery, "crash-events")
	lastEvents = e.checkPrefix(t, "DuckDB contract_events", got, e.want["contract_events"], c)
	return lastLedgers, lastEvents
}

// checkDuckComplete checks that the DuckDB tables hold every ledger of the range exactly once.
func (e *crashEnv) checkDuckComplete(t *testing.T, out string) {
	t.Helper()
	got, _ := duckCounts(t, duckPath(out, "crash_ledgers"), duckLedgersQuery, "crash-ledgers")
	compareCounts(t, "DuckDB latest_ledger", got, e.want["latest_ledger"])
	got, _ = duckCounts(t, duckPath(out, "crash_events"), duckEventsQuery, "crash-events")
	compareCounts(t, "DuckDB contract_events", got, e.want["contract_events"])
}
