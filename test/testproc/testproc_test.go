package testproc

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProcOutputEnvAndStop(t *testing.T) {
	t.Setenv("TESTPROC_DROPPED", "x")
	p := Cmd{Name: "sh", Bin: "sh", Args: []string{"-c", `echo "out $A ${TESTPROC_DROPPED:-none}"; echo err >&2; trap 'exit 3' TERM; while :; do sleep 0.05; done`},
		Env: []string{"A=1"}, DropEnvPrefixes: []string{"TESTPROC_"}}.Start(t)
	Eventually(t, 10*time.Second, "output captured", func() (bool, string) {
		out := p.Output()
		return strings.Contains(out, "out 1 none\n") && strings.Contains(out, "err\n"), out
	})
	if p.Exited() || p.Err() != nil || p.Pid() <= 0 {
		t.Fatalf("running process: exited %v, err %v, pid %d", p.Exited(), p.Err(), p.Pid())
	}
	code, err := p.Stop(10 * time.Second)
	if err != nil || code != 3 {
		t.Fatalf("Stop = %d, %v; want 3 (the TERM trap's exit code)", code, err)
	}
	if !p.Exited() || p.Err() == nil {
		t.Fatalf("after Stop: exited %v, err %v", p.Exited(), p.Err())
	}
	p.Kill() // no-op once exited
}

func TestStopTimesOut(t *testing.T) {
	p := Start(t, "sh", nil, "sh", "-c", `trap '' TERM; echo trapped; while :; do sleep 0.05; done`)
	Eventually(t, 10*time.Second, "the shell ignores SIGTERM", func() (bool, string) {
		return strings.Contains(p.Output(), "trapped\n"), p.Output()
	})
	if code, err := p.Stop(300 * time.Millisecond); err == nil || code != -1 {
		t.Fatalf("Stop of a process ignoring SIGTERM = %d, %v; want -1 and an error", code, err)
	}
	p.Kill()
	if !p.Exited() {
		t.Fatal("Kill did not wait for the exit")
	}
}

func TestTCPConnsToAndListenAddrs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := TCPConnsTo(t, os.Getpid(), port); n != 1 {
		t.Errorf("TCPConnsTo = %d, want 1", n)
	}
	want := fmt.Sprintf("127.0.0.1:%d", port)
	found := false
	for _, a := range ListenAddrs(t, os.Getpid()) {
		found = found || a == want
	}
	if !found {
		t.Errorf("ListenAddrs %v lacks %s", ListenAddrs(t, os.Getpid()), want)
	}
}

func TestWriteFileReplacesAtomically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	WriteFile(t, path, "a")
	WriteFile(t, path, "b")
	b, err := os.ReadFile(path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if err != nil || string(b) != "b" || len(entries) != 1 {
		t.Fatalf("content %q (%v), %d entries; want b and no temp file left", b, err, len(entries))
	}
}

func TestTailAndFreePort(t *testing.T) {
	if Tail("abcdef", 3) != "def" || Tail("ab", 3) != "ab" {
		t.Fatal("Tail")
	}
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}
