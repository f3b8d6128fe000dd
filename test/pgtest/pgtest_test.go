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

// Each test's database is its own: a table made in one is not seen from another, one test
// gets one database however often it asks, and the database is gone (an open connection
// notwithstanding) once the test has ended.
func TestDBPerTest(t *testing.T) {
	outer := t
	s := Start(t)
	ctx := context.Background()
	exec := func(dsn, sql string) error {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	var first string
	t.Run("a", func(t *testing.T) {
		first = s.DBName(t)
		if s.DB(t) != s.dsn(first) {
			t.Fatalf("a second call gave %s, the first %s", s.DB(t), first)
		}
		if err := exec(s.DB(t), "CREATE TABLE mine (x int)"); err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(ctx, s.DB(t)) // still open when a ends: the drop must not wait for it
		if err != nil {
			t.Fatal(err)
		}
		outer.Cleanup(func() { c.Close(ctx) })
	})
	t.Run("b", func(t *testing.T) {
		if s.DBName(t) == first {
			t.Fatalf("b got a's database %s", first)
		}
		if err := exec(s.DB(t), "CREATE TABLE mine (x int)"); err != nil {
			t.Fatalf("a's table is seen from b: %v", err)
		}
	})
	if err := exec(s.dsn(first), "SELECT 1"); err == nil {
		t.Fatalf("database %s still there after its test ended", first)
	}
}
