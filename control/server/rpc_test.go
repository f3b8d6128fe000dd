package server

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func TestRegisterChoosesServiceID(t *testing.T) {
	r := start(t, Options{})
	tests := []struct {
		name       string
		req        *flowctlv1.RegisterRequest
		want       string // exact id, or prefix when wantPrefix
		wantPrefix bool
	}{
		{"component_id wins", &flowctlv1.RegisterRequest{ComponentId: "cdp-a", Component: &flowctlv1.ComponentInfo{Id: "other"}}, "cdp-a", false},
		{"component.id next", &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{Id: "cdp-b"}}, "cdp-b", false},
		{"generated for a source", &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{Type: typeSource}}, "source-", true},
		{"generated untyped", &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{Name: "x"}}, "component-", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.cp.RegisterComponent(ctxT(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			id := resp.GetServiceId()
			if tc.wantPrefix && (!strings.HasPrefix(id, tc.want) || len(id) <= len(tc.want)) || !tc.wantPrefix && id != tc.want {
				t.Fatalf("service id %q, want %q (prefix %v)", id, tc.want, tc.wantPrefix)
			}
			st := getStatus(t, r, id)
			if st.GetComponent().GetId() != id || st.GetStatus() != healthy || st.GetRegisteredAt() == nil || st.GetLastHeartbeat() == nil {
				t.Fatalf("status after registration: %v", st)
			}
			if resp.GetConnectionInfo()["control_plane_endpoint"] != r.addr {
				t.Fatalf("connection info %v, want endpoint %s", resp.GetConnectionInfo(), r.addr)
			}
		})
	}
	// Two generated ids differ.
	a, _ := r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{}})
	b, _ := r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{}})
	if a.GetServiceId() == b.GetServiceId() {
		t.Fatalf("generated ids collide: %s", a.GetServiceId())
	}
}

func TestRegisterAssignsTopicsLikeUpstream(t *testing.T) {
	r := start(t, Options{})
	for _, tc := range []struct {
		typ  flowctlv1.ComponentType
		want []string
	}{
		{typeSource, []string{"stellar.ledger.v1"}},
		{typeProcessor, []string{"stellar.ledger.v1"}},
		{typeConsumer, nil},
		{typeNone, nil},
	} {
		resp, err := r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{
			Type: tc.typ, OutputEventTypes: []string{"stellar.ledger"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(resp.GetAssignedTopics(), tc.want) {
			t.Errorf("%v: topics %v, want %v", tc.typ, resp.GetAssignedTopics(), tc.want)
		}
	}
}

func TestReRegisterReplaces(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "cdp-x", typeNone, map[string]string{"version": "1"})
	heartbeat(t, r, "cdp-x", degraded, map[string]string{"a": "1"})
	register(t, r, "cdp-x", typeNone, map[string]string{"version": "2"})
	st := getStatus(t, r, "cdp-x")
	if st.GetComponent().GetMetadata()["version"] != "2" || len(st.GetMetrics()) != 0 || st.GetStatus() != healthy {
		t.Fatalf("after re-registration: %v", st)
	}
	list, err := r.cp.ListComponents(ctxT(t), &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if err != nil || len(list.GetComponents()) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
}

func TestHeartbeatMergesMetricsAndStatus(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now})
	register(t, r, "svc", typeNone, nil)
	steps := []struct {
		status      flowctlv1.HealthStatus
		metrics     map[string]string
		wantStatus  flowctlv1.HealthStatus
		wantMetrics map[string]string
	}{
		{starting, map[string]string{"a": "1"}, starting, map[string]string{"a": "1"}},
		{healthy, map[string]string{"b": "2"}, healthy, map[string]string{"a": "1", "b": "2"}},
		{unknown, map[string]string{"a": "3"}, healthy, map[string]string{"a": "3", "b": "2"}},
		{degraded, nil, degraded, map[string]string{"a": "3", "b": "2"}},
		{unknown, nil, degraded, map[string]string{"a": "3", "b": "2"}},
		{stopping, map[string]string{"c": ""}, stopping, map[string]string{"a": "3", "b": "2", "c": ""}},
	}
	for i, step := range steps {
		before := getStatus(t, r, "svc").GetLastHeartbeat().AsTime()
		clock.Advance(time.Second) // last_heartbeat must move
		heartbeat(t, r, "svc", step.status, step.metrics)
		st := getStatus(t, r, "svc")
		if st.GetStatus() != step.wantStatus || !maps.Equal(st.GetMetrics(), step.wantMetrics) {
			t.Fatalf("step %d: status %v metrics %v, want %v %v", i, st.GetStatus(), st.GetMetrics(), step.wantStatus, step.wantMetrics)
		}
		if !st.GetLastHeartbeat().AsTime().After(before) {
			t.Fatalf("step %d: last heartbeat %v not after %v", i, st.GetLastHeartbeat().AsTime(), before)
		}
	}
}

func TestUnknownServiceIsNotFound(t *testing.T) {
	r := start(t, Options{})
	_, err := r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: "nope"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("heartbeat of unknown id: %v", err)
	}
	_, err = r.cp.GetComponentStatus(ctxT(t), &flowctlv1.ComponentStatusRequest{ServiceId: "nope"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("status of unknown id: %v", err)
	}
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "nope"}); err != nil {
		t.Fatalf("unregistering an unknown id must succeed as upstream: %v", err)
	}
}

func TestUnregister(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "a", typeNone, nil)
	register(t, r, "b", typeNone, nil)
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: "a"}); status.Code(err) != codes.NotFound {
		t.Fatalf("heartbeat after unregister: %v", err)
	}
	list, _ := r.cp.ListComponents(ctxT(t), &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if got := ids(list.GetComponents()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("list after unregister: %v", got)
	}
}

func ids(cs []*flowctlv1.ComponentStatusResponse) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.GetComponent().GetId())
	}
	return out
}

func TestListComponentsFilters(t *testing.T) {
	r := start(t, Options{})
	for _, s := range []struct {
		id  string
		typ flowctlv1.ComponentType
		st  flowctlv1.HealthStatus
	}{
		{"src-ok", typeSource, healthy}, {"src-bad", typeSource, unhealthy},
		{"proc-deg", typeProcessor, degraded}, {"cons-ok", typeConsumer, healthy},
		{"pipe-start", typeNone, starting},
	} {
		register(t, r, s.id, s.typ, nil)
		heartbeat(t, r, s.id, s.st, nil)
	}
	tests := []struct {
		name string
		req  *flowctlv1.ListComponentsRequest
		want []string
	}{
		{"healthy only", &flowctlv1.ListComponentsRequest{}, []string{"cons-ok", "src-ok"}},
		{"all", &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true}, []string{"cons-ok", "pipe-start", "proc-deg", "src-bad", "src-ok"}},
		{"sources healthy", &flowctlv1.ListComponentsRequest{TypeFilter: typeSource}, []string{"src-ok"}},
		{"sources all", &flowctlv1.ListComponentsRequest{TypeFilter: typeSource, IncludeUnhealthy: true}, []string{"src-bad", "src-ok"}},
		{"processors healthy", &flowctlv1.ListComponentsRequest{TypeFilter: typeProcessor}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.cp.ListComponents(ctxT(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(resp.GetComponents()); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiscoverComponents(t *testing.T) {
	r := start(t, Options{})
	for _, c := range []*flowctlv1.ComponentInfo{
		{Id: "src", Type: typeSource, OutputEventTypes: []string{"ledger"}, Metadata: map[string]string{"network": "pubnet"}},
		{Id: "proc", Type: typeProcessor, InputEventTypes: []string{"ledger"}, OutputEventTypes: []string{"event"}, Metadata: map[string]string{"network": "testnet"}},
		{Id: "pipe", Type: typeNone, Metadata: map[string]string{"service_type": "cdp-pipeline", "network": "pubnet"}},
	} {
		if _, err := r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{Component: c}); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat(t, r, "pipe", unhealthy, nil) // discovery ignores health
	tests := []struct {
		name string
		req  *flowctlv1.DiscoveryRequest
		want []string
	}{
		{"everything", &flowctlv1.DiscoveryRequest{}, []string{"pipe", "proc", "src"}},
		{"by type", &flowctlv1.DiscoveryRequest{Type: typeProcessor}, []string{"proc"}},
		{"by input or output event type", &flowctlv1.DiscoveryRequest{EventTypes: []string{"ledger"}}, []string{"proc", "src"}},
		{"any of the event types", &flowctlv1.DiscoveryRequest{EventTypes: []string{"nothing", "event"}}, []string{"proc"}},
		{"metadata", &flowctlv1.DiscoveryRequest{MetadataFilters: map[string]string{"network": "pubnet"}}, []string{"pipe", "src"}},
		{"all metadata must match", &flowctlv1.DiscoveryRequest{MetadataFilters: map[string]string{"network": "pubnet", "service_type": "cdp-pipeline"}}, []string{"pipe"}},
		{"type and event", &flowctlv1.DiscoveryRequest{Type: typeSource, EventTypes: []string{"event"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.cp.DiscoverComponents(ctxT(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range resp.GetComponents() {
				got = append(got, c.GetId())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "svc", typeNone, nil)
	big := func(n int, keyLen, valLen int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			k := strings.Repeat("k", keyLen-8) + strings.Repeat("0", 8-len(strconv.Itoa(i))) + strconv.Itoa(i)
			m[k] = strings.Repeat("v", valLen)
		}
		return m
	}
	long := strings.Repeat("x", MaxIDLen+1)
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"register without component", func(ctx context.Context) error {
			_, err := r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: "x"})
			return err
		}},
		{"register with a long id", func(ctx context.Context) error {
			_, err := r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: long, Component: &flowctlv1.ComponentInfo{}})
			return err
		}},
		{"register with an unknown type", func(ctx context.Context) error {
			_, err := r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{Type: 42}})
			return err
		}},
		{"register with too much metadata", func(ctx context.Context) error {
			_, err := r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{Component: &flowctlv1.ComponentInfo{Metadata: big(MaxMetadata+1, 16, 1)}})
			return err
		}},
		{"heartbeat without id", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{})
			return err
		}},
		{"heartbeat with an unknown status", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Status: 9})
			return err
		}},
		{"heartbeat with too many metrics", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: big(MaxMetricEntries+1, 12, 1)})
			return err
		}},
		{"heartbeat with too many metric bytes", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: big(20, 100, MaxValueLen)})
			return err
		}},
		{"heartbeat with a long key", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: big(1, MaxKeyLen+1, 1)})
			return err
		}},
		{"heartbeat with a long value", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: big(1, 10, MaxValueLen+1)})
			return err
		}},
		{"heartbeat with an empty key", func(ctx context.Context) error {
			_, err := r.cp.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: map[string]string{"": "1"}})
			return err
		}},
		{"status without id", func(ctx context.Context) error {
			_, err := r.cp.GetComponentStatus(ctx, &flowctlv1.ComponentStatusRequest{})
			return err
		}},
		{"unregister without id", func(ctx context.Context) error {
			_, err := r.cp.UnregisterComponent(ctx, &flowctlv1.UnregisterRequest{})
			return err
		}},
		{"list with an unknown type", func(ctx context.Context) error {
			_, err := r.cp.ListComponents(ctx, &flowctlv1.ListComponentsRequest{TypeFilter: 7})
			return err
		}},
		{"history without id", func(ctx context.Context) error {
			_, err := r.hist.GetHistory(ctx, nil)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(ctxT(t)); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
		})
	}
	// Nothing invalid reached the registry.
	if st := getStatus(t, r, "svc"); len(st.GetMetrics()) != 0 {
		t.Fatalf("rejected metrics were stored: %d entries", len(st.GetMetrics()))
	}
}

func TestMergedMetricsAreBounded(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "svc", typeNone, nil)
	batch := func(from int) map[string]string {
		m := make(map[string]string)
		for i := from; i < from+MaxMetricEntries/2+1; i++ {
			m["m"+strconv.Itoa(i)] = "1"
		}
		return m
	}
	heartbeat(t, r, "svc", healthy, batch(0))
	_, err := r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: "svc", Metrics: batch(10000)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("merge beyond %d entries: %v", MaxMetricEntries, err)
	}
	// Updating existing keys is still fine.
	heartbeat(t, r, "svc", healthy, batch(0))
}

// Invalid UTF-8 in a request that decodes (protobuf-go refuses to marshal it, so the handlers
// are called directly); raw invalid bytes on the wire are TestMalformedRequestsAreInvalidArgument.
func TestInvalidUTF8(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	bad := string([]byte{0xff, 0xfe})
	if _, err := srv.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: bad, Component: &flowctlv1.ComponentInfo{}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("register: %v", err)
	}
	if _, err := srv.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: "ok", Component: &flowctlv1.ComponentInfo{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: "ok", Metrics: map[string]string{"a": bad}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("heartbeat: %v", err)
	}
}
