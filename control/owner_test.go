package control_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

// startOwnedClient runs a client until stop is called (or the test ends).
func startOwnedClient(t *testing.T, cfg control.Config) (c *control.Client, stop func()) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := control.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = c.Close()
	}
	t.Cleanup(stop)
	return c, stop
}

// upstreamClient is shaped like upstream flowctl's clients: no owner token, a registration by
// component_id, then heartbeats by id (here on a connection of their own).
type upstreamClient struct {
	cp flowctlv1.ControlPlaneServiceClient
}

func newUpstreamClient(t *testing.T, addr string) upstreamClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return upstreamClient{flowctlv1.NewControlPlaneServiceClient(conn)}
}

func (u upstreamClient) register(id string) error {
	_, err := u.cp.RegisterComponent(context.Background(), &flowctlv1.RegisterRequest{
		ComponentId: id, Component: &flowctlv1.ComponentInfo{Id: id, Name: "upstream " + id, Type: flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE},
	})
	return err
}

func (u upstreamClient) heartbeat(id string, m map[string]string) error {
	_, err := u.cp.Heartbeat(context.Background(), &flowctlv1.HeartbeatRequest{ServiceId: id, Status: flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY, Metrics: m})
	return err
}

// cdpd's client owns its pipelines' services through its token: an upstream-shaped client on
// the same host can neither take them over nor inject metrics, while its own tokenless
// service works as upstream's does; a second cdpd (another token) gets its registration
// refused until the first has been silent for the TTL, and then takes the service over; a
// cdpd restarted with the same token (kept in the state directory) gets its services back at
// once.
func TestClientOwnsItsServices(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ts := startServer(t, serverOpt{server: server.Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour}})
	base := control.Config{Endpoint: ts.addr, HeartbeatInterval: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}

	cfgA := base
	cfgA.OwnerToken = "cdpd-a-token-from-its-state-dir"
	a, stopA := startOwnedClient(t, cfgA)
	r := reg("ContractEvents")
	a.Attach(r, newPipeline(map[string]float64{"who": 1}, nil))
	testutil.Eventually(t, 10*time.Second, "A registered", func() bool { return a.Registered(r.ServiceID) })

	up := newUpstreamClient(t, ts.addr)
	if err := up.heartbeat(r.ServiceID, map[string]string{"injected": "1"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("upstream-shaped heartbeat of cdpd's service: %v", err)
	}
	if err := up.register(r.ServiceID); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("upstream-shaped registration over cdpd's service: %v", err)
	}
	if _, err := up.cp.UnregisterComponent(context.Background(), &flowctlv1.UnregisterRequest{ServiceId: r.ServiceID}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("upstream-shaped unregistration of cdpd's service: %v", err)
	}
	// Upstream's own flow, register then heartbeat by id, still works.
	if err := up.register("upstream-source"); err != nil {
		t.Fatal(err)
	}
	if err := newUpstreamClient(t, ts.addr).heartbeat("upstream-source", map[string]string{"n": "1"}); err != nil {
		t.Fatalf("upstream heartbeat on a new connection: %v", err)
	}
	st, err := ts.status(r.ServiceID)
	if err != nil || st.GetMetrics()["who"] != "1" || st.GetMetrics()["injected"] != "" || st.GetComponent().GetType() != flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED {
		t.Fatalf("cdpd's service after the attempts: %v %v", st, err)
	}

	// A second cdpd with another token: refused while A heartbeats.
	cfgB := base
	cfgB.OwnerToken = "cdpd-b-token"
	promB := prometheus.NewRegistry()
	cfgB.Registerer = promB
	b, stopB := startOwnedClient(t, cfgB)
	b.Attach(r, newPipeline(map[string]float64{"who": 2}, nil))
	testutil.Eventually(t, 10*time.Second, "B refused twice", func() bool {
		return metricValue(t, promB, "cdpd_control_registration_failures_total") >= 2
	})
	if st, _ := ts.status(r.ServiceID); st.GetMetrics()["who"] != "1" || !a.Registered(r.ServiceID) || b.Registered(r.ServiceID) {
		t.Fatalf("B took the service while A heartbeats: who=%s A=%v B=%v", st.GetMetrics()["who"], a.Registered(r.ServiceID), b.Registered(r.ServiceID))
	}

	// A dies (no unregistration) and stays silent past the TTL: B takes over.
	stopA()
	clock.Advance(31 * time.Second)
	testutil.Eventually(t, 10*time.Second, "B took over", func() bool {
		st, err := ts.status(r.ServiceID)
		return b.Registered(r.ServiceID) && err == nil && st.GetMetrics()["who"] == "2"
	})

	// B is killed (no unregistration) and restarted at once with its token: it gets the
	// service back before any TTL.
	stopB()
	clock.Advance(time.Second)
	cfgB.Registerer = nil
	b2, _ := startOwnedClient(t, cfgB)
	b2.Attach(r, newPipeline(map[string]float64{"who": 3}, nil))
	testutil.Eventually(t, 10*time.Second, "B restarted with its token", func() bool {
		st, err := ts.status(r.ServiceID)
		return b2.Registered(r.ServiceID) && err == nil && st.GetMetrics()["who"] == "3"
	})
	if p, _ := ts.srv.Owner(r.ServiceID); p != "addr:127.0.0.1" {
		t.Fatalf("owner %q", p)
	}
}
