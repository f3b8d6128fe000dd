package sql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/internal/backoff"
	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// commitLocked seals the pending batch and commits it in the background (one commit in flight
// at a time: it first waits for the one before), so that the rows of the next batch are built
// while the database writes this one; with wait it also waits for this commit. A batch whose
// commit failed is committed again first. p.mu is held.
//
// Consume returning before its ledgers are in the database loses nothing: the host's
// checkpoint follows DurableLedger, which moves when a commit (rows and cursor) lands, and a
// failed commit is the error of the next Consume, Flush or Close.
func (p *Postgres) commitLocked(ctx context.Context, wait bool) error {
	if err := p.settleLocked(ctx); err != nil {
		return err
	}
	if p.failed != nil { // before any later batch: its cursor would move past these rows
		p.startLocked(ctx, *p.failed)
		p.failed = nil
		if err := p.settleLocked(ctx); err != nil {
			return err
		}
	}
	if !p.open {
		return nil
	}
	p.startLocked(ctx, p.seal(p.now()))
	if wait {
		return p.settleLocked(ctx)
	}
	return nil
}

// flight is a commit running in the background.
type flight struct {
	batch  sealed
	done   chan struct{}
	err    error // set before done is closed
	cancel context.CancelCauseFunc
}

// startLocked starts the commit of s. The commit outlives ctx (a stopping pipeline's work
// context): it is abandoned only when a wait for it gives up (settleLocked). p.mu is held.
func (p *Postgres) startLocked(ctx context.Context, s sealed) {
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	f := &flight{batch: s, done: make(chan struct{}), cancel: cancel}
	p.flight = f
	go func() {
		defer close(f.done)
		defer cancel(nil)
		f.err = p.write(wctx, s)
	}()
}

// settleLocked waits for the commit in flight, if any, and returns its error (its batch is
// then kept for the next commit); when ctx ends first, it cancels the commit with ctx's cause
// and waits for it to stop. p.mu is held.
func (p *Postgres) settleLocked(ctx context.Context) error {
	f := p.flight
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		f.cancel(context.Cause(ctx))
		<-f.done
	}
	p.flight = nil
	if f.err != nil {
		p.failed = &f.batch
	}
	return f.err
}

// write commits s and its cursor, retrying while the database is unreachable.
func (p *Postgres) write(ctx context.Context, s sealed) error {
	pool, err := p.ensurePool(ctx)
	if err != nil {
		// Start was skipped or failed: treat like an outage and keep trying.
		err = p.retry(ctx, s.records, func(ctx context.Context) error {
			var e error
			pool, e = p.ensurePool(ctx)
			return e
		})
		if err != nil {
			return err
		}
	}
	if err := p.retry(ctx, s.records, func(ctx context.Context) error { return p.writeBatch(ctx, pool, s) }); err != nil {
		return err
	}
	p.committed(s)
	return nil
}

// writeBatch writes s's rows and the cursor in one transaction: first the fenced cursor
// update (postgres_epoch.go: a writer another one took over from writes nothing), then each
// table's rows (copyMerge).
func (p *Postgres) writeBatch(ctx context.Context, pool *pgxpool.Pool, s sealed) error {
	for _, tb := range s.order {
		if err := p.ensureTable(ctx, pool, tb); err != nil {
			return err
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	failpoint.Inject(failpoint.CursorBeforeUpdate)
	if err := p.advanceCursor(ctx, tx, s.last); err != nil { // first: a fenced writer writes nothing
		return err
	}
	failpoint.Inject(failpoint.CursorAfterUpdate)
	for i, tb := range s.order {
		if err := copyMerge(ctx, tx, tb, fmt.Sprintf("cdpd_stage_%d", i)); err != nil {
			return fmt.Errorf("writing %d %s records to %s: %w", len(tb.rows), tb.schema.Kind, tb.table, err)
		}
	}
	failpoint.Inject(failpoint.PostgresBeforeCommit)
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing ledgers up to %d: %w", s.last, err)
	}
	failpoint.Inject(failpoint.PostgresAfterCommit)
	return nil
}

// copyMerge writes a table's batch. Rows new to the table (a catch-up, the common case) are
// copied straight into it under a savepoint; when a key is already there (a replay) the
// savepoint is rolled back and the rows are copied into the temporary table stage and merged.
func copyMerge(ctx context.Context, tx pgx.Tx, pp *tableBatch, stage string) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating savepoint: %w", err)
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier(strings.Split(pp.table, ".")), pp.cols, pgx.CopyFromRows(pp.rows))
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("releasing savepoint: %w", err)
		}
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation: a key is there
		return fmt.Errorf("copying: %w", err)
	}
	if err := sp.Rollback(ctx); err != nil {
		return fmt.Errorf("rolling back to savepoint: %w", err)
	}
	defs := make([]string, len(pp.cols))
	for i, c := range pp.cols {
		defs[i] = pgx.Identifier{c}.Sanitize() + " " + pgColumnType(pp.schema, i)
	}
	st := pgx.Identifier{stage}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+st+" ("+strings.Join(defs, ", ")+") ON COMMIT DROP"); err != nil {
		return fmt.Errorf("creating staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, pp.cols, pgx.CopyFromRows(pp.rows)); err != nil {
		return fmt.Errorf("copying into staging table: %w", err)
	}
	if _, err := tx.Exec(ctx, mergeStatement(sanitizeTable(pp.table), st, pp.cols, pp.keep)); err != nil {
		return fmt.Errorf("merging: %w", err)
	}
	return nil
}

// mergeStatement is INSERT INTO table SELECT FROM stage ON CONFLICT (natural_key) DO UPDATE
// of every column but natural_key and the kept ones (keep: indexes in cols), skipping rows
// that are unchanged (a replay then writes nothing).
func mergeStatement(table, stage string, cols []string, keep map[int]bool) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	var set, tcols, ecols []string
	for i, c := range q {
		if i == 0 || keep[i] {
			continue
		}
		set = append(set, c+" = EXCLUDED."+c)
		tcols = append(tcols, "t."+c)
		ecols = append(ecols, "EXCLUDED."+c)
	}
	list := strings.Join(q, ", ")
	return "INSERT INTO " + table + " AS t (" + list + ") SELECT " + list + " FROM " + stage +
		" ON CONFLICT (natural_key) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(tcols, ", ") + ") IS DISTINCT FROM (" + strings.Join(ecols, ", ") + ")"
}

// pgTypes are the column types of the record column types.
var pgTypes = map[consumer.ColumnType]string{consumer.ColString: "text", consumer.ColBool: "boolean",
	consumer.ColInt32: "integer", consumer.ColInt64: "bigint", consumer.ColUint32: "bigint",
	consumer.ColUint64: "numeric(20,0)", consumer.ColFloat64: "double precision", consumer.ColTime: "timestamptz",
	consumer.ColStringList: "text[]", consumer.ColJSON: "jsonb"}

// pgColumnType is the type of column i (0: natural_key) of a table batch, without NOT NULL.
func pgColumnType(s *consumer.Schema, i int) string {
	if i == 0 {
		return "text"
	}
	return pgTypes[s.Columns[i-1].Type]
}

// ensureTable creates a table (and its schema) when create_table is on and it is not known yet.
func (p *Postgres) ensureTable(ctx context.Context, pool *pgxpool.Pool, tb *tableBatch) error {
	if p.tables[tb.table] || (p.cfg.CreateTable != nil && !*p.cfg.CreateTable) {
		return nil
	}
	defs := []string{"natural_key text PRIMARY KEY"}
	for i, c := range tb.schema.Columns {
		t := pgColumnType(tb.schema, i+1)
		if !c.Nullable {
			t += " NOT NULL"
		}
		defs = append(defs, pgx.Identifier{tb.cols[i+1]}.Sanitize()+" "+t)
	}
	if schema, _, ok := strings.Cut(tb.table, "."); ok {
		if err := createShared(ctx, pool, schema, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("creating schema %s: %w", schema, err)
		}
	}
	table := sanitizeTable(tb.table)
	if err := createShared(ctx, pool, tb.table, "CREATE TABLE IF NOT EXISTS "+table+" (\n\t"+strings.Join(defs, ",\n\t")+")"); err != nil {
		return fmt.Errorf("creating table %s: %w", table, err)
	}
	p.tables[tb.table] = true
	return nil
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// retryable reports whether err means the database is (temporarily) unreachable, as opposed
// to a problem with the data or the schema, which retrying cannot fix.
func retryable(err error) bool {
	var perm permanentError
	if errors.As(err, &perm) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, cannot connect now
			pgErr.Code == "53300",                        // too many connections
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	return true // network errors, closed connections, connect failures
}

// retry runs fn until it succeeds, fails permanently or ctx is cancelled, backing off
// exponentially (100 ms doubling up to max_retry_wait) while the database is unreachable.
func (p *Postgres) retry(ctx context.Context, pending int, fn func(context.Context) error) error {
	policy := backoff.Policy{Base: 100 * time.Millisecond, Max: p.cfg.MaxRetryWait}
	for n := 1; ; n++ {
		err := fn(ctx)
		if err == nil {
			p.setHealth("")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", p.typ, err, context.Cause(ctx))
		}
		if !retryable(err) {
			return fmt.Errorf("%s: %w", p.typ, err)
		}
		p.retries.Add(1)
		wait := policy.Delay(n)
		p.setHealth("database unreachable: " + err.Error())
		p.log.Warn("database unreachable, retrying",
			"error", err.Error(), "retry_in", wait, "pending_records", pending)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: database unreachable: %w (gave up: %w)", p.typ, err, context.Cause(ctx))
		case <-t.C:
		}
	}
}
