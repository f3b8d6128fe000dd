package sql

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/pgtest"
)

// writerRecords are the records of ledger seq as writer `who` writes them: the same natural
// keys whoever writes, the writer in the data.
func writerRecords(seq uint32, who string) []component.Record {
	recs := consumertest.MakeRecords(seq, 2)
	for i, r := range recs {
		a := r.(consumertest.AllTypes)
		a.Data = json.RawMessage(`{"writer":"` + who + `"}`)
		recs[i] = a
	}
	return recs
}

// A stale writer is fenced: writer A commits ledgers 1-3, consumes 4 and 5 and is paused
// before committing them (a SIGSTOPped process, here a goroutine that has not flushed yet);
// writer B takes the same cursor over, resumes after 3 and commits 4-6; when A wakes its commit
// fails with ErrFenced and writes nothing, and so does every later commit of A. B's rows and
// cursor stand.
func TestPostgresStaleWriterFenced(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	clock := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) // never moves: commits on Flush only
	writer := func() *Postgres {
		p, err := component.Construct(NewPostgres, map[string]any{"connection_string": srv.DB(t), "table_name": "fenced",
			"max_retry_wait": "200ms", "batch_size": 1000}, component.Env{Pipeline: "fenced", Name: "SaveToPostgreSQL", Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	consume := func(p *Postgres, who string, from, to uint32) {
		t.Helper()
		for seq := from; seq <= to; seq++ {
			if err := p.Consume(ctx, consumertest.Ledger(t, seq), writerRecords(seq, who)); err != nil {
				t.Fatalf("%s consuming %d: %v", who, seq, err)
			}
		}
	}
	a := writer()
	consume(a, "A", 1, 3)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	consume(a, "A", 4, 5) // pending: A is paused here

	b := writer()
	if got := position(t, b); got != 3 {
		t.Fatalf("B resumes after %d, want 3", got)
	}
	consume(b, "B", 4, 6)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// A wakes up.
	if err := a.Flush(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("the stale writer's commit: %v, want ErrFenced", err)
	}
	consume(a, "A", 7, 7)
	if err := a.Close(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("the stale writer's last commit: %v, want ErrFenced", err)
	}

	c := connect(t, srv)
	rows, err := c.Query(ctx, `SELECT ledger_sequence, data->>'writer' FROM fenced ORDER BY 1, index`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]string{}
	n := 0
	for rows.Next() {
		var seq int64
		var who string
		if err := rows.Scan(&seq, &who); err != nil {
			t.Fatal(err)
		}
		got[uint32(seq)] += who
		n++
	}
	rows.Close()
	want := map[uint32]string{1: "AA", 2: "AA", 3: "AA", 4: "BB", 5: "BB", 6: "BB"}
	if n != 12 || len(got) != len(want) {
		t.Fatalf("rows by ledger and writer: %v (%d rows), want %v", got, n, want)
	}
	for seq, w := range want {
		if got[seq] != w {
			t.Fatalf("ledger %d written by %q, want %q (all: %v)", seq, got[seq], w, got)
		}
	}
	if got := position(t, b); got != 6 {
		t.Fatalf("cursor at %d after the fenced commits, want B's 6", got)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// A cursor table made before writers were fenced (no epoch column) gets the column, and its
// cursor is kept.
func TestPostgresCursorTableGetsEpoch(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	c := connect(t, srv)
	if _, err := c.Exec(ctx, `CREATE TABLE old_cursors (pipeline text NOT NULL, consumer text NOT NULL,
	last_ledger bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, consumer));
	INSERT INTO old_cursors VALUES ('old', 'SaveToPostgreSQL', 41, now())`); err != nil {
		t.Fatal(err)
	}
	p := newTestPostgres(t, srv, "old", "old_rows", map[string]any{"cursor_table": "old_cursors"})
	if got := position(t, p); got != 41 {
		t.Fatalf("Position = %d, want the old cursor's 41", got)
	}
	consumertest.ConsumeRange(t, p, 42, 43, 1)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := position(t, p); got != 43 {
		t.Fatalf("Position = %d, want 43", got)
	}
}
