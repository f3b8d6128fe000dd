package reliability

// Crash consistency of the Redis sinks (issue 16): cdpd is killed with SIGKILL at random
// moments while two bounded pipelines write a range of ledgers to SaveToRedis (and the ledger
// pipeline also to SaveLatestLedgerToRedis), each beside a SaveToParquet whose lagging
// checkpoint makes every restart replay ledgers Redis already holds. After every kill each
// Redis consumer holds exactly the ledgers up to its cursor (a ledger's keys and its cursor
// land in one transaction: never a ledger past the cursor, never a gap before it) and latest
// is the cursor's ledger; once the range is complete every ledger is there exactly once.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/redistest"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// TestCrashConsistencyRedis: 2 runs × 3 kills = 6 SIGKILLs at seeded random moments.
func TestCrashConsistencyRedis(t *testing.T) {
	rs := redistest.Start(t)
	ds := newDatastore(t, crashLedgers)
	e := &redisCrash{crashEnv: crashEnv{ds: ds, rng: crashRNG(t), end: fixture.Ledger58752000 + crashLedgers - 1}, rs: rs}
	e.want = expectedRows(t, ds, fixture.Ledger58752000, e.end)
	e.rc = redis.NewClient(&redis.Options{Addr: rs.Addr(), DisableIdentity: true})
	defer e.rc.Close()

	start := time.Now()
	e.run(t, 0, nil)
	clean := time.Since(start)
	t.Logf("clean run of %d ledgers: %s", crashLedgers, clean.Round(time.Millisecond))
	kills := 0
	for r := 1; r <= 2; r++ {
		moments := randomMoments(e.rng, 3, clean, "crash-ledgers", "crash-events")
		e.run(t, r, moments)
		kills += len(moments)
	}
	t.Logf("%d SIGKILLs; every run ended with every ledger exactly once in Redis", kills)
}

type redisCrash struct {
	crashEnv
	rs *redistest.Server
	rc *redis.Client
}

// run writes the range under the key prefix run<n>:, killing cdpd at each of moments.
func (e *redisCrash) run(t *testing.T, n int, moments []killMoment) {
	t.Helper()
	root := t.TempDir()
	conf, state, out := filepath.Join(root, "conf"), filepath.Join(root, "state"), filepath.Join(root, "out")
	for _, d := range []string{conf, state, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prefix := fmt.Sprintf("run%d:", n)
	testproc.WriteFile(t, filepath.Join(conf, "crash.yaml"), redisCrashYAML(e.ds.Dir, e.end, e.rs.Addr(), prefix, out))
	for i, m := range moments {
		d := startDaemon(t, DaemonOptions{ConfDir: conf, StateDir: state, NoWaitReady: true})
		if m.pipeline != "" {
			waitLedger(t, d, m.pipeline, m.ledger)
		}
		time.Sleep(m.delay)
		d.Kill()
		cl, ce := e.check(t, prefix, false)
		t.Logf("run %d kill %d (%s; resumed at %s): Redis cursors at %d (latest_ledger) %d (contract_events), data exactly up to them",
			n, i+1, m, resumePoints(d.Output()), cl, ce)
	}
	completeRun(t, n, conf, state)
	e.check(t, prefix, true)
}

// redisCrashYAML: the crash pipelines writing to Redis under prefix, each with a Parquet sink
// whose checkpoint lags (buffer_size), so restarts replay ledgers the Redis cursor covers.
func redisCrashYAML(dsPath string, end uint32, addr, prefix, out string) string {
	var b strings.Builder
	b.WriteString("pipelines:\n")
	for _, p := range []struct{ name, proc, extra, dir string }{
		{"crash-ledgers", "LatestLedger", fmt.Sprintf("      - {type: SaveLatestLedgerToRedis, config: {redis_address: %q, key_prefix: %q, cursor_key: %q}}\n",
			addr, prefix+"ledger:", prefix+"cursors"), "ledgers"},
		{"crash-events", "ContractEvent", "", "events"},
	} {
		fmt.Fprintf(&b, `  %s:
    source:
      type: FSBufferedStorageSourceAdapter
      config: {path: %q, network: pubnet, start_ledger: %d, end_ledger: %d}
    processors:
      - {type: %s, config: {}}
    consumers:
      - {type: SaveToRedis, config: {redis_address: %q, key_prefix: %q, cursor_key: %q}}
%s      - {type: SaveToParquet, config: {local_path: %q, buffer_size: 300, partition_by: ledger_range, ledgers_per_file: 25}}
`, p.name, dsPath, fixture.Ledger58752000, end, p.proc, addr, prefix, prefix+"cursors", p.extra, filepath.Join(out, p.dir))
	}
	return b.String()
}

// check reads every Redis consumer's cursor and data under prefix: the ledgers holding keys
// are exactly those up to the cursor that have rows, each with exactly its rows, and latest is
// the cursor's ledger. complete: the cursors are at the end of the range.
func (e *redisCrash) check(t *testing.T, prefix string, complete bool) (lastLedgers, lastEvents uint32) {
	t.Helper()
	ctx := context.Background()
	cursors, err := e.rc.HGetAll(ctx, prefix+"cursors").Result()
	if err != nil {
		t.Fatalf("reading cursors: %v", err)
	}
	cursor := func(field string) uint32 {
		v, ok := cursors[field]
		if !ok {
			return 0
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("cursor %s = %q", field, v)
		}
		return uint32(n)
	}
	for kind, pipeline := range map[string]string{"latest_ledger": "crash-ledgers", "contract_events": "crash-events"} {
		c := cursor(pipeline + "/SaveToRedis")
		if complete && c != e.end {
			t.Errorf("Redis %s: cursor at %d after completion, want %d", kind, c, e.end)
		}
		got := map[uint32]int{}
		iter := e.rc.Scan(ctx, 0, prefix+kind+":*", 1000).Iterator()
		for iter.Next(ctx) {
			// <prefix><kind>:<network>:<ledger>:...
			parts := strings.Split(strings.TrimPrefix(iter.Val(), prefix+kind+":"), ":")
			seq, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				t.Fatalf("key %s: %v", iter.Val(), err)
			}
			got[uint32(seq)]++
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[uint32]int{}
		for seq := fixture.Ledger58752000; seq <= c; seq++ {
			if e.want[kind][seq] > 0 {
				want[seq] = e.want[kind][seq]
			}
		}
		compareCounts(t, fmt.Sprintf("Redis %s (cursor %d)", kind, c), got, want)
		if kind == "latest_ledger" {
			lastLedgers = c
		} else {
			lastEvents = c
		}
	}
	lc := cursor("crash-ledgers/SaveLatestLedgerToRedis")
	latest := e.rc.HGet(ctx, prefix+"ledger:latest", "sequence").Val()
	if lc != 0 && latest != strconv.FormatUint(uint64(lc), 10) {
		t.Errorf("SaveLatestLedgerToRedis: latest is %q, its cursor %d", latest, lc)
	}
	if hist := e.rc.ZCard(ctx, prefix+"ledger:history").Val(); lc != 0 && hist != int64(lc-fixture.Ledger58752000+1) {
		t.Errorf("SaveLatestLedgerToRedis: history holds %d ledgers, its cursor says %d", hist, lc-fixture.Ledger58752000+1)
	}
	if complete && lc != e.end {
		t.Errorf("SaveLatestLedgerToRedis: cursor at %d after completion, want %d", lc, e.end)
	}
	return lastLedgers, lastEvents
}
