package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// bins holds the binaries built once by TestMain.
var bins struct{ cdpd, flowctl string }

func buildBinaries(dir string) error {
	for _, b := range []struct{ out, pkg string }{
		{filepath.Join(dir, "cdpd"), "github.com/withobsrvr/cdpd/daemon/cmd/cdpd"},
		{filepath.Join(dir, "flowctl"), "github.com/withobsrvr/cdpd/control/cmd/flowctl"},
	} {
		cmd := exec.Command("go", "build", "-race", "-o", b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	bins.cdpd, bins.flowctl = filepath.Join(dir, "cdpd"), filepath.Join(dir, "flowctl")
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a started binary whose output is kept for assertions and failure messages.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output is everything the process printed so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output (last 4 KiB) ---\n%s", name, tail(p.Output(), 4096))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits for the exit; it returns the exit code.
func (p *proc) stop(timeout time.Duration) (int, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s (last: %s)", what, timeout, last)
}

// controlPlane is a `flowctl server` process.
type controlPlane struct {
	*proc
	addr string
	port int
}

func startControlPlane(t testing.TB, port int, extra ...string) *controlPlane {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	args := append([]string{"server", "--address", "127.0.0.1", "--port", strconv.Itoa(port),
		"--no-persistence", "--heartbeat-ttl", "5s", "--janitor-interval", "1s"}, extra...)
	p := start(t, "flowctl-server", nil, bins.flowctl, args...)
	cp := &controlPlane{proc: p, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port}
	eventually(t, 20*time.Second, "control plane listening", func() (bool, string) {
		c, err := net.DialTimeout("tcp", cp.addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return cp
}

// list returns every registered service (healthy or not) by id.
func (cp *controlPlane) list(t testing.TB) map[string]*flowctlv1.ComponentStatusResponse {
	t.Helper()
	conn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
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

// daemonProc is a cdpd process.
type daemonProc struct {
	*proc
	http     string
	stateDir string
}

func startDaemon(t testing.TB, confDir, stateDir, cpAddr string, extraEnv ...string) *daemonProc {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := append([]string{"FLOWCTL_ENDPOINT=" + cpAddr}, extraEnv...)
	p := start(t, "cdpd", env, bins.cdpd, "--config-dir", confDir, "--state-dir", stateDir,
		"--http-addr", httpAddr, "--heartbeat-interval", "500ms", "--log-format", "json", "--drain-timeout", "10s")
	d := &daemonProc{proc: p, http: "http://" + httpAddr, stateDir: stateDir}
	eventually(t, 60*time.Second, "cdpd ready", func() (bool, string) {
		code, body := httpGet(d.http + "/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	return d
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pipelineStatus mirrors daemon.PipelineStatus (decoded from the API, as a client would).
type pipelineStatus struct {
	Name          string             `json:"name"`
	ServiceID     string             `json:"service_id"`
	File          string             `json:"file"`
	Status        string             `json:"status"`
	Generation    int64              `json:"generation"`
	ConfigHash    string             `json:"config_hash"`
	Restarts      int                `json:"restarts"`
	LastError     string             `json:"last_error"`
	ConfigError   string             `json:"config_error"`
	UptimeSeconds float64            `json:"uptime_seconds"`
	CurrentLedger uint32             `json:"current_ledger"`
	Metrics       map[string]float64 `json:"metrics"`
	Registered    bool               `json:"registered"`
}

func (d *daemonProc) pipelines(t testing.TB) map[string]pipelineStatus {
	t.Helper()
	code, body := httpGet(d.http + "/api/v1/pipelines")
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

func (d *daemonProc) metrics(t testing.TB) string {
	t.Helper()
	code, body := httpGet(d.http + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// tcpConnsTo counts the established TCP connections of process pid to 127.0.0.1:port, by
// matching the socket inodes of its file descriptors with /proc/net/tcp.
func tcpConnsTo(t testing.TB, pid, port int) int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading fds of %d: %v", pid, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode (index 9); st 01 = ESTABLISHED
		if len(fields) > 9 && fields[2] == want && fields[3] == "01" && inodes[fields[9]] {
			n++
		}
	}
	return n
}
