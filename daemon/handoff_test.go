package daemon

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// startServer serves a control plane on loopback for the test and returns its address and a
// flowctl.v1 client.
func startServer(t *testing.T) (string, flowctlv1.ControlPlaneServiceClient) {
	t.Helper()
	srv, err := server.New(server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, lis, srv, nil) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
		_ = srv.Close()
	})
	return lis.Addr().String(), flowctlv1.NewControlPlaneServiceClient(cc)
}

// A replica does not start a pipeline of its shard that another live instance still runs
// (the old owner during a shard count change); it starts it once the other lets go.
func TestHandoffWaitsForTheHolder(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	addr, cp := startServer(t)
	const name = "moving"
	me := shard.Spec{Index: shard.Of(name, 2), Count: 2}
	ctx := context.Background()

	// The old owner: instance "old-0" of a 1-shard fleet, heartbeating.
	if _, err := cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: "cdp-" + name, Component: &flowctlv1.ComponentInfo{
		Name: name, Metadata: map[string]string{contract.MetaServiceType: contract.ServiceTypePipeline,
			contract.MetaInstance: "old-0", contract.MetaShard: "0", contract.MetaShardCount: "1"}}}); err != nil {
		t.Fatal(err)
	}
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		for hbCtx.Err() == nil {
			_, _ = cp.Heartbeat(hbCtx, &flowctlv1.HeartbeatRequest{ServiceId: "cdp-" + name, Status: flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY})
			select {
			case <-hbCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { stopHB(); <-hbDone }()

	conf := t.TempDir()
	writeAtomic(t, filepath.Join(conf, name+".yaml"), pipelineYAML(name, ds.Dir, ds.First, ds.First))
	base, stop := runDaemon(t, Config{ConfigDir: conf, Instance: "new-1", Shard: me, FlowctlEndpoint: addr, HeartbeatInterval: 200 * time.Millisecond})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	s := statusOf(t, base, name)
	if s.Status != StatusWaiting || !strings.Contains(s.LastError, "old-0 (shard 0/1)") || s.Generation != 0 {
		t.Fatalf("while old-0 heartbeats it: %+v, want waiting on old-0", s)
	}
	if got := metricValue(t, base, "cdpd_pipelines_waiting_handoff"); got != "1" {
		t.Errorf("cdpd_pipelines_waiting_handoff = %q", got)
	}
	// Still waiting three checks later.
	checks := func() float64 {
		v, _ := strconv.ParseFloat(metricValue(t, base, "cdpd_handoff_checks_total"), 64)
		return v
	}
	asked := checks()
	testutil.Eventually(t, 20*time.Second, "three more checks", func() bool { return checks() >= asked+3 })
	if s := statusOf(t, base, name); s.Status != StatusWaiting {
		t.Fatalf("started while old-0 still heartbeats: %+v", s)
	}

	// The old owner lets go (its replica dropped the pipeline and unregistered).
	stopHB()
	<-hbDone
	if _, err := cp.UnregisterComponent(ctx, &flowctlv1.UnregisterRequest{ServiceId: "cdp-" + name}); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWhy(t, 20*time.Second, "the pipeline starts here and registers under this instance", func() (bool, string) {
		s := statusOf(t, base, name)
		st, err := cp.GetComponentStatus(ctx, &flowctlv1.ComponentStatusRequest{ServiceId: "cdp-" + name})
		if err != nil {
			return false, s.Status + " " + err.Error()
		}
		return s.Status == "completed" && st.GetComponent().GetMetadata()[contract.MetaInstance] == "new-1", s.Status
	})
	if got := metricValue(t, base, "cdpd_pipelines_waiting_handoff"); got != "0" {
		t.Errorf("cdpd_pipelines_waiting_handoff = %q after the hand-off", got)
	}
}

// A holder silent past the TTL (its replica was killed) does not hold the pipeline; neither
// does this instance's own earlier registration (a restart of the same replica).
func TestHandoffIgnoresStaleAndOwnRegistrations(t *testing.T) {
	addr, cp := startServer(t)
	ctx := context.Background()
	for _, r := range []struct{ name, inst string }{{"mine", "same"}, {"other", "gone"}} {
		if _, err := cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: "cdp-" + r.name, Component: &flowctlv1.ComponentInfo{
			Name: r.name, Metadata: map[string]string{contract.MetaInstance: r.inst}}}); err != nil {
			t.Fatal(err)
		}
	}
	client, err := control.NewClient(control.Config{Endpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	now := time.Now()
	d := &daemon{cfg: Config{Instance: "same", Shard: shard.Spec{Index: 0, Count: 2}, HeartbeatInterval: time.Second},
		client: client, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	if h := d.holder(ctx, "mine"); h != "" {
		t.Errorf("this instance's own registration holds its pipeline: %q", h)
	}
	if h := d.holder(ctx, "other"); !strings.HasPrefix(h, "gone, last heartbeat") {
		t.Errorf("a fresh registration of another instance: holder %q", h)
	}
	if h := d.holder(ctx, "never-registered"); h != "" {
		t.Errorf("unknown id: holder %q", h)
	}
	// Silent for the TTL of a 1 s interval (30 s): let go.
	now = now.Add(server.HeartbeatTTLFor(time.Second) + time.Second)
	if h := d.holder(ctx, "other"); h != "" {
		t.Errorf("a registration silent past the TTL still holds: %q", h)
	}
}
