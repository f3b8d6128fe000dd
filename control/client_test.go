package control_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connCounter is a server stats.Handler counting transport connections.
type connCounter struct {
	total, open atomic.Int64
}

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.total.Add(1)
		c.open.Add(1)
	case *stats.ConnEnd:
		c.open.Add(-1)
	}
}

// testServer is a real control plane (control/server) on a loopback port.
type testServer struct {
	addr  string
	srv   *server.Server
	g     *grpc.Server
	conns *connCounter
	stop  func()
}

type serverOpt struct {
	addr string      // "" = 127.0.0.1:0
	tls  *tls.Config // nil = plaintext
	// wrap replaces the flowctl service implementation (to mimic other servers).
	wrap func(*server.Server) flowctlv1.ControlPlaneServiceServer
	opts server.Options // the server's options
}

func startServer(t testing.TB, o serverOpt) *testServer {
	t.Helper()
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	// The port of a just-stopped server may take a moment to be free again.
	testutil.EventuallyWhy(t, 5*time.Second, "listening on "+addr, func() (bool, string) {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil, fmt.Sprint(err)
	})
	srv, err := server.New(o.opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	cc := &connCounter{}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(cc),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if o.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.tls)))
	}
	g := grpc.NewServer(opts...)
	if o.wrap != nil {
		flowctlv1.RegisterControlPlaneServiceServer(g, o.wrap(srv))
	} else {
		srv.Register(g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(ctx) })
	wg.Go(func() { _ = g.Serve(lis) })
	ts := &testServer{addr: lis.Addr().String(), srv: srv, g: g, conns: cc}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			g.Stop()
			cancel()
			wg.Wait()
			_ = srv.Close()
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) status(id string) (*flowctlv1.ComponentStatusResponse, error) {
	return ts.srv.GetComponentStatus(context.Background(), &flowctlv1.ComponentStatusRequest{ServiceId: id})
}

func (ts *testServer) count() int { return len(ts.srv.Services()) }

// runClient creates a client for cfg and runs it until the test ends.
func runClient(t *testing.T, cfg control.Config) *control.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := control.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// fakePipeline is a Pipeline whose health and metrics the test sets.
type fakePipeline struct {
	mu      sync.Mutex
	healthy bool
	metrics map[string]float64
	details map[string]string
}

func newPipeline(metrics map[string]float64, details map[string]string) *fakePipeline {
	return &fakePipeline{healthy: true, metrics: metrics, details: details}
}

func (p *fakePipeline) GetMetrics() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.metrics)
}

func (p *fakePipeline) IsHealthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy
}

func (p *fakePipeline) GetHealthDetails() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.details)
}

// statusPipeline adds a StatusProvider.
type statusPipeline struct {
	*fakePipeline
	state string
}

func (p statusPipeline) HealthState() string { return p.state }

func reg(name string) control.Registration {
	return control.Registration{
		ServiceID: control.ServiceID("", name),
		Name:      name,
		Version:   "test",
		Metadata:  map[string]string{"config_file": "/etc/cdp/" + name + ".yaml", "network": "testnet"},
	}
}

func TestTwoHundredPipelinesOneConnection(t *testing.T) {
	ts := startServer(t, serverOpt{})
	promReg := prometheus.NewRegistry()
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: time.Second, Registerer: promReg})
	if !c.Enabled() {
		t.Fatal("client with an endpoint is not enabled")
	}
	const n = 200
	for i := range n {
		c.Attach(reg(fmt.Sprintf("Pipeline%03d", i)), newPipeline(map[string]float64{"pipeline.component_count": 3}, nil))
	}
	testutil.Eventually(t, 30*time.Second, "200 registrations", func() bool { return ts.count() == n })
	for i := range n {
		id := control.ServiceID("", fmt.Sprintf("Pipeline%03d", i))
		testutil.Eventually(t, 10*time.Second, id+" confirmed", func() bool { return c.Registered(id) })
		st, err := ts.status(id)
		if err != nil {
			t.Fatalf("GetComponentStatus(%s): %v", id, err)
		}
		md := st.GetComponent().GetMetadata()
		if md["service_type"] != "cdp-pipeline" || md["network"] != "testnet" {
			t.Fatalf("%s metadata = %v, want service_type=cdp-pipeline and the caller's keys", id, md)
		}
		if st.GetComponent().GetType() != flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED {
			t.Fatalf("%s type = %v", id, st.GetComponent().GetType())
		}
	}
	if got := ts.conns.total.Load(); got != 1 {
		t.Fatalf("server saw %d connections, want 1 shared by all pipelines", got)
	}
	if got := metricValue(t, promReg, "cdpd_control_registered_pipelines"); got != n {
		t.Fatalf("cdpd_control_registered_pipelines = %v, want %d", got, n)
	}
	if got := metricValue(t, promReg, "cdpd_control_registrations_total"); got != n {
		t.Fatalf("cdpd_control_registrations_total = %v, want %d", got, n)
	}
	if got := metricValue(t, promReg, "cdpd_control_heartbeats_total"); got < n {
		t.Fatalf("cdpd_control_heartbeats_total = %v, want >= %d (one per registration)", got, n)
	}
}

// metricValue sums the current values of a metric family of promReg.
func metricValue(t *testing.T, promReg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return v
}

func TestHeartbeatCarriesMetricsAndHealthDetails(t *testing.T) {
	ts := startServer(t, serverOpt{})
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 200 * time.Millisecond})
	p := newPipeline(map[string]float64{
		"pipeline.uptime_seconds":                                 12.5,
		"source.FSBufferedStorageSourceAdapter.processed_ledgers": 42,
		"processor.ContractEvent.events_found":                    1e21,
		"consumer.SaveToParquet.ratio":                            0.000001,
		"broken.nan":                                              nan(),
	}, map[string]string{"pipeline_id": "contract-events", "SaveToParquet_status": "healthy"})
	id := control.ServiceID("", "ContractEvents")
	c.Attach(reg("ContractEvents"), statusPipeline{p, "degraded"})

	want := map[string]string{
		"pipeline.uptime_seconds":                                 "12.5",
		"source.FSBufferedStorageSourceAdapter.processed_ledgers": "42",
		"processor.ContractEvent.events_found":                    "1000000000000000000000",
		"consumer.SaveToParquet.ratio":                            "0.000001",
		"health.pipeline_id":                                      "contract-events",
		"health.SaveToParquet_status":                             "healthy",
	}
	var st *flowctlv1.ComponentStatusResponse
	testutil.Eventually(t, 10*time.Second, "a heartbeat with metrics", func() bool {
		var err error
		st, err = ts.status(id)
		return err == nil && st.GetMetrics()["pipeline.uptime_seconds"] != ""
	})
	for k, v := range want {
		if got := st.GetMetrics()[k]; got != v {
			t.Errorf("metric %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := st.GetMetrics()["broken.nan"]; ok {
		t.Errorf("NaN metric was sent: %v", st.GetMetrics())
	}
	if st.GetStatus() != flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED {
		t.Errorf("status = %v, want DEGRADED", st.GetStatus())
	}

	// Later heartbeats carry the pipeline's current state.
	p.mu.Lock()
	p.metrics["source.FSBufferedStorageSourceAdapter.processed_ledgers"] = 43
	p.mu.Unlock()
	testutil.Eventually(t, 10*time.Second, "the updated metric", func() bool {
		st, err := ts.status(id)
		return err == nil && st.GetMetrics()["source.FSBufferedStorageSourceAdapter.processed_ledgers"] == "43"
	})
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// panicky is a pipeline whose metrics panic.
type panicky struct{ *fakePipeline }

func (panicky) GetMetrics() map[string]float64 { panic("metrics exploded") }

func TestBadPipelinesDoNotBreakHeartbeats(t *testing.T) {
	ts := startServer(t, serverOpt{})
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 100 * time.Millisecond})
	boom, long := reg("Boom"), reg("Long")
	c.Attach(boom, panicky{newPipeline(nil, nil)})
	c.Attach(long, newPipeline(nil, map[string]string{"error": strings.Repeat("é", 5000), "bad\xffkey": "x\xfey"}))
	testutil.Eventually(t, 10*time.Second, "both heartbeating", func() bool {
		a, err1 := ts.status(boom.ServiceID)
		b, err2 := ts.status(long.ServiceID)
		return err1 == nil && err2 == nil && a.GetMetrics()["health.control_error"] != "" && b.GetMetrics()["health.error"] != ""
	})
	a, _ := ts.status(boom.ServiceID)
	if a.GetStatus() != flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY || !strings.Contains(a.GetMetrics()["health.control_error"], "metrics exploded") {
		t.Errorf("panicking pipeline: status %v, metrics %v", a.GetStatus(), a.GetMetrics())
	}
	b, _ := ts.status(long.ServiceID)
	v := b.GetMetrics()["health.error"]
	if len(v) > control.MaxDetailLen || !strings.HasSuffix(v, "…") || !utf8.ValidString(v) {
		t.Errorf("long detail: %d bytes, valid UTF-8 %v, suffix %q", len(v), utf8.ValidString(v), v[max(0, len(v)-6):])
	}
	if b.GetMetrics()["health.bad\uFFFDkey"] != "x\uFFFDy" {
		t.Errorf("invalid UTF-8 not replaced: %q", b.GetMetrics())
	}
}

func TestReattachReplaces(t *testing.T) {
	ts := startServer(t, serverOpt{})
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 200 * time.Millisecond})
	r := reg("Replace")
	c.Attach(r, newPipeline(map[string]float64{"m": 1}, nil))
	testutil.Eventually(t, 10*time.Second, "first version", func() bool {
		st, err := ts.status(r.ServiceID)
		return err == nil && st.GetMetrics()["m"] == "1"
	})
	r.Version = "v2"
	c.Attach(r, newPipeline(map[string]float64{"m": 2}, nil))
	testutil.Eventually(t, 10*time.Second, "second version", func() bool {
		st, err := ts.status(r.ServiceID)
		return err == nil && st.GetMetrics()["m"] == "2" && st.GetComponent().GetVersion() == "v2"
	})
	if n := ts.count(); n != 1 {
		t.Fatalf("server has %d services after re-Attach, want 1", n)
	}
}

func TestDetachUnregisters(t *testing.T) {
	ts := startServer(t, serverOpt{})
	promReg := prometheus.NewRegistry()
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 100 * time.Millisecond, Registerer: promReg})
	keep, gone := reg("Keep"), reg("Gone")
	c.Attach(keep, newPipeline(nil, nil))
	c.Attach(gone, newPipeline(nil, nil))
	testutil.Eventually(t, 10*time.Second, "both registered", func() bool {
		return c.Registered(keep.ServiceID) && c.Registered(gone.ServiceID)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Detach(ctx, gone.ServiceID); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if c.Registered(gone.ServiceID) {
		t.Fatal("Registered is true after Detach")
	}
	if _, err := ts.status(gone.ServiceID); status.Code(err) != codes.NotFound {
		t.Fatalf("GetComponentStatus after Detach: err = %v, want NotFound", err)
	}
	// No heartbeat or registration brings it back: the scheduler goes on (the other pipeline
	// heartbeats three more times) and the detached one stays gone.
	hb := metricValue(t, promReg, "cdpd_control_heartbeats_total")
	testutil.Eventually(t, 10*time.Second, "three more heartbeats of the other pipeline", func() bool {
		return metricValue(t, promReg, "cdpd_control_heartbeats_total") >= hb+3
	})
	if _, err := ts.status(gone.ServiceID); status.Code(err) != codes.NotFound {
		t.Fatalf("detached pipeline came back: err = %v", err)
	}
	if _, err := ts.status(keep.ServiceID); err != nil {
		t.Fatalf("the other pipeline: %v", err)
	}
	// Detaching an unknown id is a no-op.
	if err := c.Detach(ctx, "cdp-never-attached"); err != nil {
		t.Fatalf("Detach of an unknown id: %v", err)
	}
}

func TestDetachDoesNotWaitForUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	c := runClient(t, control.Config{Endpoint: addr, HeartbeatInterval: 100 * time.Millisecond, RPCTimeout: 30 * time.Second})
	r := reg("Lonely")
	c.Attach(r, newPipeline(nil, nil))
	// A registration is in flight, waiting for the connection.
	testutil.Eventually(t, 10*time.Second, "a registration in flight", func() bool { return c.Exchanging(r.ServiceID) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = c.Detach(ctx, r.ServiceID) // best effort: an error is fine
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Detach took %v with a 200ms context", d)
	}
	if c.Registered(r.ServiceID) {
		t.Fatal("Registered after Detach")
	}
}

func TestDisabledClient(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := control.NewClient(control.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("client without endpoint is enabled")
	}
	before := goroutines()
	c.Attach(reg("Nothing"), newPipeline(nil, nil))
	if c.Registered(control.ServiceID("", "Nothing")) {
		t.Fatal("disabled client reports a registration")
	}
	if err := c.Detach(context.Background(), control.ServiceID("", "Nothing")); err != nil {
		t.Fatal(err)
	}
	if after := goroutines(); after > before {
		t.Fatalf("disabled client started goroutines: %d -> %d", before, after)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestHealthStatusOf(t *testing.T) {
	healthy, sick := newPipeline(nil, nil), newPipeline(nil, nil)
	sick.healthy = false
	tests := []struct {
		name string
		h    control.HealthChecker
		want flowctlv1.HealthStatus
	}{
		{"healthy, no StatusProvider", healthy, flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY},
		{"unhealthy, no StatusProvider", sick, flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY},
		{"starting", statusPipeline{healthy, "starting"}, flowctlv1.HealthStatus_HEALTH_STATUS_STARTING},
		{"healthy", statusPipeline{sick, "healthy"}, flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY},
		{"degraded", statusPipeline{healthy, "degraded"}, flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED},
		{"unhealthy", statusPipeline{healthy, "unhealthy"}, flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY},
		{"stopping", statusPipeline{healthy, "stopping"}, flowctlv1.HealthStatus_HEALTH_STATUS_STOPPING},
		{"completed", statusPipeline{sick, "completed"}, flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY},
		{"upper case", statusPipeline{healthy, " Degraded "}, flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED},
		{"unknown state, healthy", statusPipeline{healthy, "weird"}, flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY},
		{"empty state, unhealthy", statusPipeline{sick, ""}, flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY},
	}
	for _, tc := range tests {
		if got := control.HealthStatusOf(tc.h); got != tc.want {
			t.Errorf("%s: HealthStatusOf = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestServiceID(t *testing.T) {
	tests := []struct{ instance, name, want string }{
		{"", "ContractEvents", "cdp-contract-events"},
		{"", "contract-events", "cdp-contract-events"},
		{"", "contract_events", "cdp-contract-events"},
		{"", "Contract Events!", "cdp-contract-events"},
		{"", "HTTPServer", "cdp-http-server"},
		{"", "ledger2Parquet", "cdp-ledger2-parquet"},
		{"", "V2Events", "cdp-v2-events"},
		{"", "payments", "cdp-payments"},
		{"", "--a__b--", "cdp-a-b"},
		{"", "ÜberPipe", "cdp-ber-pipe"},
		{"", "", "cdp-pipeline"},
		{"", "!!!", "cdp-pipeline"},
		{"eu-1", "ContractEvents", "eu-1-cdp-contract-events"},
		{"EU West", "payments", "eu-west-cdp-payments"},
		{"???", "payments", "cdp-payments"},
	}
	for _, tc := range tests {
		if got := control.ServiceID(tc.instance, tc.name); got != tc.want {
			t.Errorf("ServiceID(%q, %q) = %q, want %q", tc.instance, tc.name, got, tc.want)
		}
	}
}

func goroutines() int { return runtime.NumGoroutine() }
