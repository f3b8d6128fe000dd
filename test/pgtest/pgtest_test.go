package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func query(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT 40 + 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStartStopStartAgain(t *testing.T) {
	s := Start(t)
	if got := query(t, s.DSN()); got != 42 {
		t.Fatalf("SELECT 40 + 2 = %d", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if c, err := pgx.Connect(ctx, s.DSN()); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := s.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if got := query(t, s.DSN()); got != 42 {
		t.Fatalf("after restart SELECT 40 + 2 = %d", got)
	}
}
