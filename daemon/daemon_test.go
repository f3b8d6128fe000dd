package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The SDK's RPCLedgerBackend never closes its jrpc2 client (host/source's TestMain):
		// one parked goroutine per run of an RPC source (TestRuntimeErrorsNeverLeakSecrets).
		goleak.IgnoreAnyFunction("github.com/creachadair/jrpc2.(*Client).accept"))
}

func pipelineYAML(name, dsDir string, start, end uint32) string {
	return fmt.Sprintf(`pipeline:
  name: %s
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: %q, network: pubnet, start_ledger: %d, end_ledger: %d}
  processors:
    - type: LatestLedger
      config: {}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, dsDir, start, end)
}

// runDaemon starts Run in-process and returns its base URL and a stop function that
// returns Run's error.
func runDaemon(t *testing.T, cfg Config) (string, func() error) {
	t.Helper()
	var logs bytes.Buffer
	return runDaemonLogs(t, cfg, &logs)
}

// runDaemonLogs is runDaemon writing the daemon's log into logs (read it after stop).
func runDaemonLogs(t *testing.T, cfg Config, logs *bytes.Buffer) (string, func() error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0") // held from here on: no other test can take it
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr = lis.Addr().String()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	lw := &syncWriter{w: logs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, cfg, slog.New(slog.NewTextHandler(lw, nil)), lis) }()
	t.Cleanup(func() {
		if t.Failed() {
			lw.mu.Lock()
			t.Logf("cdpd log:\n%s", logs.String())
			lw.mu.Unlock()
		}
	})
	base := "http://" + cfg.HTTPAddr
	testutil.Eventually(t, 30*time.Second, "ready", func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	return base, func() error { cancel(); return <-done }
}

// syncWriter serialises writes of concurrent loggers into one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func statusOf(t *testing.T, base, name string) PipelineStatus {
	t.Helper()
	code, body := get(base + "/api/v1/pipelines/" + name)
	if code != 200 {
		t.Fatalf("GET pipeline %s: %d %s", name, code, body)
	}
	var s PipelineStatus
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func metricValue(t *testing.T, base, name string) string {
	t.Helper()
	_, body := get(base + "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadValidInvalidValid: a good config, then a broken edit (the old version keeps running
// and the failure is reported), then a good edit (applied).
func TestReloadValidInvalidValid(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	file := filepath.Join(conf, "p.yaml")
	writeAtomic(t, file, pipelineYAML("p", ds.Dir, ds.First, ds.First+1))
	base, stop := runDaemon(t, Config{ConfigDir: conf})

	s1 := statusOf(t, base, "p")
	if s1.Generation != 1 || s1.File != file {
		t.Fatalf("first version: %+v", s1)
	}
	if v := metricValue(t, base, "cdpd_config_last_reload_successful"); v != "1" {
		t.Errorf("last reload successful = %q after a good start", v)
	}

	writeAtomic(t, file, strings.Replace(pipelineYAML("p", ds.Dir, ds.First, ds.First+1), "LatestLedger", "NoSuchProcessor", 1))
	testutil.Eventually(t, 10*time.Second, "broken edit reported", func() bool { return statusOf(t, base, "p").ConfigError != "" })
	s2 := statusOf(t, base, "p")
	if s2.Generation != 1 || s2.ConfigHash != s1.ConfigHash {
		t.Errorf("a broken edit replaced the running version: %+v", s2)
	}
	for _, want := range []string{"p.yaml", "pipeline p", "NoSuchProcessor"} {
		if !strings.Contains(s2.ConfigError, want) {
			t.Errorf("config error %q does not name %q", s2.ConfigError, want)
		}
	}
	testutil.Eventually(t, 5*time.Second, "reload failure exported", func() bool { return metricValue(t, base, "cdpd_config_last_reload_successful") == "0" })

	writeAtomic(t, file, pipelineYAML("p", ds.Dir, ds.First, ds.First+2))
	testutil.Eventually(t, 10*time.Second, "good edit applied", func() bool { return statusOf(t, base, "p").Generation == 2 })
	s3 := statusOf(t, base, "p")
	if s3.ConfigError != "" || s3.ConfigHash == s1.ConfigHash {
		t.Errorf("after the good edit: %+v", s3)
	}
	testutil.Eventually(t, 5*time.Second, "reload success exported", func() bool { return metricValue(t, base, "cdpd_config_last_reload_successful") == "1" })

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
}

func TestValidateCommand(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, bad := t.TempDir(), t.TempDir()
	writeAtomic(t, filepath.Join(good, "a.yaml"), pipelineYAML("a", ds.Dir, ds.First, ds.First))
	writeAtomic(t, filepath.Join(bad, "a.yaml"), pipelineYAML("a", ds.Dir, ds.First, ds.First))
	writeAtomic(t, filepath.Join(bad, "b.yaml"), "pipeline:\n  name: b\n  source: {type: Nope, config: {}}\n  consumers: [{type: StdoutConsumer, config: {}}]\n")

	var out, errOut bytes.Buffer
	if code := Main([]string{"validate", good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok: 1 pipeline(s): a") {
		t.Errorf("validate good: code %d, out %q, err %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"validate", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "b.yaml:3") || !strings.Contains(errOut.String(), "Nope") {
		t.Errorf("validate bad: code %d, err %q", code, errOut.String())
	}
	// The example configs that `make run` uses are valid as shipped.
	out.Reset()
	if code := Main([]string{"validate", filepath.Join("..", "configs")}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok: 3 pipeline(s)") {
		t.Errorf("validate configs/: code %d, out %q, err %q", code, out.String(), errOut.String())
	}
	if code := Main([]string{"validate", filepath.Join(bad, "missing")}, &out, &errOut); code != 1 {
		t.Errorf("validate of a missing dir exited %d", code)
	}
}

// TestServiceIDConflict: two pipeline names that map to one service id ("Contract_Events" and
// "contract-events" are both cdp-contract-events) both run, but only the first is registered;
// the other reports the conflict.
func TestServiceIDConflict(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	writeAtomic(t, filepath.Join(conf, "a.yaml"), pipelineYAML("contract-events", ds.Dir, ds.First, ds.First+1))
	writeAtomic(t, filepath.Join(conf, "b.yaml"), pipelineYAML("Contract_Events", ds.Dir, ds.First, ds.First+1))
	base, stop := runDaemon(t, Config{ConfigDir: conf})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var conflicts []string
	for _, name := range []string{"contract-events", "Contract_Events"} {
		s := statusOf(t, base, name)
		if s.ServiceID != "cdp-contract-events" {
			t.Errorf("%s: service id %q", name, s.ServiceID)
		}
		if strings.Contains(s.ConfigError, "service id cdp-contract-events is already used by pipeline") {
			conflicts = append(conflicts, name)
		}
	}
	if len(conflicts) != 1 {
		t.Errorf("pipelines reporting the service id conflict: %v, want exactly one", conflicts)
	}
}

// Go's runtime profiles are served only with --pprof.
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		base, stop := runDaemon(t, Config{ConfigDir: t.TempDir(), Pprof: on})
		code, body := get(base + "/debug/pprof/goroutine?debug=1")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		served := code == http.StatusOK && strings.Contains(body, "goroutine profile")
		if served != on {
			t.Errorf("--pprof=%t: GET /debug/pprof/goroutine: %d %.80q", on, code, body)
		}
	}
}
