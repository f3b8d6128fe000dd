package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/testpki"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	want := "flowctl: no control plane is reachable at " + addr + "; set FLOWCTL_ENDPOINT or --control-plane-addr\n"
	for _, args := range [][]string{{"status"}, {"status", "x"}, {"health"}, {"health", "x"}, {"list"}, {"metrics", "x"}, {"alert", "list"}} {
		start := time.Now()
		_, stderr, code := runApp(t, time.Now, map[string]string{"FLOWCTL_ENDPOINT": addr}, args...)
		if code != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("flowctl %v: exit %d, stderr %q; want 1 and %q", args, code, stderr, want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("flowctl %v took %s", args, d)
		}
	}
	_, stderr, code := runApp(t, time.Now, map[string]string{"FLOWCTL_ENDPOINT": "http://localhost:8080"}, "status")
	if code != 1 || !strings.Contains(stderr, "want host:port (no URL scheme)") {
		t.Errorf("URL endpoint: exit %d %q", code, stderr)
	}
}

// TestUpstreamServer talks to a server offering only flowctl.v1 (as upstream flowctl does).
func TestUpstreamServer(t *testing.T) {
	srv, err := server.New(server.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g := grpc.NewServer()
	flowctlv1.RegisterControlPlaneServiceServer(g, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	addr := lis.Addr().String()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := flowctlv1.NewControlPlaneServiceClient(cc).RegisterComponent(context.Background(),
		&flowctlv1.RegisterRequest{ComponentId: "cdp-x", Component: pipelineInfo("cdp-x", "x", "/x.yaml", "pubnet")}); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0.Add(90 * time.Second) }
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"status"}, 0, "cdp-x  cdp-pipeline  healthy  1m 30s  node-1    -      -"},
		{[]string{"status", "cdp-x", "--verbose"}, 0, "History:        this control plane keeps no heartbeat history"},
		{[]string{"health"}, 0, "is reachable (it offers no gRPC health service); 1 service: 1 healthy"},
		{[]string{"health", "cdp-x"}, 0, "✓ cdp-x is healthy"},
		{[]string{"metrics", "cdp-x"}, 1, "this control plane does not keep heartbeat history (it is not cdpd's flowctl server)"},
		{[]string{"alert", "list"}, 1, "this control plane does not evaluate alerts (it is not cdpd's flowctl server)"},
	} {
		stdout, stderr, code := runApp(t, now, nil, append(tc.args, "--control-plane-addr", addr)...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
			t.Errorf("flowctl %v: exit %d\n%s%s\nwant exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.out)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewClock(t0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- plane.Run(ctx, plane.Config{
			Listener: lis,
			TLSCert:  certs.ServerCertFile, TLSKey: certs.ServerKeyFile, TLSCA: certs.CAFile,
			Now: c.Now, Logger: slog.New(slog.DiscardHandler),
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := lis.Addr().String()
	env := map[string]string{"FLOWCTL_ENDPOINT": addr, "FLOWCTL_TLS_CERT": certs.ClientCertFile, "FLOWCTL_TLS_KEY": certs.ClientKeyFile, "FLOWCTL_TLS_CA": certs.CAFile}
	if stdout, stderr, code := runApp(t, c.Now, env, "health"); code != 0 || !strings.HasPrefix(stdout, "✓ control plane at "+addr+" is serving") {
		t.Fatalf("mTLS health: exit %d %s%s", code, stdout, stderr)
	}
	// The same with flags instead of the environment.
	if _, stderr, code := runApp(t, c.Now, nil, "status", "--control-plane-addr", addr, "--tls-cert", certs.ClientCertFile, "--tls-key", certs.ClientKeyFile, "--tls-ca-cert", certs.CAFile); code != 0 {
		t.Fatalf("mTLS status with flags: exit %d %s", code, stderr)
	}
	// Without a client certificate, or without TLS, the server is not usable.
	if _, stderr, code := runApp(t, c.Now, map[string]string{"FLOWCTL_ENDPOINT": addr, "FLOWCTL_TLS_CA": certs.CAFile}, "status"); code != 1 {
		t.Fatalf("TLS without client certificate: exit %d %s", code, stderr)
	}
	if _, stderr, code := runApp(t, c.Now, map[string]string{"FLOWCTL_ENDPOINT": addr}, "status"); code != 1 || !strings.Contains(stderr, "no control plane is reachable") {
		t.Fatalf("plaintext against TLS: exit %d %s", code, stderr)
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's logger and the test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServerCommand runs `flowctl server args...` in-process and returns the address it
// listens on (from its JSON log) and a stop function returning its exit code.
func startServerCommand(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	logs := &lockedBuffer{}
	app := &App{Stdout: io.Discard, Stderr: logs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- app.Run(ctx, append([]string{"server", "--log-format", "json"}, args...)) }()
	t.Cleanup(cancel) // a failed start below stops the server too
	var addr string
	testutil.EventuallyWhy(t, 10*time.Second, "flowctl server serves", func() (bool, string) {
		select {
		case code := <-done:
			t.Fatalf("flowctl server exited %d:\n%s", code, logs.String())
		default:
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "control plane serving" {
				addr = rec.Address
				return true, ""
			}
		}
		return false, logs.String()
	})
	return addr, func() int { cancel(); return <-done }
}

func TestServerCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "cp.db")
	addr, stop := startServerCommand(t, "--address", "127.0.0.1", "--port", "0", "--db-path", db, "--heartbeat-ttl", "5s", "--janitor-interval", "1s")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("listening on %q", addr)
	}
	env := map[string]string{"FLOWCTL_ENDPOINT": addr}
	if stdout, stderr, code := runApp(t, time.Now, env, "health"); code != 0 || !strings.Contains(stdout, "is serving") {
		t.Fatalf("health: exit %d %s%s", code, stdout, stderr)
	}
	if _, stderr, code := runApp(t, time.Now, env, "alert", "create", "--id", "kept", "--service", "*", "--condition", "status != healthy", "--webhook", "http://127.0.0.1:9/x"); code != 0 {
		t.Fatalf("alert create: %s", stderr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("server exited %d after cancellation, want 0", code)
	}
	// Restarted on the same database, the alert is still there.
	addr, stop = startServerCommand(t, "--port", "0", "--db-path", db)
	stdout, stderr, code := runApp(t, time.Now, map[string]string{"FLOWCTL_ENDPOINT": addr}, "alert", "list")
	if code != 0 || !strings.Contains(stdout, "kept") {
		t.Fatalf("alert list after restart: exit %d %s%s", code, stdout, stderr)
	}
	if code := stop(); code != 0 {
		t.Fatalf("server exited %d", code)
	}

	// --max-services caps the registry: a new id beyond it is refused, a known one re-registers.
	addr, stop = startServerCommand(t, "--port", "0", "--no-persistence", "--max-services", "1")
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cp := flowctlv1.NewControlPlaneServiceClient(cc)
	for i, id := range []string{"cdp-a", "cdp-b", "cdp-a"} {
		_, err := cp.RegisterComponent(context.Background(), &flowctlv1.RegisterRequest{ComponentId: id,
			Component: pipelineInfo(id, id, "/x.yaml", "pubnet")}, grpc.WaitForReady(true))
		if want := map[bool]codes.Code{true: codes.ResourceExhausted, false: codes.OK}[i == 1]; status.Code(err) != want {
			t.Errorf("registering %s (#%d) with --max-services 1: %v, want %s", id, i+1, err, want)
		}
	}
	_ = cc.Close()
	if code := stop(); code != 0 {
		t.Fatalf("server exited %d", code)
	}

	for _, args := range [][]string{
		{"server", "--log-format", "xml"},
		{"server", "--port", "70000"},
		{"server", "--heartbeat-ttl", "0s"},
		{"server", "--max-services", "0"},
		{"server", "extra"},
	} {
		if _, _, code := runApp(t, time.Now, nil, args...); code != 2 {
			t.Errorf("flowctl %v: exit %d, want 2", args, code)
		}
	}
}
