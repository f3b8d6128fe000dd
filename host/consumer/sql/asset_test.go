package sql

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/account"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// assetLedger is one real ledger's records for SaveAssetToPostgreSQL.
type assetLedger struct {
	raw  []byte
	seq  uint32
	recs []component.Record
}

// assetLedgers runs a processor chain on the real ledgers in ledger order (53312000, then
// 58752000).
func assetLedgers(t *testing.T, chain func(raw []byte) []component.Record) []assetLedger {
	t.Helper()
	var out []assetLedger
	for _, rl := range proctest.RealLedgers(t) {
		out = append(out, assetLedger{raw: rl.Raw, seq: rl.Seq, recs: chain(rl.Raw)})
	}
	slices.SortFunc(out, func(a, b assetLedger) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// runAssets writes ledgers with a new SaveAssetToPostgreSQL (one pipeline, so a second run is
// a replay) into table.
func runAssets(t *testing.T, srv *pgtest.Server, table string, ledgers []assetLedger) {
	t.Helper()
	ctx := context.Background()
	c, err := component.Construct(NewSaveAssetToPostgreSQL, map[string]any{"connection_string": srv.DB(t), "table_name": table},
		component.Env{Pipeline: "assets-" + table})
	if err != nil {
		t.Fatal(err)
	}
	p := c.(*SaveAssetToPostgreSQL)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, al := range ledgers {
		l, _ := proctest.Wrap(t, al.raw)
		if err := p.Consume(ctx, l, al.recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// assetRows is the table, one line per row, sorted.
func assetRows(t *testing.T, srv *pgtest.Server, table string) []string {
	t.Helper()
	rows, err := connect(t, srv).Query(context.Background(), `SELECT natural_key, code, issuer, asset_type, first_seen_ledger,
		last_seen_ledger, last_checked, last_valid, is_valid, type, operation_type FROM `+table+` ORDER BY natural_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstSeen is, per asset, the first ledger the records show it in, computed from the
// records' own fields: "CODE:ISSUER" -> ledger.
func firstSeen(ledgers []assetLedger, asset func(component.Record) (string, uint32)) map[string]uint32 {
	m := map[string]uint32{}
	for _, al := range ledgers {
		for _, r := range al.recs {
			a, seq := asset(r)
			if _, ok := m[a]; !ok {
				m[a] = seq
			}
		}
	}
	return m
}

// checkAssetTable: one row per asset, first_seen_ledger the first ledger it was seen in.
func checkAssetTable(t *testing.T, srv *pgtest.Server, table string, want map[string]uint32) {
	t.Helper()
	got := map[string]uint32{}
	rows, err := connect(t, srv).Query(context.Background(), `SELECT code, issuer, first_seen_ledger FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var code, issuer string
		var first int64
		if err := rows.Scan(&code, &issuer, &first); err != nil {
			t.Fatal(err)
		}
		got[code+":"+issuer] = uint32(first)
	}
	if !maps(got, want) {
		t.Fatalf("%s: %d assets %v, want %d %v", table, len(got), got, len(want), want)
	}
}

func maps(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSaveAssetToPostgreSQLTicker(t *testing.T) {
	srv := pgtest.Shared(t)
	ledgers := assetLedgers(t, func(raw []byte) []component.Record {
		return proctest.Run(t, account.NewTransformToTickerAsset, map[string]any{"network": "pubnet"}, raw, nil)
	})
	want := firstSeen(ledgers, func(r component.Record) (string, uint32) {
		a := r.(account.TickerAsset)
		return a.Code + ":" + a.Issuer, a.LedgerSequence
	})
	// Some asset is seen in both ledgers, so first_seen_ledger is tested against a later one.
	both := 0
	for _, r := range ledgers[1].recs {
		if a := r.(account.TickerAsset); want[a.Code+":"+a.Issuer] == ledgers[0].seq {
			both++
		}
	}
	if len(want) < 10 || both == 0 {
		t.Fatalf("%d assets, %d records of the later ledger seen in the earlier: the test would test little", len(want), both)
	}

	runAssets(t, srv, "assets_ticker", ledgers) // one batch: the first record of an asset wins first_seen_ledger
	checkAssetTable(t, srv, "assets_ticker", want)
	first := assetRows(t, srv, "assets_ticker")
	runAssets(t, srv, "assets_ticker", ledgers) // a replay (merge path)
	if again := assetRows(t, srv, "assets_ticker"); !slices.Equal(first, again) {
		t.Fatalf("a replay changed the table:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(again, "\n"))
	}
	runAssets(t, srv, "assets_ticker", ledgers[1:]) // the later ledger alone does not move first_seen_ledger
	checkAssetTable(t, srv, "assets_ticker", want)
}

// Upstream's blank pipeline: payments (FilterPayments, and TransformToAppPayment after it)
// become one row per asset paid in, never an empty one.
func TestSaveAssetToPostgreSQLPayments(t *testing.T) {
	srv := pgtest.Shared(t)
	payments := assetLedgers(t, func(raw []byte) []component.Record {
		return proctest.Run(t, payment.NewFilterPayments, map[string]any{"network": "pubnet"}, raw, nil)
	})
	want := firstSeen(payments, func(r component.Record) (string, uint32) {
		p := r.(payment.PaymentRecord)
		if p.AssetCode == nil {
			return "XLM:", p.LedgerSequence
		}
		return *p.AssetCode + ":" + *p.AssetIssuer, p.LedgerSequence
	})
	if _, ok := want["XLM:"]; !ok || len(want) < 3 {
		t.Fatalf("payments in %d assets: %v", len(want), want)
	}
	runAssets(t, srv, "assets_pay", payments)
	checkAssetTable(t, srv, "assets_pay", want)

	app := assetLedgers(t, func(raw []byte) []component.Record {
		in := proctest.Run(t, payment.NewFilterPayments, map[string]any{"network": "pubnet"}, raw, nil)
		return proctest.Run(t, payment.NewTransformToAppPayment, map[string]any{"network": "pubnet"}, raw, in)
	})
	runAssets(t, srv, "assets_app", app)
	runAssets(t, srv, "assets_app", app)
	checkAssetTable(t, srv, "assets_app", want)
	// Both paths give the same rows (asset_type derived from the app form's CODE:ISSUER).
	var diff int
	if err := connect(t, srv).QueryRow(context.Background(), `SELECT count(*) FROM
		(SELECT code, issuer, asset_type, first_seen_ledger FROM assets_pay EXCEPT SELECT code, issuer, asset_type, first_seen_ledger FROM assets_app) d`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d rows of assets_pay differ in assets_app", diff)
	}

	// Another kind is an error naming the kinds it takes.
	_, err := assetOf(account.CreateAccountRecord{})
	if err == nil || !strings.Contains(err.Error(), "ticker_assets, payments, app_payments") {
		t.Errorf("a create_accounts record: %v", err)
	}
}
