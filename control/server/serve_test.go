package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/tlsutil"
	"github.com/withobsrvr/cdpd/internal/testpki"
)

func TestTLS(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clientConf := func(t *testing.T, cert, key, ca string) credentials.TransportCredentials {
		t.Helper()
		c, err := tlsutil.ClientConfig(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		return credentials.NewTLS(c)
	}
	tests := []struct {
		name        string
		serverCA    string // "" = TLS, set = mutual TLS
		cert, key   string
		clientCA    string
		wantRefusal bool
	}{
		{"tls", "", "", "", certs.CAFile, false},
		{"tls, client trusts another CA", "", "", "", certs.OtherCAFile, true},
		{"mtls with a client certificate", certs.CAFile, certs.ClientCertFile, certs.ClientKeyFile, certs.CAFile, false},
		{"mtls without a client certificate", certs.CAFile, "", "", certs.CAFile, true},
		{"mtls, client trusts another CA", certs.CAFile, certs.ClientCertFile, certs.ClientKeyFile, certs.OtherCAFile, true},
		{"mtls with the server's certificate as client certificate", certs.CAFile, certs.ServerCertFile, certs.ServerKeyFile, certs.CAFile, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverConf, err := tlsutil.ServerConfig(certs.ServerCertFile, certs.ServerKeyFile, tc.serverCA)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := serveExisting(t, srv, serverConf, clientConf(t, tc.cert, tc.key, tc.clientCA))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: "x", Component: &flowctlv1.ComponentInfo{}})
			if tc.wantRefusal {
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("got %v, want the connection refused (Unavailable)", err)
				}
				if len(srv.Services()) != 0 {
					t.Fatal("a refused client registered")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPlaintextClientRefusedByTLSServer(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serverConf, err := tlsutil.ServerConfig(certs.ServerCertFile, certs.ServerKeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := serveExisting(t, srv, serverConf, insecureCreds())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := r.cp.ListComponents(ctx, &flowctlv1.ListComponentsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client against TLS: %v", err)
	}
}

func TestHealthService(t *testing.T) {
	r := start(t, Options{})
	hc := healthpb.NewHealthClient(r.conn)
	for _, svc := range []string{"", "flowctl.v1.ControlPlaneService", "cdpd.v1.HistoryService"} {
		resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v", svc, resp, err)
		}
	}
	if _, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: "no.Such"}); status.Code(err) != codes.NotFound {
		t.Fatalf("health of an unknown service: %v", err)
	}
}

func TestAddServiceAndConnections(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var called atomic.Int32
	srv.AddService(func(g grpc.ServiceRegistrar) { called.Add(1) })
	r := serveExisting(t, srv, nil, insecureCreds())
	// Two client connections, each doing an RPC.
	other := serveClient(t, r.addr)
	register(t, r, "a", typeNone, nil)
	if n := called.Load(); n != 1 { // Serve has registered by the time it answers
		t.Fatalf("AddService registration called %d times", n)
	}
	if _, err := other.ListComponents(ctxT(t), &flowctlv1.ListComponentsRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 2 {
		t.Fatalf("Connections() = %d, want 2", n)
	}
}

func serveClient(t *testing.T, addr string) flowctlv1.ControlPlaneServiceClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return flowctlv1.NewControlPlaneServiceClient(conn)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := start(t, Options{Registerer: reg})
	register(t, r, "a", typeNone, nil)
	register(t, r, "b", typeNone, nil)
	heartbeat(t, r, "a", healthy, nil)
	heartbeat(t, r, "b", degraded, nil)
	heartbeat(t, r, "b", degraded, nil)
	_, _ = r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: "nope"})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string, labels map[string]string) *dto.Metric {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
						continue next
					}
				}
				return m
			}
		}
		t.Fatalf("no metric %s %v", name, labels)
		return nil
	}
	checks := []struct {
		name   string
		labels map[string]string
		get    func(*dto.Metric) float64
		want   float64
	}{
		{"cdp_control_heartbeats_total", nil, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() }, 3},
		{"cdp_control_registered_services", nil, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 2},
		{"cdp_control_services", map[string]string{"status": "degraded"}, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 1},
		{"cdp_control_services", map[string]string{"status": "unhealthy"}, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 0},
		{"cdp_control_rpc_duration_seconds", map[string]string{"method": "Heartbeat", "code": "OK"}, func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) }, 3},
		{"cdp_control_rpc_duration_seconds", map[string]string{"method": "Heartbeat", "code": "NotFound"}, func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) }, 1},
	}
	for _, c := range checks {
		if got := c.get(find(c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "cdp_control_") {
			t.Errorf("metric %s outside cdp_control_", mf.GetName())
		}
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "a", typeNone, nil)
	r.stop(t) // returns only after Serve returned; goleak checks nothing is left behind
}
