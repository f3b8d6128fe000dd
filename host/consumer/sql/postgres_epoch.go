package sql

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Fencing of the PostgreSQL sink's writers. Every writer of a cursor row (pipeline, consumer)
// takes a new owner epoch when it opens its pool (Start): the row's epoch column is raised by
// one and the new value is the writer's. A commit raises the cursor only where the row still
// carries the writer's epoch, as the first statement of its transaction; when another writer
// took the row over meanwhile (a second cdpd on another state directory, or this process
// paused and replaced, then woken), the statement matches no row and the transaction is
// rolled back with ErrFenced: the stale writer's rows are never written. The cursor update
// locks the row, so a writer taking the row over waits for a commit in flight (at most
// fenceLockTimeout, then its Start fails and is retried) and the two are ordered.
//
// A fenced writer's pipeline fails and is restarted per its restart policy; the new
// incarnation takes the next epoch and resumes after the cursor, so two live writers of one
// cursor alternate (each commit consistent) rather than overwrite each other.

// ErrFenced is the error of a commit refused because another writer took the cursor over.
var ErrFenced = errors.New("another writer took over this consumer's cursor (its owner epoch moved on)")

// fenceLockTimeout bounds how long taking the cursor over waits for another writer's
// transaction that holds the row.
const fenceLockTimeout = "5s"

// pgCursorEpochColumn is the epoch column of the cursor table (in its CREATE TABLE, and
// added to a table made before writers were fenced).
const pgCursorEpochColumn = `epoch bigint NOT NULL DEFAULT 0`

// addEpochColumn adds the epoch column to a cursor table that lacks it. The column is looked
// for first: ALTER TABLE locks the table even when the column is there.
func (p *Postgres) addEpochColumn(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `SELECT epoch FROM `+p.cursor+` LIMIT 0`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42703" { // undefined_column
		return err
	}
	_, err = pool.Exec(ctx, `ALTER TABLE `+p.cursor+` ADD COLUMN IF NOT EXISTS `+pgCursorEpochColumn)
	return err
}

// claimEpoch makes this writer the owner of its cursor row (creating the row at ledger 0, which
// Position reads as no position) and records the new epoch.
func (p *Postgres) claimEpoch(ctx context.Context, pool *pgxpool.Pool) error {
	if err := p.addEpochColumn(ctx, pool); err != nil {
		return fmt.Errorf("adding the epoch column to cursor table %s: %w", p.cfg.CursorTable, err)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+fenceLockTimeout+"'"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO `+p.cursor+` AS c (pipeline, consumer, last_ledger, epoch, updated_at)
VALUES ($1, $2, 0, 1, now())
ON CONFLICT (pipeline, consumer) DO UPDATE SET epoch = c.epoch + 1
RETURNING epoch`, p.pipeline, p.name).Scan(&p.epoch)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return fmt.Errorf("taking over the cursor of %s/%s: another writer's transaction holds it (a paused process?): %w", p.pipeline, p.name, err)
	}
	if err != nil {
		return fmt.Errorf("taking over the cursor of %s/%s: %w", p.pipeline, p.name, err)
	}
	return nil
}

// advanceCursor raises the cursor to the batch's last ledger in tx if this writer still owns
// it; the writer's caller runs it first in the transaction.
func (p *Postgres) advanceCursor(ctx context.Context, tx pgx.Tx, last uint32) error {
	tag, err := tx.Exec(ctx, `UPDATE `+p.cursor+` SET last_ledger = GREATEST(last_ledger, $3), updated_at = now()
WHERE pipeline = $1 AND consumer = $2 AND epoch = $4`, p.pipeline, p.name, int64(last), p.epoch)
	if err != nil {
		return fmt.Errorf("updating cursor: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return permanent(fmt.Errorf("committing ledgers up to %d of %s/%s as writer epoch %d: %w", last, p.pipeline, p.name, p.epoch, ErrFenced))
	}
	return nil
}
