// Package pgtest owns a throwaway PostgreSQL server for tests: a fresh cluster (initdb) in a
// temporary directory, listening on a free port of 127.0.0.1 only, trust authentication, no
// fsync. It uses the server binaries installed on the machine (/usr/lib/postgresql/*/bin, or
// pg_ctl on PATH, or the directory in $PGTEST_BIN). As root it runs them as the postgres user
// (PostgreSQL refuses to run as root).
//
// Without binaries, Start and Shared skip the test with a message naming
// `apt-get install -y postgresql`, unless $CDPD_REQUIRE_POSTGRES is set (CI sets it): then
// they fail the test.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ErrNoPostgres is returned by Launch when no PostgreSQL server binaries are installed.
var ErrNoPostgres = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found; install them with: apt-get install -y postgresql")

// Server is one throwaway PostgreSQL cluster.
type Server struct {
	bin     string // directory of initdb, pg_ctl
	base    string // temporary directory holding everything
	data    string
	port    int
	asUser  string // run binaries as this user (when root), else ""
	mu      sync.Mutex
	running bool
	dbs     map[testing.TB]string // DB's databases of the tests running, by test
	nDB     int                   // DB's databases ever created (names are never reused)
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
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns a server shared by every test of the package, launched on first use; each test
// works in a database of its own (DB). The package's TestMain must call StopShared after m.Run.
// Tests that stop the shared server must start it again before they end.
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
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CDPD_REQUIRE_POSTGRES") == "" {
		t.Skipf("pgtest: %v (set CDPD_REQUIRE_POSTGRES=1 to make this a failure)", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// findBin returns the directory of the newest installed server binaries.
func findBin() (string, error) {
	if d := os.Getenv("PGTEST_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w (PGTEST_BIN=%s has no initdb)", ErrNoPostgres, d)
		}
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "initdb")); err == nil {
			return filepath.Dir(m), nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

// Launch creates and starts a cluster in a new temporary directory. Close removes it.
func Launch() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("creating cluster directory: %w", err)
	}
	s := &Server{bin: bin, base: base, data: filepath.Join(base, "data")}
	if os.Geteuid() == 0 {
		s.asUser = "postgres"
		u, err := user.Lookup(s.asUser)
		if err != nil {
			os.RemoveAll(base)
			return nil, fmt.Errorf("running as root needs the %s user to run PostgreSQL: %w", s.asUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			os.RemoveAll(base)
			return nil, fmt.Errorf("handing the cluster directory to %s: %w", s.asUser, err)
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
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

func (s *Server) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.base
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// DSN is the connection string of the postgres database (user postgres, no password).
func (s *Server) DSN() string { return s.dsn("postgres") }

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// DB returns the connection string of a database of t's own (DBName).
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	return s.dsn(s.DBName(t))
}

// DBName returns the name of a database of t's own, created on t's first call and dropped
// (with its connections) when t ends. Tests sharing a server so never see each other's
// tables, and every run of a test (go test -count=N) starts from an empty database.
func (s *Server) DBName(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.dbs[t]; ok {
		return name
	}
	if s.dbs == nil {
		s.dbs = map[testing.TB]string{}
	}
	s.nDB++
	name := "t" + strconv.Itoa(s.nDB)
	if out, err := s.run("createdb", s.clientArgs(name)...); err != nil {
		t.Fatalf("pgtest: creating database %s: %v: %s", name, err, tail(out))
	}
	s.dbs[t] = name
	t.Cleanup(func() {
		s.mu.Lock()
		delete(s.dbs, t)
		s.mu.Unlock()
		if out, err := s.run("dropdb", append([]string{"--force"}, s.clientArgs(name)...)...); err != nil {
			t.Errorf("pgtest: dropping database %s: %v: %s", name, err, tail(out))
		}
	})
	return name
}

// clientArgs are the arguments of a client binary (createdb, dropdb) acting on database db.
func (s *Server) clientArgs(db string) []string {
	return []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres", db}
}

// Port is the TCP port the server listens on (the same across Stop and StartAgain).
func (s *Server) Port() int { return s.port }

// StartAgain starts the server (again, after Stop or Crash) on the same port and waits until
// it accepts connections.
func (s *Server) StartAgain() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
		s.port, s.base)
	out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data, "-l", filepath.Join(s.base, "server.log"), "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.base, "server.log"))
		return fmt.Errorf("starting PostgreSQL on 127.0.0.1:%d: %w\n%s\n%s", s.port, err, out, tail(log))
	}
	s.running = true
	return nil
}

// Stop shuts the server down (fast mode: open connections are cut) and waits until it is gone.
func (s *Server) Stop() error { return s.stop("fast") }

// Crash stops the server without a clean shutdown (immediate mode), as a crash would.
func (s *Server) Crash() error { return s.stop("immediate") }

func (s *Server) stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if out, err := s.run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", s.data); err != nil {
		return fmt.Errorf("stopping PostgreSQL: %w\n%s", err, out)
	}
	s.running = false
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.stop("immediate")
	if rerr := os.RemoveAll(s.base); rerr != nil && err == nil {
		err = fmt.Errorf("removing cluster directory: %w", rerr)
	}
	return err
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
