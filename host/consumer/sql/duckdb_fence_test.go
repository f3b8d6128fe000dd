//go:build cgo && !noduckdb

package sql

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
)

// TestHelperDuckDBWriter is run as a child process by TestDuckDBStaleWriterCannotInterleave:
// a DuckDB writer that has committed ledgers 1-3, holds 4-5 pending and then stops (as a
// SIGSTOPped cdpd would), keeping the file open.
func TestHelperDuckDBWriter(t *testing.T) {
	path := os.Getenv("DUCKDB_FENCE_HELPER")
	if path == "" {
		t.Skip("run by TestDuckDBStaleWriterCannotInterleave")
	}
	d := newTestDuckDB(t, path, "fenced", map[string]any{"table_name": "fenced", "batch_size": 1000})
	consumertest.ConsumeRange(t, d, 1, 3, 2)
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	consumertest.ConsumeRange(t, d, 4, 5, 2)
	os.Stdout.WriteString("paused\n")
	select {} // killed by the parent
}

// DuckDB's fence is the file itself: a writer holds its db_path open (DuckDB's lock on the
// file) from Start to Close, so while a stale writer (here a stopped child process with
// ledgers pending) lives, a replacement cannot open the file at all; it fails to start
// (and is retried by the pipeline's restart policy) instead of writing beside the stale one.
// Once the stale process is gone, the replacement resumes after the stale writer's last
// commit, and the stale writer's pending ledgers were never written. So the DuckDB cursor
// needs no owner epoch: two writers of one file never interleave.
func TestDuckDBStaleWriterCannotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fenced.duckdb")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperDuckDBWriter$", "-test.v")
	cmd.Env = append(os.Environ(), "DUCKDB_FENCE_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	defer kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "paused" {
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}

	c, err := component.Construct(NewSaveToDuckDB, map[string]any{"db_path": path, "table_name": "fenced"},
		component.Env{Pipeline: "fenced", Name: "SaveToDuckDB"})
	if err != nil {
		t.Fatal(err)
	}
	b := c.(*DuckDB)
	err = b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("a second writer opened the file the stale writer holds: %v, want a lock error", err)
	}
	_ = b.Close(context.Background())

	kill() // the stale process dies (or is killed by its replacement's operator)
	db := openDuck(t, path)
	var n, maxSeq int64
	if err := db.QueryRow(`SELECT count(*), max(ledger_sequence) FROM fenced`).Scan(&n, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != 6 || maxSeq != 3 {
		t.Fatalf("after the stale writer died: %d rows up to ledger %d, want its 6 committed rows up to 3", n, maxSeq)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b = newTestDuckDB(t, path, "fenced", map[string]any{"table_name": "fenced"})
	if got, ok, err := b.Position(context.Background()); err != nil || !ok || got != 3 {
		t.Fatalf("replacement resumes after %d (%v, %v), want the stale writer's last commit 3", got, ok, err)
	}
	consumertest.ConsumeRange(t, b, 4, 6, 2)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := openDuck(t, path).QueryRow(`SELECT count(*), max(ledger_sequence) FROM fenced`).Scan(&n, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != 10 || maxSeq != 6 { // 2 rows a ledger, none in ledger 5
		t.Fatalf("%d rows up to ledger %d, want 10 up to 6", n, maxSeq)
	}
}
