//go:build cgo && !noduckdb

package sql

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
)

// consumeTwice writes recs of the ledger raw through a fresh consumer twice (the second a
// replay of a ledger the file holds) and checks the cursor.
func consumeTwice(t *testing.T, ctor func(*DuckDBConfig, component.Env) (component.Consumer, error), path string, raw []byte, recs []component.Record) {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		c, err := component.Construct(ctor, map[string]any{"db_path": path}, component.Env{Pipeline: "soroswap"})
		if err != nil {
			t.Fatal(err)
		}
		d := c.(*DuckDB)
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		l, _ := pt.Wrap(t, raw)
		if err := d.Consume(ctx, l, recs); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := duckPosition(t, d); got != pt.SynthSeq {
			t.Fatalf("Position %d, want %d", got, pt.SynthSeq)
		}
	}
}

// SaveSoroswapPairsToDuckDB: Soroswap's records in upstream's DuckDB columns, a row per
// event, exact reserves; a replay doubles nothing.
func TestSaveSoroswapPairsToDuckDB(t *testing.T) {
	raw := soroswapLedger(t)
	recs := soroswapRecords(t, raw, contract.NewSoroswap)
	if len(recs) != 4 {
		t.Fatalf("Soroswap made %d records of the ledger's new_pair, 2 syncs and swap", len(recs))
	}
	path := filepath.Join(t.TempDir(), "pairs.duckdb")
	consumeTwice(t, NewSaveSoroswapPairsToDuckDB, path, raw, recs)
	db := openDuck(t, path)
	var factory, pair, t0, t1 string
	var created time.Time
	var n int
	if err := db.QueryRow(`SELECT count(*), any_value(factory_contract_id), any_value(pair_address), any_value(token_0),
		any_value(token_1), any_value(created_at) FROM soroswap_pairs`).Scan(&n, &factory, &pair, &t0, &t1, &created); err != nil {
		t.Fatal(err)
	}
	if n != 1 || factory != cid(swFactory) || pair != cid(swPair) || t0 != cid(swTokenA) || t1 != cid(swTokenB) ||
		!created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("soroswap_pairs: %d rows, %s %s %s %s %s", n, factory, pair, t0, t1, created)
	}
	rows, err := db.Query(`SELECT pair_address, reserve_0, reserve_1, ledger_sequence FROM soroswap_syncs ORDER BY natural_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var p, r0, r1 string
		var seq uint32
		if err := rows.Scan(&p, &r0, &r1, &seq); err != nil {
			t.Fatal(err)
		}
		if p != cid(swPair) || seq != pt.SynthSeq {
			t.Errorf("sync row of %s at %d", p, seq)
		}
		got = append(got, r0+"/"+r1)
	}
	if strings.Join(got, " ") != "18446744073709551621/7 8/9" {
		t.Errorf("soroswap_syncs reserves %v", got)
	}
	if err := db.QueryRow(`SELECT count(*) FROM soroswap_swaps WHERE pair_address = ? AND amount_1_out = '9'`, cid(swPair)).Scan(&n); err != nil || n != 1 {
		t.Errorf("soroswap_swaps: %d rows, %v", n, err)
	}

	// A kind it does not take is an error naming those it takes.
	c, err := component.Construct(NewSaveSoroswapPairsToDuckDB, map[string]any{"db_path": filepath.Join(t.TempDir(), "w.duckdb")}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := pt.Wrap(t, raw)
	err = c.Consume(context.Background(), l, soroswapRecords(t, raw, contract.NewSoroswapRouter))
	if err == nil || !strings.Contains(err.Error(), "soroswap_router_events") || !strings.Contains(err.Error(), "soroswap_sync") {
		t.Errorf("router records for SaveSoroswapPairsToDuckDB: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// SaveSoroswapRouterToDuckDB: SoroswapRouter's records in soroswap_router_events, a row per
// event (the pair's swap is not one); a replay doubles nothing.
func TestSaveSoroswapRouterToDuckDB(t *testing.T) {
	raw := soroswapLedger(t)
	recs := soroswapRecords(t, raw, contract.NewSoroswapRouter)
	if len(recs) != 2 {
		t.Fatalf("SoroswapRouter made %d records of the ledger's router swap and add", len(recs))
	}
	path := filepath.Join(t.TempDir(), "router.duckdb")
	consumeTwice(t, NewSaveSoroswapRouterToDuckDB, path, raw, recs)
	rows, err := openDuck(t, path).Query(`SELECT event_type, account, token_a, token_b, amount_a, amount_b, tx_hash, contract_id,
		pair, liquidity, len(path), timestamp FROM soroswap_router_events ORDER BY natural_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var typ, account, a, b, amtA, amtB, hash, router, pair, lp string
		var pathLen *int
		var ts time.Time
		if err := rows.Scan(&typ, &account, &a, &b, &amtA, &amtB, &hash, &router, &pair, &lp, &pathLen, &ts); err != nil {
			t.Fatal(err)
		}
		if router != cid(swRouter) || len(hash) != 64 || !ts.Equal(time.Unix(1700000000, 0)) || a != cid(swTokenA) {
			t.Errorf("%s row: router %s hash %s at %s token_a %s", typ, router, hash, ts, a)
		}
		n := 0
		if pathLen != nil {
			n = *pathLen
		}
		got = append(got, strings.Join([]string{typ, account[:2], b[:4], amtA, amtB, pair[:min(4, len(pair))], lp}, " ")+" path "+pt.Itoa(int64(n)))
	}
	want := []string{"swap " + pt.Addr(1)[:2] + " " + cid(swTokenC)[:4] + " 40 20   path 3",
		"add " + pt.Addr(2)[:2] + " " + cid(swTokenB)[:4] + " 100 200 " + cid(swPair)[:4] + " 141 path 0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("soroswap_router_events\n got %q\nwant %q", got, want)
	}
}
