package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/control/tlsutil"
	"github.com/withobsrvr/cdpd/internal/testpki"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// cdpd --embedded-control-plane --heartbeat-interval 40s: the embedded plane judges silence by
// the TTL of a 40 s interval (2 min), not the 30 s default under which every pipeline flapped
// (control/plane's TestSlowHeartbeatsStayHealthy runs the two minutes).
func TestEmbeddedPlaneTakesTheHeartbeatInterval(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: t.TempDir(), HeartbeatInterval: 40 * time.Second}
	var g run.Group
	cp, err := plane.Add(&g, embeddedPlane(cfg, lis, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got, want := cp.HeartbeatTTL(), server.HeartbeatTTLFor(40*time.Second); got != want || got < 2*cfg.HeartbeatInterval {
		t.Fatalf("embedded plane TTL %v with --heartbeat-interval %v, want %v", got, cfg.HeartbeatInterval, want)
	}
}

// The embedded control plane's address rule: without TLS it binds to loopback only, unless
// --insecure-control-plane; with FLOWCTL_TLS_* it serves TLS, which needs the certificate and
// the key.
func TestEmbeddedPlaneAddressRule(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		extra []string
		env   []string
		want  string // "" = accepted, else a part of the error
	}{
		{addr: "127.0.0.1:8080"},
		{addr: "localhost:8080"},
		{addr: "[::1]:8080"},
		{addr: "0.0.0.0:8080", want: "--insecure-control-plane"},
		{addr: ":8080", want: "--insecure-control-plane"},
		{addr: "10.1.2.3:8080", want: "not a loopback address"},
		{addr: "0.0.0.0:8080", extra: []string{"--insecure-control-plane"}},
		{addr: "0.0.0.0:8080", env: []string{"FLOWCTL_TLS_CERT=c.pem", "FLOWCTL_TLS_KEY=k.pem"}},
		{addr: "0.0.0.0:8080", env: []string{"FLOWCTL_TLS_CERT=c.pem", "FLOWCTL_TLS_KEY=k.pem", "FLOWCTL_TLS_CA=ca.pem"}},
		{addr: "127.0.0.1:8080", env: []string{"FLOWCTL_TLS_CA=ca.pem"}, want: "FLOWCTL_TLS_CERT and FLOWCTL_TLS_KEY"},
		{addr: "127.0.0.1:8080", extra: []string{"--embedded-history-max-bytes", "1KiB"}, want: "--embedded-history-max-bytes"},
		{addr: "127.0.0.1:8080", extra: []string{"--embedded-service-expiry", "10s"}, want: "--embedded-service-expiry"},
	} {
		args := append([]string{"--config-dir", "x", "--embedded-control-plane", tc.addr}, tc.extra...)
		_, err := parseFlags(args, tc.env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v %v: %v, want accepted", args, tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v %v: %v, want an error with %q", args, tc.env, err, tc.want)
		}
	}
}

// With FLOWCTL_TLS_* set, cdpd's client speaks (mutual) TLS, so the embedded plane serves
// (mutual) TLS with the same files: the pipeline registers, a plaintext client and a client
// without a certificate are refused.
func TestEmbeddedPlaneServesTLS(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	writeAtomic(t, filepath.Join(conf, "p.yaml"), pipelineYAML("tls-pipe", ds.Dir, ds.First, 0))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cpAddr := lis.Addr().String()
	lis.Close() // runWith listens on it itself
	base, stop := runDaemon(t, Config{ConfigDir: conf, EmbeddedControlPlane: cpAddr,
		TLSCert: certs.PeerCertFile, TLSKey: certs.PeerKeyFile, TLSCA: certs.CAFile})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testutil.EventuallyWhy(t, 30*time.Second, "registered with the embedded plane over mutual TLS", func() (bool, string) {
		s := statusOf(t, base, "tls-pipe")
		return s.Registered, fmt.Sprintf("registered=%v last_error=%q", s.Registered, s.LastError)
	})
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext": insecure.NewCredentials(),
		"TLS without a certificate": func() credentials.TransportCredentials {
			c, err := tlsutil.ClientConfig("", "", certs.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			return credentials.NewTLS(c)
		}(),
	} {
		conn, err := grpc.NewClient(cpAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = flowctlv1.NewControlPlaneServiceClient(conn).ListComponents(ctx, &flowctlv1.ListComponentsRequest{})
		cancel()
		conn.Close()
		if err == nil {
			t.Errorf("a %s client was served by the embedded plane", name)
		}
	}
}
