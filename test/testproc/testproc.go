// Package testproc starts the project's binaries as real processes for end-to-end tests:
// builds, free ports, process output capture, polling, HTTP and /proc helpers.
//
// It is shared by test/e2e, test/reliability and test/docs; their own wrappers (control
// plane, daemon, pipeline files) stay in those packages.
package testproc

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

// Binaries are the paths of the built cdpd and flowctl.
type Binaries struct{ CDPD, Flowctl string }

// BuildOptions configure Build.
type BuildOptions struct {
	Race     bool     // build with the race detector
	CDPDTags []string // build tags of cdpd (e.g. faultinject)
}

const (
	cdpdPkg    = "github.com/withobsrvr/cdpd/cmd/cdpd"
	flowctlPkg = "github.com/withobsrvr/cdpd/cmd/flowctl"
)

// Build builds cdpd and flowctl into dir (in parallel) and returns their paths.
func Build(dir string, o BuildOptions) (Binaries, error) {
	bins := Binaries{CDPD: filepath.Join(dir, "cdpd"), Flowctl: filepath.Join(dir, "flowctl")}
	builds := []struct {
		out, pkg string
		tags     []string
	}{
		{bins.CDPD, cdpdPkg, o.CDPDTags},
		{bins.Flowctl, flowctlPkg, nil},
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"build"}
			if o.Race {
				args = append(args, "-race")
			}
			args = append(args, "-o", b.out)
			if len(b.tags) > 0 {
				args = append(args, "-tags", strings.Join(b.tags, ","))
			}
			cmd := exec.Command("go", append(args, b.pkg)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Binaries{}, err
		}
	}
	return bins, nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Cmd describes a process to start.
type Cmd struct {
	Name string // for messages
	Bin  string
	Args []string
	Env  []string // added to the test's environment
	// DropEnvPrefixes: variables of the test's environment whose names start with one of
	// these are not passed on.
	DropEnvPrefixes []string
	// TailBytes is how much of the output's end is logged when the test failed (default 4 KiB).
	TailBytes int
}

// Proc is a started binary whose output (stdout and stderr) is kept for assertions and
// failure messages.
type Proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Start starts bin with args and env (added to the test's environment); the process is
// killed at cleanup and the last 4 KiB of its output logged when the test failed.
func Start(t testing.TB, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	return Cmd{Name: name, Bin: bin, Args: args, Env: env}.Start(t)
}

// Start starts the process; it is killed at cleanup and the tail of its output logged when
// the test failed.
func (c Cmd) Start(t testing.TB) *Proc {
	t.Helper()
	tailBytes := c.TailBytes
	if tailBytes == 0 {
		tailBytes = 4096
	}
	p := &Proc{name: c.Name, done: make(chan struct{})}
	p.cmd = exec.Command(c.Bin, c.Args...)
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, prefix := range c.DropEnvPrefixes {
			drop = drop || strings.HasPrefix(k, prefix)
		}
		if !drop {
			base = append(base, kv)
		}
	}
	p.cmd.Env = append(base, c.Env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", c.Name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- %s output (last %s) ---\n%s", c.Name, sizeName(tailBytes), Tail(p.Output(), tailBytes))
		}
	})
	return p
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Write appends to the captured output (the process's stdout and stderr).
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the error of the process's Wait once it has exited (nil before).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Kill sends SIGKILL and waits for the exit (no-op when already exited).
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits for the exit; it returns the exit code.
func (p *Proc) Stop(timeout time.Duration) (int, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
	}
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Eventually polls cond (testutil.EventuallyWhy) until it holds or the timeout passes (then the test
// fails with what and the last message of cond).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.EventuallyWhy(t, timeout, what, cond)
}

// WaitTCP waits until addr accepts TCP connections (what names it in the failure).
func WaitTCP(t testing.TB, timeout time.Duration, what, addr string) {
	t.Helper()
	Eventually(t, timeout, what, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// HTTPGet returns the status code and body of GET url (0 and the error text when it failed);
// it gives up after 10 s.
func HTTPGet(url string) (int, string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WriteFile writes content to path atomically (temp file in the same directory + rename).
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// socketInodes returns the socket inodes of process pid's file descriptors.
func socketInodes(t testing.TB, pid int) map[string]bool {
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
	return inodes
}

// procNetTCP calls fn with the fields of every line of /proc/net/tcp and /proc/net/tcp6.
func procNetTCP(fn func(file string, fields []string)) {
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fn(file, strings.Fields(sc.Text()))
		}
		f.Close()
	}
}

// TCPConnsTo counts the established TCP connections of process pid to 127.0.0.1:port, by
// matching the socket inodes of its file descriptors with /proc/net/tcp.
func TCPConnsTo(t testing.TB, pid, port int) int {
	t.Helper()
	inodes := socketInodes(t, pid)
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	procNetTCP(func(_ string, f []string) {
		// sl local_address rem_address st ... inode (index 9); st 01 = ESTABLISHED
		if len(f) > 9 && f[2] == want && f[3] == "01" && inodes[f[9]] {
			n++
		}
	})
	return n
}

// ListenAddrs returns the addresses ("ip:port") process pid listens on (TCP, v4 and v6).
func ListenAddrs(t testing.TB, pid int) []string {
	t.Helper()
	inodes := socketInodes(t, pid)
	var out []string
	procNetTCP(func(file string, f []string) {
		if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A = LISTEN
			out = append(out, decodeProcAddr(f[1]))
		}
	})
	sort.Strings(out)
	return out
}

// decodeProcAddr turns /proc/net/tcp's "0100007F:1F90" (little-endian words) into
// "127.0.0.1:8080" (and the IPv6 form into "[...]:port").
func decodeProcAddr(s string) string {
	hostHex, portHex, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(portHex, 16, 16)
	raw, err := hex.DecodeString(hostHex)
	if err != nil {
		return s
	}
	// every 4-byte word is in host (little-endian) order
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10))
}

// Main is the body of a TestMain that starts binaries: in -short mode it prints that the
// suite named name is skipped and exits 0; otherwise it calls setup with a temporary
// directory (removed afterwards), runs the tests, checks for leaked goroutines after a
// passing run and exits with the result.
func Main(m *testing.M, name string, setup func(dir string) error) {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped in -short mode\n", name)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cdpd-"+name+"-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := setup(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
