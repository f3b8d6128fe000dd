package plane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/run"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// start runs a plane of cfg in its own group until the test ends.
func start(t *testing.T, cfg Config) (*Plane, flowctlv1.ControlPlaneServiceClient, func()) {
	t.Helper()
	if cfg.Listener == nil {
		cfg.Listener = listen(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	p, err := Add(&g, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	cc, err := grpc.NewClient(p.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cc.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("plane: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return p, flowctlv1.NewControlPlaneServiceClient(cc), stop
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// With cdpd's --heartbeat-interval 40s passed in, a pipeline heartbeating every 40 s stays
// healthy for two minutes; with the default TTL (what the embedded plane used to keep) it
// flaps. Simulated time: an injected clock and janitor passes (Sweep) every 5 s.
func TestSlowHeartbeatsStayHealthy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		interval    time.Duration
		wantHealthy bool
	}{
		{"interval 40s passed in", 40 * time.Second, true},
		{"interval not passed in", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			p, api, _ := start(t, Config{HeartbeatInterval: tc.interval, JanitorInterval: time.Hour, Now: clk.Now})
			if want := server.HeartbeatTTLFor(tc.interval); p.HeartbeatTTL() != want {
				t.Fatalf("TTL %v, want %v", p.HeartbeatTTL(), want)
			}
			const id = "cdp-slow"
			if _, err := api.RegisterComponent(rpcCtx(t), &flowctlv1.RegisterRequest{
				ComponentId: id, Component: &flowctlv1.ComponentInfo{Id: id, Name: "slow"},
			}, grpc.WaitForReady(true)); err != nil {
				t.Fatal(err)
			}
			flapped := ""
			for s := 0; s <= 2*60; s += 5 {
				if s%40 == 5 { // heartbeats at 5, 45, 85 s: off the janitor's beat
					if _, err := api.Heartbeat(rpcCtx(t), &flowctlv1.HeartbeatRequest{ServiceId: id, Status: flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY}); err != nil {
						t.Fatal(err)
					}
				}
				clk.Advance(5 * time.Second)
				p.Server().Sweep()
				st, err := api.GetComponentStatus(rpcCtx(t), &flowctlv1.ComponentStatusRequest{ServiceId: id})
				if err != nil {
					t.Fatal(err)
				}
				if st.GetStatus() != flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY && flapped == "" {
					flapped = st.GetStatus().String() + " at " + (time.Duration(s+5) * time.Second).String()
				}
			}
			if (flapped == "") != tc.wantHealthy {
				t.Fatalf("heartbeats every 40s, TTL %v: flapped %q, want healthy for 2 min = %v", p.HeartbeatTTL(), flapped, tc.wantHealthy)
			}
		})
	}
}

// The plane stops with its store flushed and closed: a new plane on the same database has the
// registration and the last heartbeat's metrics. /metrics is served on the listener passed in.
func TestStopsCleanlyAndServesMetrics(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "flowctl.db")
	mlis := listen(t)
	_, api, stop := start(t, Config{DBPath: db, MetricsListener: mlis})
	const id = "cdp-kept"
	if _, err := api.RegisterComponent(rpcCtx(t), &flowctlv1.RegisterRequest{
		ComponentId: id, Component: &flowctlv1.ComponentInfo{Id: id, Name: "kept"},
	}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Heartbeat(rpcCtx(t), &flowctlv1.HeartbeatRequest{ServiceId: id, Metrics: map[string]string{"m": "7"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + mlis.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "cdp_control_registered_services 1") {
		t.Fatalf("/metrics lacks the registry size:\n%s", body)
	}
	stop()
	if _, err := http.Get("http://" + mlis.Addr().String() + "/metrics"); err == nil {
		t.Fatal("/metrics still served after the plane stopped")
	}

	_, api2, _ := start(t, Config{DBPath: db})
	st, err := api2.GetComponentStatus(rpcCtx(t), &flowctlv1.ComponentStatusRequest{ServiceId: id}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("after a restart on the same database: %v", err)
	}
	if st.GetMetrics()["m"] != "7" {
		t.Fatalf("metrics after a restart: %v", st.GetMetrics())
	}
}

// A plane that cannot be built closes the listeners it was given.
func TestAddFailureClosesListeners(t *testing.T) {
	lis, mlis := listen(t), listen(t)
	var g run.Group
	_, err := Add(&g, Config{Listener: lis, MetricsListener: mlis, TLSCert: "missing.pem", TLSKey: "missing.key", Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("Add accepted a missing certificate")
	}
	for _, l := range []net.Listener{lis, mlis} {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener %s after a failed Add: Accept = %v, want closed", l.Addr(), err)
		}
	}
	if _, err := Add(&g, Config{}); err == nil {
		t.Fatal("Add accepted no listener")
	}
}

// Run returns nil when its context ends.
func TestRunStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Listener: listen(t), Logger: slog.New(slog.DiscardHandler)}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
