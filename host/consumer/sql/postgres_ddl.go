package sql

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ddlLockClass is the first key of the advisory locks under which the PostgreSQL sink creates
// its tables ("cdpd" in ASCII); the second is the table's name hashed by the server.
const ddlLockClass = 0x63647064

// createShared runs ddl, a CREATE ... IF NOT EXISTS of table, in a transaction holding a
// transaction-scoped advisory lock on table's name. CREATE TABLE IF NOT EXISTS is not safe
// against itself: when pipelines that share a database start together, two of them both find
// the table missing and one fails with `duplicate key value violates unique constraint
// "pg_type_typname_nsp_index"` (or `type ... already exists`). Under the lock the second waits
// for the first to commit, then finds the table (each statement of a READ COMMITTED transaction
// sees what committed before it began). Tables of different names do not wait for each other.
func createShared(ctx context.Context, pool *pgxpool.Pool, table, ddl string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(ddlLockClass), table); err != nil {
		return fmt.Errorf("locking the creation of %s: %w", table, err)
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
