package sql

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// TestPostgresConcurrentStartsCreateSharedTables (issue 17 item 5): pipelines that start
// together on one database create the shared cursor table (and a shared data table) at the
// same moment (and, every other round, the data table's schema). CREATE ... IF NOT EXISTS is not safe against itself: one of two concurrent
// ones fails with `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`,
// which failed those pipelines' starts. Every start and first commit succeeds.
func TestPostgresConcurrentStartsCreateSharedTables(t *testing.T) {
	srv := pgtest.Shared(t)
	c := connect(t, srv)
	ctx := context.Background()
	const consumers, rounds = 6, 8
	for round := range rounds {
		cursor, table := fmt.Sprintf("race_cursors_%d", round), fmt.Sprintf("race_rows_%d", round)
		if round%2 == 1 { // a schema-qualified table: its CREATE SCHEMA IF NOT EXISTS races too
			table = fmt.Sprintf("race_s%d.rows", round)
		}
		ps := make([]*Postgres, consumers)
		for i := range ps {
			p, err := component.Construct(NewPostgres, map[string]any{"connection_string": srv.DB(t), "table_name": table,
				"cursor_table": cursor, "max_retry_wait": "200ms"}, component.Env{Pipeline: fmt.Sprintf("p%d", i), Name: "SaveToPostgreSQL"})
			if err != nil {
				t.Fatal(err)
			}
			ps[i] = p
		}
		errs := make([]error, consumers)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i, p := range ps {
			wg.Go(func() {
				start.Wait()
				if err := p.Start(ctx); err != nil {
					errs[i] = fmt.Errorf("start: %w", err)
					return
				}
				l := consumertest.Ledger(t, 58752000)
				if err := p.Consume(ctx, l, consumertest.MakeRecords(58752000, 3)); err != nil {
					errs[i] = fmt.Errorf("consume: %w", err)
					return
				}
				if err := p.Flush(ctx); err != nil {
					errs[i] = fmt.Errorf("flush: %w", err)
				}
			})
		}
		start.Done()
		wg.Wait()
		for i, p := range ps {
			if err := p.Close(ctx); err != nil {
				t.Errorf("round %d: closing consumer %d: %v", round, i, err)
			}
			if errs[i] != nil {
				t.Errorf("round %d: consumer %d: %v", round, i, errs[i])
			}
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+cursor).Scan(&n); err != nil || n != consumers {
			t.Errorf("round %d: %d cursor rows (%v), want %d", round, n, err, consumers)
		}
	}
}
