//go:build cgo && !noduckdb

package sql

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

func newTestDuckDB(t *testing.T, path, pipeline string, cfg map[string]any) *DuckDB {
	t.Helper()
	full := map[string]any{"db_path": path}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := component.Construct(NewSaveToDuckDB, full, component.Env{Pipeline: pipeline, Name: "SaveToDuckDB"})
	if err != nil {
		t.Fatal(err)
	}
	d := c.(*DuckDB)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func openDuck(t *testing.T, path string) *stdsql.DB {
	t.Helper()
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := stdsql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// readDuck reads every row of a table of AllTypes records back.
func readDuck(t *testing.T, db *stdsql.DB, table string) []consumertest.AllTypes {
	t.Helper()
	rows, err := db.Query(`SELECT natural_key, network, ledger_sequence, "index", small, big, huge, ratio, ok, closed_at,
		topics, data::VARCHAR, opt_string, opt_bool, opt_int, opt_int32, opt_int64, opt_uint32, opt_uint64, opt_float,
		opt_time, opt_json::VARCHAR FROM ` + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []consumertest.AllTypes
	for rows.Next() {
		var r consumertest.AllTypes
		var key string
		var topics any
		var data, optJSON *string
		var optTime *time.Time
		if err := rows.Scan(&key, &r.Network, &r.Ledger, &r.Index, &r.Small, &r.Big, &r.Huge, &r.Ratio, &r.OK, &r.ClosedAt,
			&topics, &data, &r.OptString, &r.OptBool, &r.OptInt, &r.OptInt32, &r.OptInt64, &r.OptUint32, &r.OptUint64,
			&r.OptFloat, &optTime, &optJSON); err != nil {
			t.Fatal(err)
		}
		if topics != nil {
			r.Topics = []string{}
			for _, s := range topics.([]any) {
				r.Topics = append(r.Topics, s.(string))
			}
		}
		if data != nil {
			r.Data = json.RawMessage(*data)
		}
		if optJSON != nil {
			r.OptJSON = consumertest.Ptr(json.RawMessage(*optJSON))
		}
		if optTime != nil {
			r.OptTime = consumertest.Ptr(optTime.UTC())
		}
		r.ClosedAt = r.ClosedAt.UTC()
		if key != r.NaturalKey() {
			t.Errorf("natural_key %q, record key %q", key, r.NaturalKey())
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func duckPosition(t *testing.T, d *DuckDB) uint32 {
	t.Helper()
	last, ok, err := d.Position(context.Background())
	if err != nil || !ok {
		t.Fatalf("Position = %d, %v, %v", last, ok, err)
	}
	return last
}

// Rows read back equal the records; a replay (the pipeline resumed below the cursor) doubles
// nothing and never lowers the cursor.
func TestDuckDBRowsAndReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.duckdb")
	d := newTestDuckDB(t, path, "duck", map[string]any{"batch_size": 7})
	if _, ok, err := d.Position(context.Background()); ok || err != nil {
		t.Fatalf("fresh Position: ok=%v err=%v", ok, err)
	}
	want := consumertest.ConsumeRange(t, d, 1, 20, 4)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := duckPosition(t, d); got != 20 || d.DurableLedger() != 20 {
		t.Errorf("Position %d, DurableLedger %d, want 20", got, d.DurableLedger())
	}
	if st := d.Stats(); st["records_written"] != float64(len(want)) || st["batches_written"] < 2 {
		t.Errorf("stats %v", st)
	}
	r := newTestDuckDB(t, path, "duck", map[string]any{"batch_size": 5})
	consumertest.ConsumeRange(t, r, 6, 14, 4)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := duckPosition(t, r); got != 20 {
		t.Errorf("Position after a replay of 6..14 = %d, want 20", got)
	}
	consumertest.SameRecords(t, readDuck(t, openDuck(t, path), "all_types"), want)
}

// flush_interval: a batch is committed once the interval passed since the last commit, or
// by Flush.
func TestDuckDBFlushInterval(t *testing.T) {
	now := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	c, err := component.Construct(NewSaveToDuckDB, map[string]any{"db_path": filepath.Join(t.TempDir(), "f.duckdb"), "flush_interval": "4s"},
		component.Env{Pipeline: "duck-flush", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d := c.(*DuckDB)
	var tf component.TimedFlusher = d
	if tf.FlushInterval() != 4*time.Second {
		t.Fatalf("FlushInterval = %s", tf.FlushInterval())
	}
	ctx := context.Background()
	consume := func(seq uint32) {
		t.Helper()
		if err := d.Consume(ctx, consumertest.Ledger(t, seq), consumertest.MakeRecords(seq, 2)); err != nil {
			t.Fatal(err)
		}
	}
	consume(1)
	consume(2)
	if d.DurableLedger() != 1 {
		t.Fatalf("DurableLedger %d, want 1", d.DurableLedger())
	}
	now = now.Add(4 * time.Second)
	consume(3)
	if d.DurableLedger() != 3 {
		t.Fatalf("DurableLedger %d after the interval, want 3", d.DurableLedger())
	}
	consume(4)
	if err := d.Flush(ctx); err != nil || d.DurableLedger() != 4 || duckPosition(t, d) != 4 {
		t.Fatalf("after Flush: %v, DurableLedger %d", err, d.DurableLedger())
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Upstream's tables: TransformToAppPayment's records of a real ledger go to payments under
// upstream's column names, row for record; other kinds go to tables of their own.
func TestSaveToDuckDBUpstreamTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.duckdb")
	d := newTestDuckDB(t, path, "duck-upstream", nil)
	ctx := context.Background()
	rl := proctest.RealLedgers(t)[0]
	pays := proctest.Run(t, payment.NewTransformToAppPayment, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	if len(pays) == 0 {
		t.Fatal("no payments on the real ledger: the test would test nothing")
	}
	l, _ := proctest.Wrap(t, rl.Raw)
	if err := d.Consume(ctx, l, append(pays, consumertest.MakeRecords(rl.Seq, 1)...)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t, path)
	rows, err := db.Query("SELECT natural_key, seller_account_id, buyer_account_id, tx_hash, amount, timestamp FROM payments")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	byKey := map[string]payment.AppPayment{}
	for _, r := range pays {
		byKey[r.NaturalKey()] = r.(payment.AppPayment)
	}
	n := 0
	for rows.Next() {
		var key, seller, buyer, hash, amount string
		var ts time.Time
		if err := rows.Scan(&key, &seller, &buyer, &hash, &amount, &ts); err != nil {
			t.Fatal(err)
		}
		w, ok := byKey[key]
		if !ok || seller != w.SourceAccountID || buyer != w.DestinationAccountID || hash != w.TransactionHash ||
			amount != w.Amount || !ts.Equal(w.ClosedAt) {
			t.Errorf("payments row %s: %s %s %s %s %s, record %+v", key, seller, buyer, hash, amount, ts, w)
		}
		n++
	}
	if n != len(byKey) {
		t.Errorf("%d payments rows, %d records", n, len(byKey))
	}
	if got := readDuck(t, db, "all_types"); len(got) != 1 {
		t.Errorf("all_types rows: %d", len(got))
	}
}
