//go:build cgo && !noduckdb

package sql

import (
	"context"
	stdsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// DuckDBBuilt says whether this binary has the DuckDB consumers (built with cgo and without
// the noduckdb tag).
const DuckDBBuilt = true

// DuckDB is the writer of the DuckDB consumers (SaveToDuckDB, SaveContractToDuckDB,
// SaveAccountDataToDuckDB, SaveSoroswapPairsToDuckDB, SaveSoroswapRouterToDuckDB): an embedded database file (db_path) written through DuckDB's Go
// driver, github.com/duckdb/duckdb-go/v2 v2.20000.0 with its prebuilt library. The tables are
// those of the consumer's Layout, natural_key VARCHAR PRIMARY KEY first; column types follow
// the record type (string VARCHAR, bool BOOLEAN, int32 INTEGER, int/int64 BIGINT, uint32
// UINTEGER, uint64 UBIGINT, float64 DOUBLE, time.Time TIMESTAMPTZ, []string VARCHAR[],
// json.RawMessage JSON).
//
// Data safety: exactly-once. A batch of whole ledgers is appended with DuckDB's Appender API
// (a table appender whose rows are merged by INSERT ... ON CONFLICT (natural_key) DO UPDATE)
// and the consumer's cursor row in cdpd_cursors(pipeline, consumer, last_ledger, updated_at)
// is raised in the same transaction, so after a crash (kill -9) the file holds every ledger up
// to its cursor and none after; the pipeline resumes after the cursor (Position), and a
// replay of ledgers the file holds rewrites the same rows. Upstream's DuckDB consumers
// inserted row by row without a key (a replay doubled rows) and kept no cursor.
//
// A batch is committed when batch_size records are pending or flush_interval has passed
// since the last commit (checked as a ledger arrives; the host also calls Flush after
// flush_interval, component.TimedFlusher). DuckDB allows one writing process per file: a
// second pipeline writing the same db_path fails to start. That lock, held from Start to
// Close, is also the fence against a stale writer (a paused process whose replacement
// starts): the replacement cannot open the file while the stale one lives, so two writers of
// one file never interleave and the cursor needs no owner epoch, unlike SaveToPostgreSQL's
// (TestDuckDBStaleWriterCannotInterleave).
//
// Build: DuckDB needs cgo. cdpd builds it in by default (CGO_ENABLED=1, a libc runtime
// image); `go build -tags noduckdb`, or CGO_ENABLED=0, builds a static cgo-free binary
// without the DuckDB consumers (a pipeline naming one fails with an error saying so).
type DuckDB struct {
	typ      string
	cfg      DuckDBConfig
	pipeline string
	name     string
	log      *slog.Logger
	now      func() time.Time

	openMu sync.Mutex
	db     *stdsql.DB
	conn   *stdsql.Conn
	closed bool
	tables map[string]bool

	mu sync.Mutex // txState but its atomics; held by Consume/Flush/Close
	txState
}

func newDuckDB(typ string, layout *Layout, cp *DuckDBConfig, env component.Env) (*DuckDB, error) {
	c := *cp
	if c.DBPath == "" {
		return nil, fmt.Errorf("%s: db_path is required", typ)
	}
	if c.BatchSize <= 0 || c.FlushInterval <= 0 {
		return nil, fmt.Errorf("%s: batch_size and flush_interval must be positive", typ)
	}
	if c.CursorTable == "" {
		return nil, fmt.Errorf("%s: cursor_table must not be empty", typ)
	}
	d := &DuckDB{typ: typ, cfg: c, pipeline: env.Pipeline, name: env.Name, log: env.Logger, now: env.Now,
		tables: map[string]bool{}, txState: txState{pending: newBatch(layout, c.TableName, duckValue)}}
	if d.name == "" {
		d.name = typ
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// Start opens the database file (created when missing) and creates the cursor table.
func (d *DuckDB) Start(ctx context.Context) error {
	_, err := d.connection(ctx)
	return err
}

func (d *DuckDB) connection(ctx context.Context) (*stdsql.Conn, error) {
	d.openMu.Lock()
	defer d.openMu.Unlock()
	if d.conn != nil {
		return d.conn, nil
	}
	if d.closed {
		return nil, fmt.Errorf("%s: used after Close", d.typ)
	}
	connector, err := duckdb.NewConnector(d.cfg.DBPath, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: opening %s: %w", d.typ, d.cfg.DBPath, err)
	}
	db := stdsql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+duckIdent(d.cfg.CursorTable)+` (
	pipeline VARCHAR NOT NULL,
	consumer VARCHAR NOT NULL,
	last_ledger BIGINT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (pipeline, consumer))`)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		db.Close()
		return nil, fmt.Errorf("%s: opening %s: %w", d.typ, d.cfg.DBPath, err)
	}
	d.db, d.conn = db, conn
	return conn, nil
}

// Position returns the last ledger this consumer committed to the file.
func (d *DuckDB) Position(ctx context.Context) (uint32, bool, error) {
	d.openMu.Lock()
	closed := d.closed
	d.openMu.Unlock()
	var q interface {
		QueryRowContext(context.Context, string, ...any) *stdsql.Row
	}
	if closed { // after Close: open the file again for the read
		connector, err := duckdb.NewConnector(d.cfg.DBPath, nil)
		if err != nil {
			return 0, false, fmt.Errorf("%s: opening %s: %w", d.typ, d.cfg.DBPath, err)
		}
		db := stdsql.OpenDB(connector)
		defer db.Close()
		q = db
	} else {
		conn, err := d.connection(ctx)
		if err != nil {
			return 0, false, err
		}
		q = conn
	}
	var last int64
	err := q.QueryRowContext(ctx, `SELECT last_ledger FROM `+duckIdent(d.cfg.CursorTable)+` WHERE pipeline = ? AND consumer = ?`,
		d.pipeline, d.name).Scan(&last)
	if errors.Is(err, stdsql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s: reading cursor: %w", d.typ, err)
	}
	return uint32(last), true, nil
}

// Consume adds the ledger's records to the pending batch and commits it when it is big or
// old enough.
func (d *DuckDB) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := l.Sequence()
	if err := d.add(d.typ, seq, recs); err != nil {
		return err
	}
	if d.due(d.cfg.BatchSize, d.cfg.FlushInterval, d.now()) {
		return d.commitLocked(ctx)
	}
	return nil
}

// duckValue converts a consumer.Schema value for the appender.
func duckValue(v any) any {
	switch x := v.(type) {
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return l
	}
	return v // json.RawMessage: the driver writes a JSON column's value with encoding/json, which keeps it as it is
}

// Flush commits the pending batch.
func (d *DuckDB) Flush(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commitLocked(ctx)
}

// Close commits the pending batch and closes the file.
func (d *DuckDB) Close(ctx context.Context) error {
	d.mu.Lock()
	err := d.commitLocked(ctx)
	d.mu.Unlock()
	d.openMu.Lock()
	defer d.openMu.Unlock()
	if d.conn != nil {
		err = errors.Join(err, d.conn.Close(), d.db.Close())
		d.conn, d.db = nil, nil
	}
	d.closed = true
	return err
}

// FlushInterval implements component.TimedFlusher (flush_interval).
func (d *DuckDB) FlushInterval() time.Duration { return d.cfg.FlushInterval }

// DurableLedger is the last ledger committed (with the cursor) to the file.
func (d *DuckDB) DurableLedger() uint32 { return d.durable.Load() }

// Stats reports records_written, batches_written, last_ledger.
func (d *DuckDB) Stats() map[string]float64 {
	return map[string]float64{
		"records_written": float64(d.records.Load()),
		"batches_written": float64(d.batches.Load()),
		"last_ledger":     float64(d.durable.Load()),
	}
}

func (d *DuckDB) commitLocked(ctx context.Context) error {
	if !d.open {
		return nil
	}
	conn, err := d.connection(ctx)
	if err != nil {
		return err
	}
	if err := d.writeBatch(ctx, conn); err != nil {
		return fmt.Errorf("%s: writing ledgers up to %d to %s: %w", d.typ, d.last, d.cfg.DBPath, err)
	}
	d.committed(d.seal(d.now()))
	return nil
}

// writeBatch appends every table's rows and raises the cursor in one transaction.
func (d *DuckDB) writeBatch(ctx context.Context, conn *stdsql.Conn) error {
	for _, tb := range d.pending.order {
		if err := d.ensureTable(ctx, conn, tb); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for _, tb := range d.pending.order {
		if err := conn.Raw(func(dc any) error { return appendMerge(dc.(driver.Conn), tb) }); err != nil {
			return fmt.Errorf("writing %d %s records to %s: %w", len(tb.rows), tb.schema.Kind, tb.table, err)
		}
	}
	cursor := duckIdent(d.cfg.CursorTable)
	if _, err := conn.ExecContext(ctx, `INSERT INTO `+cursor+` (pipeline, consumer, last_ledger, updated_at)
VALUES (?, ?, ?, now())
ON CONFLICT (pipeline, consumer) DO UPDATE
SET last_ledger = greatest(`+cursor+`.last_ledger, EXCLUDED.last_ledger), updated_at = EXCLUDED.updated_at`,
		d.pipeline, d.name, int64(d.last)); err != nil {
		return fmt.Errorf("updating cursor: %w", err)
	}
	failpoint.Inject(failpoint.DuckDBBeforeCommit)
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	committed = true
	failpoint.Inject(failpoint.DuckDBAfterCommit)
	return nil
}

// appendMerge appends a table's rows with a table appender that merges them by natural key.
func appendMerge(dc driver.Conn, tb *tableBatch) error {
	q := make([]string, len(tb.cols))
	var set []string
	for i, c := range tb.cols {
		q[i] = duckIdent(c)
		if i > 0 && !tb.keep[i] {
			set = append(set, q[i]+" = EXCLUDED."+q[i])
		}
	}
	catalog, schema, table := "", "", tb.table
	if s, t, ok := strings.Cut(tb.table, "."); ok {
		schema, table = s, t
	}
	query := "INSERT INTO " + duckIdent(tb.table) + " (" + strings.Join(q, ", ") + ") SELECT * FROM appended_data" +
		" ON CONFLICT (natural_key) DO UPDATE SET " + strings.Join(set, ", ")
	a, err := duckdb.NewTableAppender(dc, query, catalog, schema, table, tb.cols)
	if err != nil {
		return err
	}
	for _, row := range tb.rows {
		vals := make([]driver.Value, len(row))
		for i, v := range row {
			vals[i] = v
		}
		if err := a.AppendRow(vals...); err != nil {
			return errors.Join(err, a.Close())
		}
	}
	return a.Close()
}

var duckTypes = map[consumer.ColumnType]string{consumer.ColString: "VARCHAR", consumer.ColBool: "BOOLEAN",
	consumer.ColInt32: "INTEGER", consumer.ColInt64: "BIGINT", consumer.ColUint32: "UINTEGER",
	consumer.ColUint64: "UBIGINT", consumer.ColFloat64: "DOUBLE", consumer.ColTime: "TIMESTAMPTZ",
	consumer.ColStringList: "VARCHAR[]", consumer.ColJSON: "JSON"}

// ensureTable creates a table (and its schema) when it is not known yet.
func (d *DuckDB) ensureTable(ctx context.Context, conn *stdsql.Conn, tb *tableBatch) error {
	if d.tables[tb.table] {
		return nil
	}
	defs := []string{"natural_key VARCHAR PRIMARY KEY"}
	for i, c := range tb.schema.Columns {
		t := duckTypes[c.Type]
		if !c.Nullable {
			t += " NOT NULL"
		}
		defs = append(defs, duckIdent(tb.cols[i+1])+" "+t)
	}
	if schema, _, ok := strings.Cut(tb.table, "."); ok {
		if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+duckIdent(schema)); err != nil {
			return fmt.Errorf("creating schema %s: %w", schema, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+duckIdent(tb.table)+" (\n\t"+strings.Join(defs, ",\n\t")+")"); err != nil {
		return fmt.Errorf("creating table %s: %w", tb.table, err)
	}
	d.tables[tb.table] = true
	return nil
}

// duckIdent quotes a (possibly schema-qualified) identifier.
func duckIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

func duckConsumer(typ string, layout *Layout, c *DuckDBConfig, env component.Env) (component.Consumer, error) {
	d, err := newDuckDB(typ, layout, c, env)
	if err != nil {
		return nil, err
	}
	return d, nil
}
