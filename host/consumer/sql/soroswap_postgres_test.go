package sql

import (
	"context"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/contract"
	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// SaveSoroswapToPostgreSQL: Soroswap's records of the synthetic ledger in upstream's
// PostgreSQL tables and column names (token0, reserve0, ...), exact i128 reserves; a replay
// doubles nothing.
func TestSaveSoroswapToPostgreSQL(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	raw := soroswapLedger(t)
	recs := soroswapRecords(t, raw, contract.NewSoroswap)
	if len(recs) != 4 {
		t.Fatalf("Soroswap made %d records of the ledger's new_pair, 2 syncs and swap", len(recs))
	}
	for range 2 {
		p := newTyped(t, srv, NewSaveSoroswapToPostgreSQL, "soroswap-pg")
		l, _ := pt.Wrap(t, raw)
		if err := p.Consume(ctx, l, recs); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db := connect(t, srv)
	var n int
	var factory, t0, t1 string
	if err := db.QueryRow(ctx, `SELECT count(*), min(factory_contract_id), min(token0), min(token1) FROM soroswap_pairs`).
		Scan(&n, &factory, &t0, &t1); err != nil {
		t.Fatal(err)
	}
	if n != 1 || factory != cid(swFactory) || t0 != cid(swTokenA) || t1 != cid(swTokenB) {
		t.Errorf("soroswap_pairs: %d rows, %s %s %s", n, factory, t0, t1)
	}
	rows, err := db.Query(ctx, `SELECT pair_address, reserve0::text, reserve1::text FROM soroswap_syncs ORDER BY natural_key`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var pair, r0, r1 string
		if err := rows.Scan(&pair, &r0, &r1); err != nil {
			t.Fatal(err)
		}
		if pair != cid(swPair) {
			t.Errorf("sync of %s", pair)
		}
		got = append(got, r0+"/"+r1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "18446744073709551621/7 8/9" {
		t.Errorf("soroswap_syncs reserves after a replay: %v", got)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM soroswap_swaps WHERE pair_address = $1`, cid(swPair)).Scan(&n); err != nil || n != 1 {
		t.Errorf("soroswap_swaps: %d rows, %v", n, err)
	}
}
