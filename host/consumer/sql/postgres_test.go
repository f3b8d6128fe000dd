package sql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

func newTestPostgres(t *testing.T, srv *pgtest.Server, pipeline, table string, cfg map[string]any) *Postgres {
	t.Helper()
	full := map[string]any{"connection_string": srv.DB(t), "table_name": table, "max_retry_wait": "200ms"}
	for k, v := range cfg {
		full[k] = v
	}
	p, err := component.Construct(NewPostgres, full, component.Env{Pipeline: pipeline, Name: "SaveToPostgreSQL"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func connect(t *testing.T, srv *pgtest.Server) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

// readTable reads every row of a table written from consumertest.AllTypes records.
func readTable(t *testing.T, c *pgx.Conn, table string) []consumertest.AllTypes {
	t.Helper()
	s, _ := consumer.SchemaOf(consumertest.AllTypes{})
	var cols []string
	for _, col := range s.Columns {
		cols = append(cols, pgx.Identifier{col.Name}.Sanitize())
	}
	rows, err := c.Query(context.Background(), "SELECT natural_key, "+strings.Join(cols, ", ")+" FROM "+pgx.Identifier{table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []consumertest.AllTypes
	for rows.Next() {
		var r consumertest.AllTypes
		var key string
		var huge pgtype.Numeric
		var optHuge pgtype.Numeric
		var ledgerSeq int64
		var optU32 *int64
		var data []byte
		var optJSON []byte
		dest := []any{&key}
		v := reflect.ValueOf(&r).Elem()
		for _, col := range s.Columns {
			f := v.FieldByName(col.Field).Addr().Interface()
			switch col.Name {
			case "huge":
				f = &huge
			case "opt_uint64":
				f = &optHuge
			case "ledger_sequence":
				f = &ledgerSeq
			case "opt_uint32":
				f = &optU32
			case "data":
				f = &data
			case "opt_json":
				f = &optJSON
			}
			dest = append(dest, f)
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		r.Ledger = uint32(ledgerSeq)
		r.Huge = numericUint64(t, huge)
		if optHuge.Valid {
			r.OptUint64 = consumertest.Ptr(numericUint64(t, optHuge))
		}
		if optU32 != nil {
			r.OptUint32 = consumertest.Ptr(uint32(*optU32))
		}
		r.Data = compactJSON(t, data)
		if optJSON != nil {
			r.OptJSON = consumertest.Ptr(compactJSON(t, optJSON))
		}
		r.ClosedAt = r.ClosedAt.UTC()
		if r.OptTime != nil {
			r.OptTime = consumertest.Ptr(r.OptTime.UTC())
		}
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

func numericUint64(t *testing.T, n pgtype.Numeric) uint64 {
	t.Helper()
	i := new(big.Int).Set(n.Int)
	if n.Exp < 0 {
		t.Fatalf("numeric with a fraction: %v", n)
	}
	i.Mul(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	if !i.IsUint64() {
		t.Fatalf("numeric %v does not fit a uint64", i)
	}
	return i.Uint64()
}

func compactJSON(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	if b == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func position(t *testing.T, p *Postgres) uint32 {
	t.Helper()
	last, ok, err := p.Position(context.Background())
	if err != nil || !ok {
		t.Fatalf("Position = %d, %v, %v", last, ok, err)
	}
	return last
}

func TestPostgresRowsEqualRecords(t *testing.T) {
	srv := pgtest.Shared(t)
	p := newTestPostgres(t, srv, "rows-equal", "rows_equal", map[string]any{"batch_size": 7})
	if _, ok, err := p.Position(context.Background()); ok || err != nil {
		t.Fatalf("fresh Position: ok=%v err=%v", ok, err)
	}
	want := consumertest.ConsumeRange(t, p, 1, 12, 4)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv)
	consumertest.SameRecords(t, readTable(t, c, "rows_equal"), want)
	if got := position(t, p); got != 12 {
		t.Errorf("Position = %d, want 12", got)
	}
	if p.DurableLedger() != 12 {
		t.Errorf("DurableLedger = %d, want 12", p.DurableLedger())
	}
	st := p.Stats()
	if st["records_written"] != float64(len(want)) || st["batches_written"] < 2 || st["last_ledger"] != 12 {
		t.Errorf("stats = %v", st)
	}
	// The column types follow the record type.
	rows, err := c.Query(context.Background(), `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_name = 'rows_equal' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n, typ, null string
		if err := rows.Scan(&n, &typ, &null); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+" "+typ+" "+null)
	}
	rows.Close()
	wantCols := []string{"natural_key text NO", "network text NO", "ledger_sequence bigint NO", "index bigint NO",
		"small integer NO", "big bigint NO", "huge numeric NO", "ratio double precision NO", "ok boolean NO",
		"closed_at timestamp with time zone NO", "topics ARRAY YES", "data jsonb YES", "opt_string text YES",
		"opt_bool boolean YES", "opt_int bigint YES", "opt_int32 integer YES", "opt_int64 bigint YES",
		"opt_uint32 bigint YES", "opt_uint64 numeric YES", "opt_float double precision YES",
		"opt_time timestamp with time zone YES", "opt_json jsonb YES"}
	if !reflect.DeepEqual(got, wantCols) {
		t.Errorf("columns:\n got %v\nwant %v", got, wantCols)
	}
}

// tupleVersions sums xmin over a table: it changes when any row is rewritten.
func tupleVersions(t *testing.T, c *pgx.Conn, table string) (count int, xmins string) {
	t.Helper()
	err := c.QueryRow(context.Background(), "SELECT count(*), coalesce(string_agg(xmin::text, ',' ORDER BY natural_key), '') FROM "+table).Scan(&count, &xmins)
	if err != nil {
		t.Fatal(err)
	}
	return count, xmins
}

func TestPostgresReplayIsNoop(t *testing.T) {
	srv := pgtest.Shared(t)
	a := newTestPostgres(t, srv, "replay", "replay", map[string]any{"batch_size": 10})
	want := consumertest.ConsumeRange(t, a, 1, 20, 3)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv)
	n0, x0 := tupleVersions(t, c, "replay")
	// A restart replays ledgers already written (the pipeline resumed after a lower checkpoint).
	b := newTestPostgres(t, srv, "replay", "replay", map[string]any{"batch_size": 4})
	consumertest.ConsumeRange(t, b, 6, 20, 3)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n1, x1 := tupleVersions(t, c, "replay")
	if n0 != len(want) || n1 != n0 {
		t.Errorf("rows before replay %d, after %d, want %d", n0, n1, len(want))
	}
	if x1 != x0 {
		t.Errorf("the replay rewrote rows (xmin changed)")
	}
	consumertest.SameRecords(t, readTable(t, c, "replay"), want)
	if got := position(t, b); got != 20 {
		t.Errorf("Position = %d, want 20", got)
	}
	// A partial replay (another consumer of the pipeline lagged, so the pipeline resumed
	// lower) never moves the cursor back: the consumer still holds everything up to 20.
	r := newTestPostgres(t, srv, "replay", "replay", map[string]any{"batch_size": 4})
	consumertest.ConsumeRange(t, r, 3, 8, 3)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := position(t, r); got != 20 {
		t.Errorf("Position after replaying 3..8 = %d, want 20", got)
	}
}

// TestPostgresServerDownAndUp stops PostgreSQL in the middle of a run: Consume blocks and
// retries (Health says why), nothing is dropped; once the server is back every record is there
// exactly once and the cursor is at the last ledger.
func TestPostgresServerDownAndUp(t *testing.T) {
	srv := pgtest.Shared(t)
	t.Cleanup(func() {
		if err := srv.StartAgain(); err != nil {
			t.Error(err)
		}
	})
	p := newTestPostgres(t, srv, "down-up", "down_up", map[string]any{"batch_size": 10})
	ctx := context.Background()
	const n = 40
	var want []component.Record
	for seq := uint32(1); seq <= n/2; seq++ {
		recs := consumertest.MakeRecords(seq, 3)
		want = append(want, recs...)
		if err := p.Consume(ctx, consumertest.Ledger(t, seq), recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	var consumed atomic.Uint32
	done := make(chan error, 1)
	second := make([][]component.Record, n+1)
	for seq := uint32(n/2 + 1); seq <= n; seq++ {
		second[seq] = consumertest.MakeRecords(seq, 3)
		want = append(want, second[seq]...)
	}
	go func() {
		for seq := uint32(n/2 + 1); seq <= n; seq++ {
			if err := p.Consume(ctx, consumertest.Ledger(t, seq), second[seq]); err != nil {
				done <- fmt.Errorf("ledger %d: %w", seq, err)
				return
			}
			consumed.Store(seq)
		}
		done <- p.Flush(ctx)
	}()
	testutil.EventuallyWhy(t, 20*time.Second, "retries reported while the server is down", func() (bool, string) {
		return strings.HasPrefix(p.Health(), "database unreachable") && p.Stats()["retries"] >= 3,
			fmt.Sprintf("health %q stats %v", p.Health(), p.Stats())
	})
	// Two more attempts fail after this point: Consume had every chance to move on meanwhile.
	stuck, retries := consumed.Load(), p.Stats()["retries"]
	testutil.Eventually(t, 20*time.Second, "two more retries", func() bool { return p.Stats()["retries"] >= retries+2 })
	if consumed.Load() != stuck || stuck == n {
		t.Fatalf("Consume did not block while the database was down (reached ledger %d)", consumed.Load())
	}
	durableWhileDown := p.DurableLedger()
	if durableWhileDown > n/2 {
		t.Errorf("DurableLedger %d while the database is down, above the ledgers committed before", durableWhileDown)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Consume did not resume after the server came back")
	}
	if h := p.Health(); h != "" {
		t.Errorf("Health after recovery = %q", h)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv)
	got := readTable(t, c, "down_up")
	consumertest.SameRecords(t, got, want)
	var keys []string
	for _, g := range got {
		keys = append(keys, g.NaturalKey())
	}
	sort.Strings(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			t.Errorf("duplicate key %s", keys[i])
		}
	}
	if pos := position(t, p); pos != n {
		t.Errorf("Position = %d, want %d", pos, n)
	}
}

func TestPostgresConsumeGivesUpOnCancel(t *testing.T) {
	srv := pgtest.Shared(t)
	t.Cleanup(func() {
		if err := srv.StartAgain(); err != nil {
			t.Error(err)
		}
	})
	p := newTestPostgres(t, srv, "cancel", "cancel", nil)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	// The first ledger's commit starts in the background and retries; Flush waits for it and
	// gives it up with its deadline. The batch stays, for the next commit.
	if err := p.Consume(ctx, consumertest.Ledger(t, 1), consumertest.MakeRecords(1, 2)); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	err := p.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Flush with the server down and a deadline: %v", err)
	}
	// A later ledger waits behind the failed batch: both are committed on Close, in order.
	if err := p.Consume(context.Background(), consumertest.Ledger(t, 2), consumertest.MakeRecords(2, 2)); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pos := position(t, p); pos != 2 {
		t.Errorf("Position after Close = %d, want 2 (the failed batch, then the pending one)", pos)
	}
	consumertest.SameRecords(t, readTable(t, connect(t, srv), "cancel"),
		append(consumertest.MakeRecords(1, 2), consumertest.MakeRecords(2, 2)...))
}

func TestPostgresConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "connection_string"},
		{map[string]any{"connection_string": "postgres://u:secretpw@127.0.0.1:5432/db", "host": "x"}, "not both"},
		{map[string]any{"connection_string": "postgres://u:secretpw@127.0.0.1:badport/db"}, "invalid"},
		{map[string]any{"connection_string": "postgres://127.0.0.1/db", "batch_size": -1}, "positive"},
		{map[string]any{"connection_string": "postgres://127.0.0.1/db", "bogus": 1}, "bogus"},
	} {
		_, err := component.Construct(NewPostgres, tc.cfg, component.Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
	// Upstream CDP keys build the connection string.
	p, err := component.Construct(NewPostgres, map[string]any{"host": "127.0.0.1", "port": "5433", "database": "stellar",
		"username": "cdp", "password": "it's secret", "sslmode": "disable", "max_open_conns": 10,
		"max_idle_conns": 5, "connect_timeout": 30}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	cc := p.poolCfg.ConnConfig
	if cc.Host != "127.0.0.1" || cc.Port != 5433 || cc.Database != "stellar" || cc.User != "cdp" || cc.Password != "it's secret" || p.poolCfg.MaxConns != 10 {
		t.Errorf("parsed %s:%d/%s user %s password %q maxconns %d", cc.Host, cc.Port, cc.Database, cc.User, cc.Password, p.poolCfg.MaxConns)
	}
}

// Constructing the consumer connects to nothing (the port is closed: a connection would fail).
func TestPostgresConstructorConnectsToNothing(t *testing.T) {
	if _, err := component.Construct(NewSaveToPostgreSQL, map[string]any{"connection_string": "postgres://127.0.0.1:1/none"}, component.Env{}); err != nil {
		t.Error(err)
	}
}

// A batch is committed when flush_interval has passed since the last commit (checked as a
// ledger arrives) or when the host calls Flush (component.TimedFlusher).
func TestPostgresFlushInterval(t *testing.T) {
	srv := pgtest.Shared(t)
	var now atomic.Int64
	now.Store(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p, err := component.Construct(NewPostgres, map[string]any{"connection_string": srv.DB(t), "table_name": "flush_interval",
		"flush_interval": "3s"}, component.Env{Pipeline: "flush-interval", Name: "SaveToPostgreSQL", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	var tf component.TimedFlusher = p
	if tf.FlushInterval() != 3*time.Second {
		t.Fatalf("FlushInterval = %s, want 3s", tf.FlushInterval())
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	consume := func(seq uint32) {
		t.Helper()
		if err := p.Consume(ctx, consumertest.Ledger(t, seq), consumertest.MakeRecords(seq, 2)); err != nil {
			t.Fatal(err)
		}
	}
	// durable is DurableLedger once the commit in the background, if any, is done.
	durable := func() uint32 {
		t.Helper()
		p.mu.Lock()
		defer p.mu.Unlock()
		if err := p.settleLocked(ctx); err != nil {
			t.Fatal(err)
		}
		return p.DurableLedger()
	}
	consume(1) // the first ledger commits: no commit yet
	consume(2)
	now.Add(int64(2 * time.Second))
	consume(3)
	if d := durable(); d != 1 {
		t.Fatalf("DurableLedger = %d within the interval, want 1", d)
	}
	now.Add(int64(time.Second))
	consume(4) // 3 s after the last commit
	if d := durable(); d != 4 {
		t.Fatalf("DurableLedger = %d once the interval passed, want 4", d)
	}
	consume(5)
	if d := durable(); d != 4 {
		t.Fatalf("DurableLedger = %d, want 4", d)
	}
	if err := tf.(component.Consumer).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d, pos := p.DurableLedger(), position(t, p); d != 5 || pos != 5 {
		t.Fatalf("after Flush: DurableLedger %d, Position %d, want 5", d, pos)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, srv).QueryRow(ctx, "SELECT count(*) FROM flush_interval").Scan(&n); err != nil || n != 10 {
		t.Fatalf("rows %d (%v), want 10", n, err)
	}
}

// A batch of rows partly in the table already (a replay that runs on past the old end) is
// merged: the existing rows are left alone, the new ones added, nothing doubled.
func TestPostgresPartialReplay(t *testing.T) {
	srv := pgtest.Shared(t)
	a := newTestPostgres(t, srv, "partial", "partial", map[string]any{"batch_size": 1000})
	want := consumertest.ConsumeRange(t, a, 1, 10, 3)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := connect(t, srv)
	x0 := xmins(t, c, "partial")
	b := newTestPostgres(t, srv, "partial", "partial", map[string]any{"batch_size": 1000})
	want = append(want, consumertest.ConsumeRange(t, b, 8, 16, 3)[6:]...) // ledgers 8..10: 6 records
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	consumertest.SameRecords(t, readTable(t, c, "partial"), want)
	x1 := xmins(t, c, "partial")
	for k, x := range x0 {
		if x1[k] != x {
			t.Errorf("row %s was rewritten by the replay (xmin %s, then %s)", k, x, x1[k])
		}
	}
	if got := position(t, b); got != 16 {
		t.Errorf("Position = %d, want 16", got)
	}
}

// xmins maps each row's natural key to its xmin (which changes when the row is rewritten).
func xmins(t *testing.T, c *pgx.Conn, table string) map[string]string {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT natural_key, xmin::text FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var kv [2]string
		return kv, r.Scan(&kv[0], &kv[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range m {
		out[kv[0]] = kv[1]
	}
	return out
}
