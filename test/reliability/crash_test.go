package reliability

// Crash consistency (issue 9, part 3; DuckDB: issue 16): cdpd is killed with SIGKILL at random
// moments while two bounded pipelines write a range of ledgers to PostgreSQL, Parquet and
// DuckDB (when built with cgo); after every restart the PostgreSQL and DuckDB tables hold a
// gap-free prefix of the range whose cursor agrees with the data, and once the range is
// complete every sink holds every ledger exactly once, checked by SQL and by reading every
// Parquet file back. The pipelines read one datastore through the daemon's shared readers
// (issue 19: share: true, the default, written out); each run checks from /metrics that no
// pipeline read on a stream of its own and the clean run that the reading was shared.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/raw"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/pgtest"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// crashLedgers is the size of the range every crash run writes.
const crashLedgers = 60

// crashPlan sizes a crash test: runs × killsPerRun SIGKILLs in all, each run on fresh sinks.
type crashPlan struct {
	runs, killsPerRun int
}

// TestCrashConsistency is the `make test` variant: 3 runs × 3 kills = 9 SIGKILLs at seeded
// random moments (the soak variant, TestSoakCrashConsistency, does 7 × 3 = 21).
func TestCrashConsistency(t *testing.T) {
	runCrash(t, crashPlan{runs: 3, killsPerRun: 3})
}

// crashEnv is what every run of a crash test shares.
type crashEnv struct {
	ds   *fixture.Datastore
	pg   *pgtest.Server
	rng  *rand.Rand
	want map[string]map[uint32]int // record kind -> ledger -> rows the processor emits
	end  uint32
}

func runCrash(t *testing.T, plan crashPlan) {
	env := newCrashEnv(t)

	// Run 0: no crash. It checks the sinks' plain behaviour and measures how long a clean run
	// of the range takes, which bounds the random kill delays.
	start := time.Now()
	env.run(t, 0, nil)
	clean := time.Since(start)
	t.Logf("clean run of %d ledgers: %s (start to completion)", crashLedgers, clean.Round(time.Millisecond))

	kills := 0
	for r := 1; r <= plan.runs; r++ {
		moments := randomMoments(env.rng, plan.killsPerRun, clean, "crash-ledgers", "crash-events")
		env.run(t, r, moments)
		kills += len(moments)
	}
	t.Logf("%d SIGKILLs in %d runs; every run ended with every ledger exactly once in both sinks", kills, plan.runs)
}

// newCrashEnv starts PostgreSQL, builds the datastore of the range and computes the rows the
// sinks must hold.
func newCrashEnv(t *testing.T) *crashEnv {
	t.Helper()
	pg := pgtest.Start(t)
	ds := newDatastore(t, crashLedgers)
	env := &crashEnv{ds: ds, pg: pg, rng: crashRNG(t),
		end: fixture.Ledger58752000 + crashLedgers - 1}
	env.want = expectedRows(t, ds, fixture.Ledger58752000, env.end)
	t.Logf("expected rows per ledger: latest_ledger 1, contract_events %d (ledgers %d..%d)",
		env.want["contract_events"][fixture.Ledger58752000], fixture.Ledger58752000, env.end)
	return env
}

// crashRNG is the seeded source of kill moments: the seed is CDPD_CRASH_SEED or the clock,
// logged so that a failing run can be repeated.
func crashRNG(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CDPD_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CDPD_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("crash seed %d (rerun with CDPD_CRASH_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// randomMoments draws n kill moments: half by time, half by the progress of one of pipelines.
func randomMoments(rng *rand.Rand, n int, clean time.Duration, pipelines ...string) []killMoment {
	moments := make([]killMoment, n)
	for i := range moments {
		if rng.IntN(2) == 0 {
			// By time, uniform over [0, clean run]: these land in start-up (config load,
			// sink Start, Parquet repair, resume) as often as in the writing.
			moments[i].delay = time.Duration(rng.Int64N(int64(clean)))
		} else {
			// By progress: once a pipeline reports a random ledger of the range, plus up to
			// 50 ms, so that kills land inside the writing whatever its speed.
			moments[i].pipeline = pipelines[rng.IntN(len(pipelines))]
			moments[i].ledger = fixture.Ledger58752000 + uint32(rng.IntN(crashLedgers))
			moments[i].delay = time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
		}
	}
	return moments
}

// killMoment is when one SIGKILL lands: delay after the process started or, when pipeline is
// set, delay after that pipeline reported ledger (or a later one) in the API.
type killMoment struct {
	pipeline string
	ledger   uint32
	delay    time.Duration
}

func (m killMoment) String() string {
	if m.pipeline == "" {
		return "after " + m.delay.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%s after %s reached %d", m.delay.Round(time.Millisecond), m.pipeline, m.ledger)
}

// run writes the range into fresh sinks, killing cdpd at each of moments and restarting it,
// then lets it complete, stops it with SIGTERM and checks the sinks.
func (e *crashEnv) run(t *testing.T, n int, moments []killMoment) {
	t.Helper()
	conf, state, out, dsn := e.prepare(t, fmt.Sprintf("crash_run_%d", n))

	for i, m := range moments {
		d := startDaemon(t, DaemonOptions{ConfDir: conf, StateDir: state, NoWaitReady: true})
		if m.pipeline != "" {
			waitLedger(t, d, m.pipeline, m.ledger)
		}
		time.Sleep(m.delay)
		d.Kill()
		resumed := resumePoints(d.Output())
		pl, pe := e.checkPGPrefix(t, dsn)
		dl, de := e.checkDuckPrefix(t, out)
		t.Logf("run %d kill %d (%s; resumed at %s): cursors at %d (latest_ledger) %d (contract_events) in PostgreSQL, %d %d in DuckDB, data a gap-free prefix",
			n, i+1, m, resumed, pl, pe, dl, de)
	}
	e.complete(t, fmt.Sprintf("run %d", n), DaemonOptions{ConfDir: conf, StateDir: state}, n == 0, dsn, out)
}

// prepare makes the directories of a run (config, state, sink output), a fresh database db
// and the crash config writing to every sink.
func (e *crashEnv) prepare(t *testing.T, db string) (conf, state, out, dsn string) {
	t.Helper()
	root := t.TempDir()
	conf, state, out = filepath.Join(root, "conf"), filepath.Join(root, "state"), filepath.Join(root, "out")
	for _, d := range []string{conf, state, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dsn = e.createDB(t, db)
	testproc.WriteFile(t, filepath.Join(conf, "crash.yaml"), crashYAML(e.ds.Dir, e.end, dsn, out))
	return conf, state, out, dsn
}

// complete starts cdpd on a crashed run's directories, lets both crash pipelines complete,
// stops it with SIGTERM and checks that every sink holds every ledger of the range exactly once
// (fromStart: see completeDaemon).
func (e *crashEnv) complete(t *testing.T, what string, o DaemonOptions, fromStart bool, dsn, out string) {
	t.Helper()
	completeDaemon(t, what, o, fromStart)
	e.checkPGComplete(t, dsn)
	e.checkDuckComplete(t, out)
	for kind, dir := range map[string]string{"latest_ledger": filepath.Join(out, "ledgers"), "contract_events": filepath.Join(out, "events")} {
		files := e.checkParquet(t, dir, kind)
		t.Logf("%s: %s: %d Parquet files hold every ledger exactly once", what, kind, files)
	}
}

// completeRun starts cdpd once more on a run's directories (completeDaemon).
func completeRun(t *testing.T, n int, conf, state string, fromStart bool) {
	t.Helper()
	completeDaemon(t, fmt.Sprintf("run %d", n), DaemonOptions{ConfDir: conf, StateDir: state}, fromStart)
}

// completeDaemon starts cdpd with o, waits until both crash pipelines completed and stops it
// with SIGTERM. Before the stop it checks that the pipelines read through shared readers
// only (a reader's metrics stay while it lingers) and, when fromStart (both pipelines start at
// the first ledger together), that they shared the reading: fewer objects read than the two
// pipelines' ledgers.
func completeDaemon(t *testing.T, what string, o DaemonOptions, fromStart bool) {
	t.Helper()
	d := startDaemon(t, o)
	testproc.Eventually(t, 3*time.Minute, what+": both pipelines complete", func() (bool, string) {
		if d.Exited() {
			t.Fatalf("cdpd exited: %v", d.Err())
		}
		ps := d.Pipelines(t)
		for _, name := range []string{"crash-ledgers", "crash-events"} {
			if ps[name].Status != "completed" {
				return false, fmt.Sprintf("%s: %s at %d (%s)", name, ps[name].Status, ps[name].CurrentLedger, ps[name].LastError)
			}
		}
		return true, ""
	})
	body := d.Metrics(t)
	own, shared := metricSum(body, "cdp_pipeline_source_objects_read_total"), metricSum(body, "cdpd_reader_objects_read_total")
	if own != 0 {
		t.Errorf("%s: %v objects read on the pipelines' own streams, want every one through a shared reader", what, own)
	}
	if fromStart && (shared == 0 || shared >= 2*crashLedgers) {
		t.Errorf("%s: the shared readers read %v objects for two pipelines of %d ledgers from the same start: not shared", what, shared, crashLedgers)
	}
	t.Logf("%s: completing cdpd read %v objects through shared readers (%d ledgers, 2 pipelines)", what, shared, crashLedgers)
	if code, err := d.Stop(60 * time.Second); err != nil || code != 0 {
		t.Fatalf("%s: cdpd after SIGTERM: exit %d, %v", what, code, err)
	}
}

// resumePoints lists the from_ledger of every "pipeline running" log line of a cdpd output.
func resumePoints(out string) string {
	var pts []string
	for _, line := range strings.Split(out, "\n") {
		var l struct {
			Msg      string `json:"msg"`
			Pipeline string `json:"pipeline"`
			From     uint32 `json:"from_ledger"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "pipeline running" {
			pts = append(pts, fmt.Sprintf("%s=+%d", strings.TrimPrefix(l.Pipeline, "crash-"), l.From-fixture.Ledger58752000))
		}
	}
	sort.Strings(pts)
	return strings.Join(pts, " ")
}

// waitLedger polls the API (every 5 ms) until pipeline reports ledger or a later one, or it
// completed.
func waitLedger(t *testing.T, d *daemonProc, pipeline string, ledger uint32) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if d.Exited() {
			t.Fatalf("cdpd exited before the kill: %v", d.Err())
		}
		resp, err := c.Get(d.HTTP + "/api/v1/pipelines/" + pipeline)
		if err == nil {
			var p pipelineStatus
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if err == nil && (p.CurrentLedger >= ledger || p.Status == "completed") {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not reach ledger %d within 2 minutes", pipeline, ledger)
}

// crashYAML is the crash config: two bounded pipelines, each writing to both sinks, so that a
// restart resumes after the lowest position of two consumers of different kinds.
func crashYAML(dsPath string, end uint32, dsn, out string) string {
	var b strings.Builder
	b.WriteString("pipelines:\n")
	for _, p := range []struct {
		name, proc, table, dir string
		buffer                 int
	}{
		// buffer_size: a Parquet file every 7 ledgers of summaries, every few ledgers of events.
		{"crash-ledgers", "LatestLedger", "crash_ledgers", "ledgers", 7},
		{"crash-events", "ContractEvent", "crash_events", "events", 500},
	} {
		fmt.Fprintf(&b, `  %s:
    source:
      type: FSBufferedStorageSourceAdapter
      config: {path: %q, network: pubnet, start_ledger: %d, end_ledger: %d, share: true}
    processors:
      - {type: %s, config: {}}
    consumers:
      - {type: SaveToPostgreSQL, config: {connection_string: %q, table_name: %s, batch_size: 50}}
      - {type: SaveToParquet, config: {local_path: %q, buffer_size: %d, partition_by: ledger_range, ledgers_per_file: 25}}
`, p.name, dsPath, fixture.Ledger58752000, end, p.proc, dsn, p.table, filepath.Join(out, p.dir), p.buffer)
		if duckEnabled {
			fmt.Fprintf(&b, "      - {type: SaveToDuckDB, config: {db_path: %q, table_name: %s, batch_size: 50}}\n", duckPath(out, p.table), p.table)
		}
	}
	return b.String()
}

// expectedRows runs the processors in this process over every ledger of the range: the rows
// per ledger that the sinks must hold.
func expectedRows(t *testing.T, ds *fixture.Datastore, from, to uint32) map[string]map[uint32]int {
	t.Helper()
	env := component.Env{Pipeline: "expected", Network: "pubnet", Now: time.Now}
	ll, err := component.Construct(raw.NewLatestLedger, map[string]any{}, env)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := component.Construct(contract.NewContractEvent, map[string]any{}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[uint32]int{"latest_ledger": {}, "contract_events": {}}
	for seq := from; seq <= to; seq++ {
		raw, err := ds.RawLedger(seq)
		if err != nil {
			t.Fatal(err)
		}
		l, err := ledger.New(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		for kind, p := range map[string]component.Processor{"latest_ledger": ll, "contract_events": ce} {
			recs, err := p.Process(context.Background(), l, nil)
			if err != nil {
				t.Fatalf("%s on ledger %d: %v", kind, seq, err)
			}
			want[kind][seq] = len(recs)
		}
	}
	if want["contract_events"][from] == 0 {
		t.Fatalf("ledger %d has no contract events: the crash test would not test the event sink", from)
	}
	return want
}

// createDB creates a database on the test server and returns its DSN.
func (e *crashEnv) createDB(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.pg.DSN())
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	u, err := url.Parse(e.pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// pgLedgerCounts returns rows per ledger of a table and whether any ledger has a duplicated
// record identity (beyond the natural_key primary key, which PostgreSQL enforces itself).
func pgLedgerCounts(t *testing.T, conn *pgx.Conn, query string) map[uint32]int {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		var missing bool
		if strings.Contains(err.Error(), "does not exist") {
			missing = true
		}
		if missing {
			return map[uint32]int{} // not created yet: the pipeline was killed before its first commit
		}
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	out := map[uint32]int{}
	for rows.Next() {
		var seq int64
		var n, distinct int
		if err := rows.Scan(&seq, &n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != distinct {
			t.Errorf("%s: ledger %d has %d rows but %d distinct identities (duplicates)", query, seq, n, distinct)
		}
		out[uint32(seq)] = n
	}
	if err := rows.Err(); err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return map[uint32]int{}
		}
		t.Fatal(err)
	}
	return out
}

const (
	pgLedgersQuery = "SELECT sequence, count(*), count(DISTINCT natural_key) FROM crash_ledgers GROUP BY 1"
	pgEventsQuery  = "SELECT ledger_sequence, count(*), count(DISTINCT (transaction_hash, event_index)) FROM crash_events GROUP BY 1"
)

func (e *crashEnv) connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	return conn
}

// checkPGPrefix checks the PostgreSQL tables after a SIGKILL: each holds a gap-free prefix of
// the range with exactly the expected rows per ledger, covering at least its cursor. It
// returns both cursors.
func (e *crashEnv) checkPGPrefix(t *testing.T, dsn string) (lastLedgers, lastEvents uint32) {
	t.Helper()
	conn := e.connect(t, dsn)
	defer conn.Close(context.Background())
	cursors := map[string]uint32{}
	rows, err := conn.Query(context.Background(), "SELECT pipeline, last_ledger FROM cdpd_cursors")
	if err == nil {
		for rows.Next() {
			var p string
			var l int64
			if err := rows.Scan(&p, &l); err != nil {
				t.Fatal(err)
			}
			cursors[p] = uint32(l)
		}
		rows.Close()
	}
	if err != nil || rows.Err() != nil {
		if err == nil {
			err = rows.Err()
		}
		if !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("reading cdpd_cursors: %v", err)
		}
	}
	lastLedgers = e.checkPrefix(t, "PostgreSQL latest_ledger", pgLedgerCounts(t, conn, pgLedgersQuery), e.want["latest_ledger"], cursors["crash-ledgers"])
	lastEvents = e.checkPrefix(t, "PostgreSQL contract_events", pgLedgerCounts(t, conn, pgEventsQuery), e.want["contract_events"], cursors["crash-events"])
	return lastLedgers, lastEvents
}

// checkPrefix checks the invariant of a transactional sink after a SIGKILL: the ledgers present
// (with the ledgers that have no rows) form a gap-free prefix of the range, each with exactly
// its rows; the cursor says c and every ledger up to c is present. Ledgers after c may be
// present too: a resume after the lowest position of all consumers (the Parquet sink's
// checkpoint may lag) replays ledgers the table already holds, rewriting identical rows. It
// returns c.
func (e *crashEnv) checkPrefix(t *testing.T, what string, got, want map[uint32]int, c uint32) uint32 {
	t.Helper()
	var top uint32 // the last ledger present
	for seq := range got {
		top = max(top, seq)
		if seq < fixture.Ledger58752000 || seq > e.end {
			t.Errorf("%s: ledger %d is outside the range", what, seq)
		}
	}
	for seq := fixture.Ledger58752000; seq <= max(top, c) && seq <= e.end; seq++ {
		if got[seq] != want[seq] {
			t.Errorf("%s: ledger %d has %d rows, want %d (cursor at %d, data up to %d): a gap or a duplicate",
				what, seq, got[seq], want[seq], c, top)
		}
	}
	return c
}

// checkPGComplete checks that the tables hold every ledger of the range exactly once.
func (e *crashEnv) checkPGComplete(t *testing.T, dsn string) {
	t.Helper()
	conn := e.connect(t, dsn)
	defer conn.Close(context.Background())
	for kind, q := range map[string]string{"latest_ledger": pgLedgersQuery, "contract_events": pgEventsQuery} {
		got := pgLedgerCounts(t, conn, q)
		compareCounts(t, "PostgreSQL "+kind, got, e.want[kind])
	}
}

func compareCounts(t *testing.T, what string, got, want map[uint32]int) {
	t.Helper()
	var bad []string
	for seq, n := range want {
		if got[seq] != n {
			bad = append(bad, fmt.Sprintf("ledger %d: %d rows, want %d", seq, got[seq], n))
		}
	}
	for seq, n := range got {
		if _, ok := want[seq]; !ok {
			bad = append(bad, fmt.Sprintf("ledger %d (outside the range): %d rows", seq, n))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("%s: %d ledgers wrong: %s", what, len(bad), strings.Join(bad[:min(len(bad), 10)], "; "))
	}
}

// checkParquet reads back every Parquet file under dir (record kind kind) with parquet-go and
// checks that the files hold every ledger of the range exactly once: rows per ledger as
// expected, no duplicate record identity, no temporary file left. It returns the file count.
func (e *crashEnv) checkParquet(t *testing.T, dir, kind string) int {
	t.Helper()
	got := map[uint32]int{}
	seen := map[string]string{} // record identity -> file
	files := 0
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".parquet") {
			t.Errorf("unexpected file after a clean stop (a temporary left behind?): %s", path)
			return nil
		}
		files++
		return readParquetIdentities(path, kind, func(seq uint32, id string) {
			got[seq]++
			if prev, dup := seen[id]; dup {
				t.Errorf("Parquet %s: record %s in %s and %s", kind, id, prev, filepath.Base(path))
			}
			seen[id] = filepath.Base(path)
		})
	})
	if err != nil {
		t.Fatalf("reading Parquet files of %s: %v", dir, err)
	}
	compareCounts(t, "Parquet "+kind, got, e.want[kind])
	return files
}

// readParquetIdentities calls fn with the ledger and the identity (the natural key's parts) of
// every row of one file.
func readParquetIdentities(path, kind string, fn func(seq uint32, id string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	col := func(name string) (int, error) {
		leaf, ok := pf.Schema().Lookup(name)
		if !ok {
			return 0, fmt.Errorf("%s: no column %s", path, name)
		}
		return leaf.ColumnIndex, nil
	}
	var seqCol, hashCol, idxCol int
	switch kind {
	case "latest_ledger":
		seqCol, err = col("sequence")
	case "contract_events":
		var e1, e2 error
		seqCol, err = col("ledger_sequence")
		hashCol, e1 = col("transaction_hash")
		idxCol, e2 = col("event_index")
		err = errors.Join(err, e1, e2)
	}
	if err != nil {
		return err
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	rows := make([]parquet.Row, 128)
	for total := int64(0); total < pf.NumRows(); {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			var seq uint32
			var hash string
			var idx int64
			row.Range(func(ci int, vals []parquet.Value) bool {
				switch ci {
				case seqCol:
					seq = uint32(vals[0].Int32())
				case hashCol:
					hash = vals[0].String()
				case idxCol:
					idx = vals[0].Int64()
				}
				return true
			})
			id := strconv.FormatUint(uint64(seq), 10)
			if kind == "contract_events" {
				id += ":" + hash + ":" + strconv.FormatInt(idx, 10)
			}
			fn(seq, id)
		}
		total += int64(n)
		if err != nil {
			if total == pf.NumRows() {
				break
			}
			return fmt.Errorf("%s: read %d of %d rows: %w", path, total, pf.NumRows(), err)
		}
	}
	return nil
}
