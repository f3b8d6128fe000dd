package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/consumer/sql"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/account"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// pgBenchLedgers is how many ledgers of the shared fixture feed the PostgreSQL benchmark (their
// account changes, ~500 rows a ledger of 30 columns).
var pgBenchLedgers = envInt("CDPD_BENCH_PG_LEDGERS", 100)

// BenchmarkPostgresCopy (issue 16, item 2): rows/s of the PostgreSQL writer (COPY straight into
// the table, with the cursor in the same transaction, each batch committed while the next fills)
// against the path it replaced (multi-row INSERT ... ON CONFLICT statements, kept below as
// insertPath), each with its default batch size, on a fresh table per run, interleaved.
func BenchmarkPostgresCopy(b *testing.B) {
	srv := pgtest.Start(b)
	ds, rng := sharedDatastore(b)
	ctx := ctxFor(b, 10*time.Minute)
	ledgers, recs := accountRecords(b, ds, rng.From(), pgBenchLedgers)
	rows := 0
	for _, r := range recs {
		rows += len(r)
	}
	conn, err := pgx.Connect(ctx, srv.DSN())
	must(b, err, "connecting to PostgreSQL")
	defer conn.Close(context.WithoutCancel(ctx))

	n := 0
	var lastCopy, lastInsert string
	copyRun := func(int) (Sample, error) {
		n++
		table := fmt.Sprintf("bench_copy_%d", n)
		lastCopy = table
		p, err := component.Construct(sql.NewPostgres, map[string]any{"connection_string": srv.DSN(), "table_name": table},
			component.Env{Pipeline: "bench", Name: table})
		if err != nil {
			return Sample{}, err
		}
		if err := p.Start(ctx); err != nil {
			return Sample{}, err
		}
		return Measure(func() (int64, error) {
			for i, l := range ledgers {
				if err := p.Consume(ctx, l, recs[i]); err != nil {
					return 0, err
				}
			}
			return int64(rows), p.Close(ctx)
		})
	}
	// The first COPY run's table is the template of the INSERT runs' tables.
	if _, err := copyRun(0); err != nil {
		b.Fatalf("COPY run: %v", err)
	}
	insertRun := func(int) (Sample, error) {
		n++
		table := fmt.Sprintf("bench_insert_%d", n)
		lastInsert = table
		if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (LIKE bench_copy_1 INCLUDING ALL)"); err != nil {
			return Sample{}, err
		}
		w := &insertPath{conn: conn, table: table, batch: 1000}
		return Measure(func() (int64, error) {
			for i, l := range ledgers {
				if err := w.consume(ctx, l.Sequence(), recs[i]); err != nil {
					return 0, err
				}
			}
			return int64(rows), w.commit(ctx)
		})
	}
	c, err := Interleave(max(benchReps/2, 2), copyRun, insertRun)
	must(b, err, "COPY vs INSERT")
	var copied, inserted int64
	must(b, conn.QueryRow(ctx, "SELECT count(*) FROM "+lastCopy).Scan(&copied), "counting")
	must(b, conn.QueryRow(ctx, "SELECT count(*) FROM "+lastInsert).Scan(&inserted), "counting")
	if copied != inserted || copied == 0 {
		b.Fatalf("the two paths wrote %d and %d rows", copied, inserted)
	}
	Detail("postgres_copy_vs_insert", "%d account rows (%d distinct) of %d ledgers per run; %s", rows, copied, len(ledgers),
		c.Describe("COPY (batch 10000)", "multi-row INSERT (batch 1000)", "row"))
	Report("postgres_copy_vs_insert", c.Ratio(), AtLeast(5))
}

// accountRecords runs ProcessAccountDataFull over count ledgers of the fixture from from on.
func accountRecords(b *testing.B, ds *fixture.Datastore, from uint32, count int) ([]*ledger.Ledger, [][]component.Record) {
	b.Helper()
	p, err := component.Construct(account.NewAccountData, map[string]any{"network": "pubnet"}, component.Env{Pipeline: "bench", Now: time.Now})
	must(b, err, "AccountData")
	var ls []*ledger.Ledger
	var rs [][]component.Record
	for seq := from; seq < from+uint32(count); seq++ { //nolint:gosec // small count
		raw, err := ds.RawLedger(seq)
		must(b, err, "reading ledger %d", seq)
		l, err := ledger.New(raw, nil)
		must(b, err, "ledger %d", seq)
		recs, err := p.Process(context.Background(), l, nil)
		must(b, err, "AccountData on ledger %d", seq)
		ls, rs = append(ls, l), append(rs, recs)
	}
	return ls, rs
}

// insertPath is the PostgreSQL writer as it was before COPY (kept for this comparison only):
// batches of whole ledgers, each written as multi-row INSERT ... ON CONFLICT (natural_key) DO
// UPDATE statements of at most 65535 parameters, with the cursor row, in one transaction.
type insertPath struct {
	conn  *pgx.Conn
	table string
	batch int
	cols  []string
	keys  []string
	rows  [][]any
	index map[string]int
	last  uint32
}

func (w *insertPath) consume(ctx context.Context, seq uint32, recs []component.Record) error {
	if w.index == nil {
		w.index = map[string]int{}
	}
	for _, r := range recs {
		s, err := consumer.SchemaOf(r)
		if err != nil {
			return err
		}
		if w.cols == nil {
			w.cols = []string{"natural_key"}
			for _, c := range s.Columns {
				w.cols = append(w.cols, pgx.Identifier{c.Name}.Sanitize())
			}
		}
		vals, err := s.Values(r, make([]any, 0, len(s.Columns)))
		if err != nil {
			return err
		}
		for i, v := range vals {
			switch x := v.(type) {
			case uint32:
				vals[i] = int64(x)
			case uint64:
				vals[i] = pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}
			case json.RawMessage:
				vals[i] = string(x)
			}
		}
		if i, dup := w.index[r.NaturalKey()]; dup {
			w.rows[i] = vals
			continue
		}
		w.index[r.NaturalKey()] = len(w.keys)
		w.keys = append(w.keys, r.NaturalKey())
		w.rows = append(w.rows, vals)
	}
	w.last = seq
	if len(w.keys) >= w.batch {
		return w.commit(ctx)
	}
	return nil
}

func (w *insertPath) commit(ctx context.Context) error {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	per := min(65535/len(w.cols), w.batch)
	for start := 0; start < len(w.keys); start += per {
		end := min(start+per, len(w.keys))
		q, args := w.statement(start, end)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cdpd_cursors (pipeline, consumer, last_ledger, updated_at) VALUES ('bench', $1, $2, now())
ON CONFLICT (pipeline, consumer) DO UPDATE SET last_ledger = GREATEST(cdpd_cursors.last_ledger, EXCLUDED.last_ledger), updated_at = EXCLUDED.updated_at`,
		w.table, int64(w.last)); err != nil {
		return err
	}
	w.keys, w.rows, w.index = nil, nil, map[string]int{}
	return tx.Commit(ctx)
}

func (w *insertPath) statement(start, end int) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + w.table + " AS t (" + strings.Join(w.cols, ", ") + ") VALUES ")
	args := make([]any, 0, (end-start)*len(w.cols))
	for i := start; i < end; i++ {
		if i > start {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range w.cols {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args)+j+1)
		}
		b.WriteByte(')')
		args = append(args, w.keys[i])
		args = append(args, w.rows[i]...)
	}
	var set, tcols, ecols []string
	for _, c := range w.cols[1:] {
		set = append(set, c+" = EXCLUDED."+c)
		tcols = append(tcols, "t."+c)
		ecols = append(ecols, "EXCLUDED."+c)
	}
	b.WriteString(" ON CONFLICT (natural_key) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(tcols, ", ") + ") IS DISTINCT FROM (" + strings.Join(ecols, ", ") + ")")
	return b.String(), args
}
