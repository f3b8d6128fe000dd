//go:build cgo && !noduckdb

package sql

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

func newBronzeDuckDB(t *testing.T, path string) *DuckDB {
	t.Helper()
	c, err := component.Construct(NewBronzeToDuckDB, map[string]any{"db_path": path, "flush_interval_seconds": 30},
		component.Env{Pipeline: "bronze", Name: "BronzeToDuckDB"})
	if err != nil {
		t.Fatal(err)
	}
	d := c.(*DuckDB)
	if d.FlushInterval() != 30*time.Second || d.cfg.BatchSize != 100 {
		t.Fatalf("flush_interval_seconds 30 gave %s, batch_size %d (default 100)", d.FlushInterval(), d.cfg.BatchSize)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// BronzeToDuckDB on BronzeExtractors' rows of the two real pubnet ledgers: ledgers_row_v2 has
// each ledger's hash as the SDK reads it, transactions_row_v2 each transaction hash of the
// SDK's transaction reader once, ttl_snapshot_v1 a row per TTL record; a replay of both
// ledgers (the pipeline resumed below the cursor) doubles nothing; another kind is an error.
func TestBronzeToDuckDBRealLedgers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bronze.duckdb")
	ledgers := proctest.RealLedgers(t)
	slices.SortFunc(ledgers, func(a, b proctest.RealLedger) int { return int(a.Seq) - int(b.Seq) })
	wantHashes := map[uint32]string{}
	var wantTxs []string
	recs := map[uint32][]component.Record{}
	wantTTL := 0
	for _, rl := range ledgers {
		lcm, txs := proctest.RefTxs(t, rl.Raw)
		wantHashes[rl.Seq] = lcm.LedgerHash().HexString()
		for _, tx := range txs {
			wantTxs = append(wantTxs, tx.Result.TransactionHash.HexString())
		}
		recs[rl.Seq] = proctest.Run(t, raw.NewBronzeExtractors, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		for _, r := range recs[rl.Seq] {
			if r.RecordKind() == "ttl_snapshot_v1" {
				wantTTL++
			}
		}
	}
	if len(wantTxs) == 0 || wantTTL == 0 {
		t.Fatalf("%d transactions, %d TTL rows: the test would test little", len(wantTxs), wantTTL)
	}
	for round := 0; round < 2; round++ {
		d := newBronzeDuckDB(t, path)
		for _, rl := range ledgers {
			l, _ := proctest.Wrap(t, rl.Raw)
			if err := d.Consume(ctx, l, recs[rl.Seq]); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := duckPosition(t, d); got != ledgers[len(ledgers)-1].Seq {
			t.Fatalf("round %d: Position %d", round, got)
		}
	}

	db := openDuck(t, path)
	gotHashes := map[uint32]string{}
	rows, err := db.Query("SELECT sequence, ledger_hash FROM ledgers_row_v2")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq uint32
		var h string
		if err := rows.Scan(&seq, &h); err != nil {
			t.Fatal(err)
		}
		gotHashes[seq] = h
	}
	rows.Close()
	if len(gotHashes) != len(wantHashes) {
		t.Errorf("ledgers_row_v2: %v, want %v", gotHashes, wantHashes)
	}
	for seq, h := range wantHashes {
		if gotHashes[seq] != h {
			t.Errorf("ledgers_row_v2 ledger %d hash %q, SDK %q", seq, gotHashes[seq], h)
		}
	}
	var gotTxs []string
	rows, err = db.Query("SELECT transaction_hash FROM transactions_row_v2")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		gotTxs = append(gotTxs, h)
	}
	rows.Close()
	slices.Sort(gotTxs)
	slices.Sort(wantTxs)
	if !slices.Equal(gotTxs, wantTxs) {
		t.Errorf("transactions_row_v2: %d hashes, the SDK reads %d (or they differ)", len(gotTxs), len(wantTxs))
	}
	var ttl int
	if err := db.QueryRow("SELECT count(*) FROM ttl_snapshot_v1").Scan(&ttl); err != nil || ttl != wantTTL {
		t.Errorf("ttl_snapshot_v1: %d rows (%v), want %d", ttl, err, wantTTL)
	}

	d := newBronzeDuckDB(t, filepath.Join(t.TempDir(), "other.duckdb"))
	defer d.Close(ctx)
	err = d.Consume(ctx, consumertest.Ledger(t, 1), consumertest.MakeRecords(1, 1))
	if err == nil || !strings.Contains(err.Error(), "transactions_row_v2") {
		t.Errorf("a record of another kind: %v, want an error naming the bronze tables", err)
	}
}

func TestBronzeToDuckDBRejectsZeroInterval(t *testing.T) {
	_, err := component.Construct(NewBronzeToDuckDB, map[string]any{"flush_interval_seconds": 0}, component.Env{Pipeline: "bronze"})
	if err == nil || !strings.Contains(err.Error(), "flush_interval_seconds") {
		t.Errorf("flush_interval_seconds 0: %v", err)
	}
}
