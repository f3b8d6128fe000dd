package server

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// An upstream CDP process, as its client speaks (pkg/control of cdp-pipeline-workflow:
// Register a SERVICE_TYPE_PIPELINE with service_name, then numeric heartbeats by id), lands in
// the same registry as cdpd's pipelines: a cdp-pipeline with its metrics, its history, the
// same TTL, and visible through both protocols.
func TestLegacyClientInTheSameRegistry(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second})
	legacy := flowctllegacy.NewControlPlaneClient(r.conn)
	ctx := ctxT(t)

	ack, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{
		ServiceId:   "cdp-upstream-events",
		ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE,
		Metadata: map[string]string{"service_name": "upstream-events", "config_name": "upstream-events",
			"version": "v2.1.0", "source_type": "BufferedStorageSourceAdapter"},
	})
	if err != nil || ack.GetServiceId() != "cdp-upstream-events" {
		t.Fatalf("legacy Register: %v, %v", ack, err)
	}
	st := getStatus(t, r, "cdp-upstream-events")
	info := st.GetComponent()
	if info.GetType() != typeNone || info.GetName() != "upstream-events" || info.GetVersion() != "v2.1.0" ||
		info.GetMetadata()[contract.MetaServiceType] != contract.ServiceTypePipeline ||
		info.GetMetadata()["api"] != LegacyAPI || info.GetMetadata()["source_type"] != "BufferedStorageSourceAdapter" ||
		st.GetStatus() != healthy {
		t.Fatalf("through flowctl.v1 the legacy registration is %v", st)
	}

	clock.Advance(10 * time.Second)
	if _, err := legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "cdp-upstream-events", Metrics: map[string]float64{
		"pipeline.uptime_seconds": 12.5, "pipeline.component_count": 3, "processor.ContractEvent.events_found": 42,
		"bad": math.NaN(), "worse": math.Inf(1),
	}}); err != nil {
		t.Fatalf("legacy Heartbeat: %v", err)
	}
	st = getStatus(t, r, "cdp-upstream-events")
	want := map[string]string{"pipeline.uptime_seconds": "12.5", "pipeline.component_count": "3", "processor.ContractEvent.events_found": "42"}
	if len(st.GetMetrics()) != len(want) || !st.GetLastHeartbeat().AsTime().Equal(clock.Now()) || st.GetStatus() != healthy {
		t.Errorf("after a legacy heartbeat: %v", st)
	}
	for k, v := range want {
		if st.GetMetrics()[k] != v {
			t.Errorf("metric %s = %q, want %q", k, st.GetMetrics()[k], v)
		}
	}
	hist, err := r.hist.GetHistory(ctx, &cdpdv1.GetHistoryRequest{ServiceId: "cdp-upstream-events"})
	if err != nil || len(hist.GetSamples()) != 1 || hist.GetSamples()[0].GetMetrics()["processor.ContractEvent.events_found"] != "42" {
		t.Errorf("history of the legacy service: %v, %v", hist, err)
	}

	// Both protocols list both kinds of service.
	register(t, r, "cdp-native", typeNone, map[string]string{contract.MetaServiceType: contract.ServiceTypePipeline})
	heartbeat(t, r, "cdp-native", healthy, map[string]string{"pipeline.current_ledger": "58752001", "health.last_error": "none"})
	register(t, r, "sink-1", typeConsumer, nil)
	list, err := legacy.ListServices(ctx, &emptypb.Empty{})
	if err != nil || len(list.GetServices()) != 3 {
		t.Fatalf("legacy ListServices: %v, %v", list, err)
	}
	byID := map[string]*flowctllegacy.ServiceStatus{}
	for _, s := range list.GetServices() {
		byID[s.GetServiceId()] = s
	}
	if n := byID["cdp-native"]; n.GetServiceType() != flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE || !n.GetIsHealthy() ||
		n.GetMetrics()["pipeline.current_ledger"] != 58752001 || len(n.GetMetrics()) != 1 {
		t.Errorf("cdpd's pipeline through the legacy API: %v", n)
	}
	if s := byID["sink-1"]; s.GetServiceType() != flowctllegacy.ServiceType_SERVICE_TYPE_SINK {
		t.Errorf("a consumer through the legacy API: %v", s)
	}
	one, err := legacy.GetServiceStatus(ctx, &flowctllegacy.ServiceInfo{ServiceId: "cdp-upstream-events"})
	if err != nil || !one.GetIsHealthy() || one.GetMetrics()["pipeline.uptime_seconds"] != 12.5 ||
		one.GetServiceType() != flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE || !one.GetLastHeartbeat().AsTime().Equal(clock.Now()) {
		t.Errorf("legacy GetServiceStatus: %v, %v", one, err)
	}

	// The same TTL: silent past it, the janitor marks it unhealthy; the next heartbeat brings
	// it back.
	clock.Advance(31 * time.Second)
	heartbeat(t, r, "cdp-native", healthy, nil)
	r.srv.Sweep()
	if st := getStatus(t, r, "cdp-upstream-events"); st.GetStatus() != unhealthy {
		t.Errorf("silent legacy service: %v, want unhealthy", st.GetStatus())
	}
	if st := getStatus(t, r, "cdp-native"); st.GetStatus() != healthy {
		t.Errorf("heartbeating native service: %v", st.GetStatus())
	}
	if one, _ := legacy.GetServiceStatus(ctx, &flowctllegacy.ServiceInfo{ServiceId: "cdp-upstream-events"}); one.GetIsHealthy() {
		t.Error("the legacy API still says healthy after the TTL")
	}
	if _, err := legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "cdp-upstream-events"}); err != nil {
		t.Fatal(err)
	}
	if st := getStatus(t, r, "cdp-upstream-events"); st.GetStatus() != healthy || st.GetMetrics()["pipeline.uptime_seconds"] != "12.5" {
		t.Errorf("back from silence: %v", st)
	}

	// Unknown ids: NotFound, with the words every client matches.
	_, err = legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "nobody"})
	if status.Code(err) != codes.NotFound || !contract.IsNotFound(err) {
		t.Errorf("heartbeat of an unknown id: %v", err)
	}
	if _, err := legacy.GetServiceStatus(ctx, &flowctllegacy.ServiceInfo{ServiceId: "nobody"}); status.Code(err) != codes.NotFound {
		t.Errorf("status of an unknown id: %v", err)
	}
}

// The legacy API takes the limits of flowctl.v1: bad input is InvalidArgument, a full
// registry ResourceExhausted.
func TestLegacyLimits(t *testing.T) {
	r := start(t, Options{MaxServices: 1})
	legacy := flowctllegacy.NewControlPlaneClient(r.conn)
	ctx := ctxT(t)
	if _, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{ServiceId: "x", ServiceType: 99}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown service type: %v", err)
	}
	if _, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{ServiceId: strings.Repeat("x", MaxIDLen+1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("long id: %v", err)
	}
	if _, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{ServiceId: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{ServiceId: "b"}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("beyond MaxServices: %v", err)
	}
	big := map[string]float64{}
	for i := 0; i <= MaxMetricEntries; i++ {
		big["m"+strconv.Itoa(i)] = 1
	}
	if _, err := legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "a", Metrics: big}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("%d metrics: %v", len(big), err)
	}
	// A generated id when the registration names none.
	r2 := start(t, Options{})
	ack, err := flowctllegacy.NewControlPlaneClient(r2.conn).Register(ctx, &flowctllegacy.ServiceInfo{ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_SOURCE, OutputEventTypes: []string{"ledger"}})
	if err != nil || !strings.HasPrefix(ack.GetServiceId(), "source-") || len(ack.GetTopicNames()) != 1 || ack.GetTopicNames()[0] != "ledger.v1" {
		t.Errorf("registration without an id: %v, %v", ack, err)
	}
}

func TestLegacyRegistrationMapping(t *testing.T) {
	for _, c := range []struct {
		in       *flowctllegacy.ServiceInfo
		typ      flowctlv1.ComponentType
		svcType  string
		name     string
		endpoint string
	}{
		{&flowctllegacy.ServiceInfo{ServiceId: "p", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE,
			Metadata: map[string]string{"service_name": "events"}}, typeNone, contract.ServiceTypePipeline, "events", ""},
		{&flowctllegacy.ServiceInfo{ServiceId: "p", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE,
			Metadata: map[string]string{"config_name": "cfg"}, ComponentId: "comp"}, typeNone, contract.ServiceTypePipeline, "cfg", ""},
		{&flowctllegacy.ServiceInfo{ServiceId: "s", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_SOURCE,
			ComponentId: "stellar-source", HealthEndpoint: "http://x:9090/metrics", MaxInflight: 8}, typeSource, "", "stellar-source", "http://x:9090/metrics"},
		{&flowctllegacy.ServiceInfo{ServiceId: "q", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PROCESSOR}, typeProcessor, "", "q", ""},
		{&flowctllegacy.ServiceInfo{ServiceId: "k", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_SINK}, typeConsumer, "", "k", ""},
		{&flowctllegacy.ServiceInfo{ServiceId: "u"}, typeNone, "", "u", ""},
	} {
		req, err := legacyRegistration(c.in)
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		info := req.GetComponent()
		if req.GetComponentId() != c.in.GetServiceId() || info.GetType() != c.typ || info.GetName() != c.name ||
			info.GetMetadata()[contract.MetaServiceType] != c.svcType || info.GetEndpoint() != c.endpoint ||
			info.GetMetadata()["api"] != LegacyAPI || info.GetMetadata()["component_id"] != c.in.GetComponentId() {
			t.Errorf("%v -> %v", c.in, req)
		}
		if c.in.GetMaxInflight() != 0 && info.GetMetadata()["max_inflight"] != "8" {
			t.Errorf("max_inflight lost: %v", info.GetMetadata())
		}
	}
}

// The field numbers of withObsrvr/flowctl v0.0.5's proto/control_plane.proto, written byte by
// byte: what an upstream binary puts on the wire decodes into our generated types, and ours
// back, without any generated code on the writing side.
func TestLegacyWireNumbers(t *testing.T) {
	str := func(b []byte, n protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), s)
	}
	varint := func(b []byte, n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
	}
	msg := func(b []byte, n protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), m)
	}
	var b []byte
	b = str(b, 1, "id")
	b = varint(b, 2, 4) // SERVICE_TYPE_PIPELINE
	b = str(b, 3, "in")
	b = str(b, 4, "out")
	b = str(b, 5, "http://h/metrics")
	b = varint(b, 6, 7)
	b = msg(b, 7, str(str(nil, 1, "service_name"), 2, "p"))
	b = str(b, 8, "comp")
	var info flowctllegacy.ServiceInfo
	if err := proto.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.GetServiceId() != "id" || info.GetServiceType() != flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE ||
		info.GetInputEventTypes()[0] != "in" || info.GetOutputEventTypes()[0] != "out" || info.GetHealthEndpoint() != "http://h/metrics" ||
		info.GetMaxInflight() != 7 || info.GetMetadata()["service_name"] != "p" || info.GetComponentId() != "comp" {
		t.Errorf("ServiceInfo from upstream's numbers: %v", &info)
	}

	b = str(nil, 1, "id")
	b = msg(b, 2, varint(nil, 1, 1700000000))
	entry := str(nil, 1, "m")
	entry = protowire.AppendFixed64(protowire.AppendTag(entry, 2, protowire.Fixed64Type), math.Float64bits(2.5))
	b = msg(b, 3, entry)
	var hb flowctllegacy.ServiceHeartbeat
	if err := proto.Unmarshal(b, &hb); err != nil {
		t.Fatal(err)
	}
	if hb.GetServiceId() != "id" || hb.GetTimestamp().GetSeconds() != 1700000000 || hb.GetMetrics()["m"] != 2.5 {
		t.Errorf("ServiceHeartbeat from upstream's numbers: %v", &hb)
	}

	// What we answer, read with upstream's numbers.
	out, err := proto.Marshal(&flowctllegacy.ServiceStatus{ServiceId: "id", ServiceType: 4, IsHealthy: true, ComponentId: "c"})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[protowire.Number]any{}
	for len(out) > 0 {
		n, typ, l := protowire.ConsumeTag(out)
		out = out[l:]
		switch typ {
		case protowire.BytesType:
			v, l := protowire.ConsumeString(out)
			fields[n], out = v, out[l:]
		case protowire.VarintType:
			v, l := protowire.ConsumeVarint(out)
			fields[n], out = v, out[l:]
		default:
			t.Fatalf("field %d: wire type %d", n, typ)
		}
	}
	if fields[1] != "id" || fields[2] != uint64(4) || fields[3] != uint64(1) || fields[6] != "c" {
		t.Errorf("ServiceStatus fields by number: %v", fields)
	}
	out, _ = proto.Marshal(&flowctllegacy.RegistrationAck{ServiceId: "id", TopicNames: []string{"t"}})
	if n, _, _ := protowire.ConsumeTag(out); n != 1 {
		t.Errorf("RegistrationAck service_id is field %d", n)
	}
	if got := flowctllegacy.ControlPlane_ServiceDesc.ServiceName; got != "flowctl.ControlPlane" {
		t.Errorf("service name %q", got)
	}
}
