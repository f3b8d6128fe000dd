package server

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newFakeClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// running is a server served on a loopback port with a client connection.
type running struct {
	srv  *Server
	addr string
	conn *grpc.ClientConn
	cp   flowctlv1.ControlPlaneServiceClient
	hist cdpdv1.HistoryServiceClient

	cancel context.CancelFunc
	done   chan error
}

// start serves a new server built from opts and dials it; stop (also run by t.Cleanup)
// shuts both down and closes the server.
func start(t testing.TB, opts Options) *running {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return serveExisting(t, srv, nil, insecure.NewCredentials())
}

func serveExisting(t testing.TB, srv *Server, tlsConf *tls.Config, creds credentials.TransportCredentials) *running {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, addr: lis.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Serve(ctx, lis, srv, tlsConf) }()
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r.conn = conn
	r.cp = flowctlv1.NewControlPlaneServiceClient(conn)
	r.hist = cdpdv1.NewHistoryServiceClient(conn)
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.conn.Close()
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := r.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func register(t testing.TB, r *running, id string, typ flowctlv1.ComponentType, md map[string]string) {
	t.Helper()
	_, err := r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{
		ComponentId: id,
		Component:   &flowctlv1.ComponentInfo{Id: id, Name: id, Type: typ, Metadata: md},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

func heartbeat(t testing.TB, r *running, id string, st flowctlv1.HealthStatus, m map[string]string) {
	t.Helper()
	if _, err := r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: id, Status: st, Metrics: m}); err != nil {
		t.Fatalf("heartbeat %s: %v", id, err)
	}
}

func getStatus(t testing.TB, r *running, id string) *flowctlv1.ComponentStatusResponse {
	t.Helper()
	st, err := r.cp.GetComponentStatus(ctxT(t), &flowctlv1.ComponentStatusRequest{ServiceId: id})
	if err != nil {
		t.Fatalf("status %s: %v", id, err)
	}
	return st
}

const (
	healthy   = flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	unhealthy = flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
	degraded  = flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED
	starting  = flowctlv1.HealthStatus_HEALTH_STATUS_STARTING
	stopping  = flowctlv1.HealthStatus_HEALTH_STATUS_STOPPING
	unknown   = flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN

	typeNone      = flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED
	typeSource    = flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE
	typeProcessor = flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR
	typeConsumer  = flowctlv1.ComponentType_COMPONENT_TYPE_CONSUMER
)

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
