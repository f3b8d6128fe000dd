package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/support/datastore"

	"github.com/withobsrvr/cdpd/test/fixture"
)

// Sizes of the suite; each can be overridden in the environment (CDPD_BENCH_<NAME>) to run a
// quicker or a longer suite.
var (
	// benchLedgers is the number of consecutive ledgers of the shared fixture datastore that
	// the throughput benchmarks stream (58752000 onwards).
	benchLedgers = envInt("CDPD_BENCH_LEDGERS", 2000)
	// benchReps is the number of A/B repetitions of the cheap comparisons.
	benchReps = envInt("CDPD_BENCH_REPS", 4)
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// workDir is the suite's temporary directory, created on first use (so `go test` without
// -bench does no work) and removed by TestMain.
var work struct {
	once sync.Once
	dir  string
	err  error
}

func workDir(b testing.TB) string {
	b.Helper()
	work.once.Do(func() { work.dir, work.err = os.MkdirTemp("", "cdpd-bench-") })
	if work.err != nil {
		b.Fatalf("creating the benchmark work directory: %v", work.err)
	}
	return work.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if work.dir != "" {
		_ = os.RemoveAll(work.dir)
	}
	os.Exit(code)
}

// shared is the fixture datastore of benchLedgers ledgers, built once per run.
var shared struct {
	once  sync.Once
	ds    *fixture.Datastore
	err   error
	built time.Duration
}

// sharedDatastore returns the shared fixture datastore (built on first use) and the range of
// benchLedgers consecutive ledgers the benchmarks stream.
func sharedDatastore(b testing.TB) (*fixture.Datastore, ledgerbackend.Range) {
	b.Helper()
	dir := filepath.Join(workDir(b), "datastore")
	shared.once.Do(func() {
		t0 := time.Now()
		shared.ds, shared.err = fixture.Build(dir, fixture.Options{Count: benchLedgers})
		shared.built = time.Since(t0)
		if shared.err == nil {
			Detail("fixture", "built %d ledgers (%d..%d) in %s; machine: %d cores, load average %s", benchLedgers, fixture.Ledger58752000,
				fixture.Ledger58752000+uint32(benchLedgers)-1, shared.built.Round(time.Millisecond), runtime.NumCPU(), loadAvg())
		}
	})
	if shared.err != nil {
		b.Fatalf("building the fixture datastore: %v", shared.err)
	}
	return shared.ds, ledgerbackend.BoundedRange(fixture.Ledger58752000, fixture.Ledger58752000+uint32(benchLedgers)-1)
}

// The buffered storage settings the FS source uses for files of one ledger (host/source
// defaults: buffer 100 files, 10 workers, 5 retries, 1 s wait); the bare loops use the same.
var bareBackendConfig = ledgerbackend.BufferedStorageBackendConfig{
	BufferSize: 100, NumWorkers: 10, RetryLimit: 5, RetryWait: time.Second,
}

func dataStoreConfig(ds *fixture.Datastore) datastore.DataStoreConfig {
	return datastore.DataStoreConfig{
		Type:              "Filesystem",
		Params:            map[string]string{"destination_path": ds.Dir},
		NetworkPassphrase: network.PublicNetworkPassphrase,
		Schema:            datastore.DataStoreSchema{LedgersPerFile: ds.LedgersPerFile, FilesPerPartition: ds.FilesPerPartition},
	}
}

func ctxFor(b testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b.Cleanup(cancel)
	return ctx
}

func must(b testing.TB, err error, what string, args ...any) {
	b.Helper()
	if err != nil {
		b.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// loadAvg is the 1, 5 and 15 minute load averages (/proc/loadavg): other work on the machine
// during a run, which the interleaved repetitions spread over both sides of each ratio.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
