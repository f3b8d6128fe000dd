package consumer

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// writeBatch writes the pending rows and the cursor in one transaction.
func (p *Postgres) writeBatch(ctx context.Context, pool *pgxpool.Pool) error {
	for _, kind := range p.kinds {
		if err := p.ensureTable(ctx, pool, p.pending[kind]); err != nil {
			return err
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	failpoint.Inject(failpoint.CursorBeforeUpdate)
	if err := p.advanceCursor(ctx, tx); err != nil { // first: a fenced writer writes nothing
		return err
	}
	failpoint.Inject(failpoint.CursorAfterUpdate)
	for _, kind := range p.kinds {
		pp := p.pending[kind]
		ncols := len(pp.schema.Columns) + 1
		per := min(pgMaxParams/ncols, p.cfg.BatchSize)
		for start := 0; start < len(pp.keys); start += per {
			end := min(start+per, len(pp.keys))
			sql, args := upsertStatement(pp, start, end)
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				return fmt.Errorf("writing %d %s records to %s: %w", end-start, kind, pp.table, err)
			}
		}
	}
	failpoint.Inject(failpoint.PostgresBeforeCommit)
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing ledgers up to %d: %w", p.last, err)
	}
	failpoint.Inject(failpoint.PostgresAfterCommit)
	return nil
}

func upsertStatement(pp *pgPending, start, end int) (string, []any) {
	cols := make([]string, 0, len(pp.schema.Columns)+1)
	cols = append(cols, "natural_key")
	for _, c := range pp.schema.Columns {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + pp.table + " AS t (" + strings.Join(cols, ", ") + ") VALUES ")
	args := make([]any, 0, (end-start)*len(cols))
	for i := start; i < end; i++ {
		if i > start {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args)+j+1)
		}
		b.WriteByte(')')
		args = append(args, pp.keys[i])
		args = append(args, pp.rows[i]...)
	}
	b.WriteString(" ON CONFLICT (natural_key) DO UPDATE SET ")
	var tcols, ecols []string
	for j, c := range cols[1:] {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = EXCLUDED." + c)
		tcols = append(tcols, "t."+c)
		ecols = append(ecols, "EXCLUDED."+c)
	}
	// Skip unchanged rows: a replay then writes nothing.
	b.WriteString(" WHERE (" + strings.Join(tcols, ", ") + ") IS DISTINCT FROM (" + strings.Join(ecols, ", ") + ")")
	return b.String(), args
}

func pgType(c Column) string {
	t := map[ColumnType]string{ColString: "text", ColBool: "boolean", ColInt32: "integer", ColInt64: "bigint",
		ColUint32: "bigint", ColUint64: "numeric(20,0)", ColFloat64: "double precision", ColTime: "timestamptz",
		ColStringList: "text[]", ColJSON: "jsonb"}[c.Type]
	if !c.Nullable {
		t += " NOT NULL"
	}
	return t
}

// ensureTable creates a kind's table when create_table is on and it is not known yet.
func (p *Postgres) ensureTable(ctx context.Context, pool *pgxpool.Pool, pp *pgPending) error {
	if p.tables[pp.table] || (p.cfg.CreateTable != nil && !*p.cfg.CreateTable) {
		return nil
	}
	defs := []string{"natural_key text PRIMARY KEY"}
	for _, c := range pp.schema.Columns {
		if c.Name == "natural_key" {
			return permanent(fmt.Errorf("record kind %s has a field named natural_key, the sink's key column", pp.schema.Kind))
		}
		defs = append(defs, pgx.Identifier{c.Name}.Sanitize()+" "+pgType(c))
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+pp.table+" (\n\t"+strings.Join(defs, ",\n\t")+")"); err != nil {
		return fmt.Errorf("creating table %s: %w", pp.table, err)
	}
	p.tables[pp.table] = true
	return nil
}
