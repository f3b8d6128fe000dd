// Package redistest owns a throwaway Redis server for tests: Debian's redis-server started in
// a temporary directory, listening on a free port of 127.0.0.1 only, no password, with an
// append-only file (appendfsync no) so that Stop and StartAgain keep the data, as a real
// server's restart would. It uses redis-server from PATH or $REDISTEST_BIN.
//
// Without the binary, Start and Shared skip the test with a message naming
// `apt-get install -y redis-server`, unless $CDPD_REQUIRE_REDIS is set (CI sets it): then
// they fail the test.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNoRedis is returned by Launch when no redis-server binary is installed.
var ErrNoRedis = errors.New("redis-server not found; install it with: apt-get install -y redis-server")

// Server is one throwaway redis-server.
type Server struct {
	bin  string
	base string // temporary directory: data, log
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *bytes.Buffer // the server's output (its log goes to stdout)
}

// Start launches a server for one test and stops and removes it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns a server shared by every test of the package, launched on first use. The
// package's TestMain must call StopShared after m.Run. Tests sharing it use keys of their own
// (or FlushAll when they own the server for the moment).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.s, shared.err = Launch() })
	if shared.err != nil {
		skipOrFail(t, shared.err)
	}
	return shared.s
}

// StopShared stops and removes the shared server, if one was launched.
func StopShared() error {
	if shared.s == nil {
		return nil
	}
	return shared.s.Close()
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoRedis) && os.Getenv("CDPD_REQUIRE_REDIS") == "" {
		t.Skipf("redistest: %v (set CDPD_REQUIRE_REDIS=1 to make this a failure)", err)
	}
	t.Fatalf("redistest: %v", err)
}

func findBin() (string, error) {
	if d := os.Getenv("REDISTEST_BIN"); d != "" {
		p := filepath.Join(d, "redis-server")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (REDISTEST_BIN=%s has no redis-server)", ErrNoRedis, d)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNoRedis
	}
	return p, nil
}

// Launch starts a server in a new temporary directory. Close removes it.
func Launch() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("creating server directory: %w", err)
	}
	s := &Server{bin: bin, base: base}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			last = err
			continue
		}
		if last = s.StartAgain(); last == nil {
			return s, nil
		}
	}
	os.RemoveAll(base)
	return nil, last
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port (127.0.0.1, the same across Stop and StartAgain).
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// StartAgain starts the server (again, after Stop or Kill) on the same port and directory and
// waits until it answers PING.
func (s *Server) StartAgain() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin,
		"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", s.base, "--save", "", "--appendonly", "yes", "--appendfsync", "no",
		"--daemonize", "no", "--databases", "16", "--loglevel", "warning")
	cmd.Dir = s.base
	s.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(s.Addr())
		if err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr(), strings.TrimSpace(s.out.String()))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s not answering: %w\n%s", s.Addr(), err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.done = cmd, done
	return nil
}

// ping sends PING in the Redis protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Stop shuts the server down cleanly (SIGTERM: it writes its append-only file) and waits
// until it has exited.
func (s *Server) Stop() error { return s.stop(syscall.SIGTERM) }

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() error { return s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling redis-server: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Kill()
	if rerr := os.RemoveAll(s.base); rerr != nil && err == nil {
		err = fmt.Errorf("removing server directory: %w", rerr)
	}
	return err
}
