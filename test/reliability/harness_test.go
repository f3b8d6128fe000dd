// Package reliability is cdpd's fault-injection suite (issue 9): it builds the real binaries
// (cdpd with the `faultinject` build tag, so that the test/faults components exist, and
// flowctl), starts them on loopback ports and breaks things: the control plane, pipelines,
// their datastores, the config directory, the process itself.
//
// This file is the package's harness (TestMain and helpers) of every test file in the package;
// the process plumbing they share with test/e2e and test/docs is test/testproc. Its API is
// stable; other files only add to it:
//
//	bins.cdpd, bins.flowctl                       binaries built once (race detector on)
//	sharedDS                                      a read-only fixture datastore (20 ledgers)
//	newDatastore(t, count) *fixture.Datastore     a private datastore (for Append / removal)
//	startProc(t, name, env, bin, args...) *proc   a testproc.Proc logging 6 KiB of output on failure
//	  p.Output(), p.Pid(), p.Kill(), p.Stop(timeout) (SIGTERM), p.Exited(), p.Err()
//	startControlPlane(t, CPOptions{...}) *controlPlane
//	  cp.Addr, cp.Port, cp.List(t), cp.Registered(t), cp.History(t, id), cp.Kill(), ...
//	startDaemon(t, DaemonOptions{...}) *daemonProc
//	  d.HTTP, d.Pipelines(t), d.Pipeline(t, name), d.Get(path), d.Metrics(t), d.Errors(t)
//	flowctl(t, cpAddr, args...) (stdout string, exitCode int)
//	pipelineYAML(PipelineSpec{...}) string
//
// From testproc: FreePort, Eventually (poll every 100 ms), WriteFile (atomic: temp + rename),
// HTTPGet, TCPConnsTo, ListenAddrs, Tail.
//
// Timing: every wait is bounded; tests print what they measured (t.Logf) and assert ratios or
// generous bounds, never tight absolute times. Long variants run only with CDPD_SOAK=1.
package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// bins holds the binaries built once by TestMain.
var bins struct{ cdpd, flowctl string }

// sharedDS is a read-only fixture datastore (Count 20) shared by the tests. Tests that append
// to or remove their datastore build their own with newDatastore.
var sharedDS *fixture.Datastore

// soak reports whether the long variants run (CDPD_SOAK=1, `make soak`).
func soak() bool { return os.Getenv("CDPD_SOAK") == "1" }

func TestMain(m *testing.M) {
	testproc.Main(m, "reliability", func(dir string) error {
		// cdpd with the fault-injection components, both with the race detector.
		b, err := testproc.Build(dir, testproc.BuildOptions{Race: true, CDPDTags: []string{"faultinject"}})
		if err != nil {
			return err
		}
		bins.cdpd, bins.flowctl = b.CDPD, b.Flowctl
		if sharedDS, err = fixture.Build(filepath.Join(dir, "datastore"), fixture.Options{Count: 20}); err != nil {
			return fmt.Errorf("building the fixture datastore: %w", err)
		}
		return nil
	})
}

// newDatastore builds a private fixture datastore of count ledgers from 58752000.
func newDatastore(t testing.TB, count int) *fixture.Datastore {
	t.Helper()
	ds, err := fixture.Build(filepath.Join(t.TempDir(), "datastore"), fixture.Options{Count: count})
	if err != nil {
		t.Fatalf("building a fixture datastore: %v", err)
	}
	return ds
}

// proc is a started binary (testproc.Proc: Output, Pid, Kill, Stop, Exited, Err).
type proc = testproc.Proc

// startProc starts bin with args and env (added to the test's environment); the process is
// killed at cleanup and the last 6 KiB of its output logged when the test failed.
func startProc(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	return testproc.Cmd{Name: name, Bin: bin, Args: args, Env: env, TailBytes: 6144}.Start(t)
}

// CPOptions configure startControlPlane.
type CPOptions struct {
	Port   int    // 0 = a free port
	DBPath string // "" = --no-persistence
	// HeartbeatTTL and JanitorInterval default to 5s and 1s.
	HeartbeatTTL, JanitorInterval time.Duration
	Extra                         []string // more flags (e.g. TLS)
	Env                           []string
}

// controlPlane is a `flowctl server` process.
type controlPlane struct {
	*proc
	Addr string
	Port int
	opts CPOptions
}

func startControlPlane(t testing.TB, o CPOptions) *controlPlane {
	t.Helper()
	if o.Port == 0 {
		o.Port = testproc.FreePort(t)
	}
	if o.HeartbeatTTL == 0 {
		o.HeartbeatTTL = 5 * time.Second
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = time.Second
	}
	args := []string{"server", "--address", "127.0.0.1", "--port", strconv.Itoa(o.Port),
		"--heartbeat-ttl", o.HeartbeatTTL.String(), "--janitor-interval", o.JanitorInterval.String()}
	if o.DBPath == "" {
		args = append(args, "--no-persistence")
	} else {
		args = append(args, "--db-path", o.DBPath)
	}
	args = append(args, o.Extra...)
	p := startProc(t, "flowctl-server", o.Env, bins.flowctl, args...)
	cp := &controlPlane{proc: p, Addr: fmt.Sprintf("127.0.0.1:%d", o.Port), Port: o.Port, opts: o}
	testproc.WaitTCP(t, 30*time.Second, cp.Addr+" listening", cp.Addr)
	return cp
}

// Restart kills the server and starts a new one with the same options on the same port.
func (cp *controlPlane) Restart(t testing.TB) *controlPlane {
	t.Helper()
	cp.Kill()
	return startControlPlane(t, cp.opts)
}

// dialCP opens an insecure client connection to addr.
func dialCP(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// List returns every registered service (healthy or not) by id; nil when the server does not
// answer within 3 s.
func (cp *controlPlane) List(t testing.TB) map[string]*flowctlv1.ComponentStatusResponse {
	t.Helper()
	return listServices(t, cp.Addr)
}

func listServices(t testing.TB, addr string) map[string]*flowctlv1.ComponentStatusResponse {
	t.Helper()
	conn := dialCP(t, addr)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := flowctlv1.NewControlPlaneServiceClient(conn).ListComponents(ctx, &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if err != nil {
		return nil
	}
	out := map[string]*flowctlv1.ComponentStatusResponse{}
	for _, c := range resp.Components {
		out[c.GetComponent().GetId()] = c
	}
	return out
}

// Registered lists the ids of the registered cdp pipelines, sorted.
func (cp *controlPlane) Registered(t testing.TB) []string {
	t.Helper()
	var out []string
	for id, c := range cp.List(t) {
		if c.GetComponent().GetMetadata()["service_type"] == "cdp-pipeline" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// WaitRegistered waits until exactly the ids want are registered (timeout) and returns how
// long that took.
func (cp *controlPlane) WaitRegistered(t testing.TB, timeout time.Duration, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	w := append([]string(nil), want...)
	sort.Strings(w)
	testproc.Eventually(t, timeout, fmt.Sprintf("control plane %s lists %v", cp.Addr, w), func() (bool, string) {
		got := cp.Registered(t)
		return strings.Join(got, ",") == strings.Join(w, ","), strings.Join(got, ",")
	})
	return time.Since(start)
}

// History returns the heartbeat samples the control plane keeps for id (cdpd.v1).
func (cp *controlPlane) History(t testing.TB, id string) []*cdpdv1.HeartbeatSample {
	t.Helper()
	conn := dialCP(t, cp.Addr)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cdpdv1.NewHistoryServiceClient(conn).GetHistory(ctx, &cdpdv1.GetHistoryRequest{ServiceId: id})
	if err != nil {
		t.Fatalf("GetHistory %s: %v", id, err)
	}
	return resp.GetSamples()
}

// DaemonOptions configure startDaemon.
type DaemonOptions struct {
	ConfDir, StateDir string // StateDir "" = a temp dir
	Endpoint          string // FLOWCTL_ENDPOINT; "" = no control plane
	HeartbeatInterval time.Duration
	DrainTimeout      time.Duration // default 10s
	HTTPAddr          string        // "" = a free 127.0.0.1 port; "-" = no --http-addr flag
	Env               []string
	Args              []string // more flags
	// NoWaitReady skips waiting for /readyz.
	NoWaitReady bool
}

// daemonProc is a cdpd process.
type daemonProc struct {
	*proc
	HTTP     string // base URL, e.g. http://127.0.0.1:1234
	StateDir string
	opts     DaemonOptions
}

// DefaultHeartbeat is the heartbeat interval the suite runs cdpd with.
const DefaultHeartbeat = 500 * time.Millisecond

func startDaemon(t testing.TB, o DaemonOptions) *daemonProc {
	t.Helper()
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeat
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 10 * time.Second
	}
	args := []string{"--config-dir", o.ConfDir, "--state-dir", o.StateDir,
		"--heartbeat-interval", o.HeartbeatInterval.String(), "--log-format", "json",
		"--drain-timeout", o.DrainTimeout.String()}
	httpAddr := o.HTTPAddr
	switch httpAddr {
	case "":
		httpAddr = fmt.Sprintf("127.0.0.1:%d", testproc.FreePort(t))
		args = append(args, "--http-addr", httpAddr)
	case "-":
		httpAddr = ""
	default:
		args = append(args, "--http-addr", httpAddr)
	}
	args = append(args, o.Args...)
	var env []string
	if o.Endpoint != "" {
		env = append(env, "FLOWCTL_ENDPOINT="+o.Endpoint)
	}
	env = append(env, o.Env...)
	p := startProc(t, "cdpd", env, bins.cdpd, args...)
	d := &daemonProc{proc: p, StateDir: o.StateDir, opts: o}
	if httpAddr != "" {
		d.HTTP = "http://" + httpAddr
	}
	if !o.NoWaitReady && d.HTTP != "" {
		testproc.Eventually(t, 60*time.Second, "cdpd ready", func() (bool, string) {
			if p.Exited() {
				t.Fatalf("cdpd exited: %v\n%s", p.Err(), testproc.Tail(p.Output(), 4096))
			}
			code, body := testproc.HTTPGet(d.HTTP + "/readyz")
			return code == 200, fmt.Sprintf("%d %s", code, body)
		})
	}
	return d
}

// Get is GET d.HTTP+path.
func (d *daemonProc) Get(path string) (int, string) { return testproc.HTTPGet(d.HTTP + path) }

// pipelineStatus mirrors daemon.PipelineStatus (decoded from the API, as a client would).
type pipelineStatus struct {
	Name          string             `json:"name"`
	ServiceID     string             `json:"service_id"`
	File          string             `json:"file"`
	Status        string             `json:"status"`
	Health        string             `json:"health"`
	Generation    int64              `json:"generation"`
	ConfigHash    string             `json:"config_hash"`
	Restarts      int                `json:"restarts"`
	LastError     string             `json:"last_error"`
	ConfigError   string             `json:"config_error"`
	UptimeSeconds float64            `json:"uptime_seconds"`
	CurrentLedger uint32             `json:"current_ledger"`
	Checkpoint    uint32             `json:"checkpoint"`
	Metrics       map[string]float64 `json:"metrics"`
	HealthDetails map[string]string  `json:"health_details"`
	Registered    bool               `json:"registered"`
	AssignedShard *int               `json:"assigned_shard"`
}

// Pipelines returns GET /api/v1/pipelines by name (the test fails when it does not answer).
func (d *daemonProc) Pipelines(t testing.TB) map[string]pipelineStatus {
	t.Helper()
	code, body := d.Get("/api/v1/pipelines")
	if code != 200 {
		t.Fatalf("GET /api/v1/pipelines: %d %s", code, body)
	}
	var list []pipelineStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decoding /api/v1/pipelines: %v: %s", err, body)
	}
	out := map[string]pipelineStatus{}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

// Pipeline returns one pipeline's status (zero value and false when it is not listed).
func (d *daemonProc) Pipeline(t testing.TB, name string) (pipelineStatus, bool) {
	t.Helper()
	p, ok := d.Pipelines(t)[name]
	return p, ok
}

// Metrics is the body of GET /metrics.
func (d *daemonProc) Metrics(t testing.TB) string {
	t.Helper()
	code, body := d.Get("/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// Errors is the body of GET /api/v1/errors.
func (d *daemonProc) Errors(t testing.TB) string {
	t.Helper()
	code, body := d.Get("/api/v1/errors")
	if code != 200 {
		t.Fatalf("GET /api/v1/errors: %d", code)
	}
	return body
}

// flowctl runs the flowctl CLI against cpAddr and returns its stdout+stderr and exit code.
func flowctl(t testing.TB, cpAddr string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.flowctl, append(args, "--control-plane-addr", cpAddr)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("running flowctl %v: %v", args, err)
	}
	return string(out), 0
}

// PipelineSpec describes a pipeline file for pipelineYAML.
type PipelineSpec struct {
	Name string
	Path string // datastore dir; default sharedDS.Dir
	// Start defaults to fixture.Ledger58752000 (never start before it: the datastore also
	// holds the lone ledger 53312000). End 0 = follow the tip.
	Start, End uint32
	// Processors and Consumers are YAML list items, each `{type: X, config: {...}}` (flow
	// style). Defaults: [LatestLedger] and [FaultyConsumer{mode: pass}] (a null sink: a
	// StdoutConsumer would flood the captured output).
	Processors, Consumers []string
	// Extra is inserted at pipeline level (e.g. "restart: always"), already indented by 2.
	Extra string
}

// pipelineYAML renders a single-pipeline file.
func pipelineYAML(s PipelineSpec) string {
	if s.Path == "" {
		s.Path = sharedDS.Dir
	}
	if s.Start == 0 {
		s.Start = fixture.Ledger58752000
	}
	if len(s.Processors) == 0 {
		s.Processors = []string{"{type: LatestLedger, config: {}}"}
	}
	if len(s.Consumers) == 0 {
		s.Consumers = []string{"{type: FaultyConsumer, config: {mode: pass}}"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline:\n  name: %s\n  source:\n    type: FSBufferedStorageSourceAdapter\n    config:\n", s.Name)
	fmt.Fprintf(&b, "      path: %q\n      network: pubnet\n      start_ledger: %d\n", s.Path, s.Start)
	if s.End != 0 {
		fmt.Fprintf(&b, "      end_ledger: %d\n", s.End)
	}
	b.WriteString("  processors:\n")
	for _, p := range s.Processors {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	b.WriteString("  consumers:\n")
	for _, c := range s.Consumers {
		fmt.Fprintf(&b, "    - %s\n", c)
	}
	if s.Extra != "" {
		b.WriteString(s.Extra)
		if !strings.HasSuffix(s.Extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// appender appends ledgers to a datastore at a steady pace (a live exporter), so that
// pipelines following the tip have work all the time. Stop it before the test ends.
type appender struct {
	dir    string
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	tip    uint32
	errors []error
}

// startAppender appends one ledger to the datastore in dir every interval until Stop (also
// called at cleanup).
func startAppender(t testing.TB, ds *fixture.Datastore, interval time.Duration) *appender {
	t.Helper()
	a := &appender{dir: ds.Dir, stop: make(chan struct{}), done: make(chan struct{}), tip: ds.Last}
	go func() {
		defer close(a.done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tk.C:
			}
			d, err := fixture.Append(a.dir, 1)
			a.mu.Lock()
			if err != nil {
				// The datastore may be gone on purpose (a test removes it); keep trying.
				if len(a.errors) < 10 {
					a.errors = append(a.errors, err)
				}
			} else {
				a.tip = d.Last
			}
			a.mu.Unlock()
		}
	}()
	t.Cleanup(a.Stop)
	return a
}

// Tip is the last ledger appended.
func (a *appender) Tip() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tip
}

// Stop stops appending and waits for the goroutine (idempotent).
func (a *appender) Stop() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}
