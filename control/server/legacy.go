package server

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// legacyServer serves flowctl's first protocol (package flowctl, service ControlPlane:
// Register, Heartbeat, GetServiceStatus, ListServices), which the upstream
// cdp-pipeline-workflow binary speaks, beside flowctl.v1 on the same gRPC server. Every RPC is
// translated and goes through the same store operations as flowctl.v1 (register, heartbeat,
// status): one registry, one TTL, one history, the same limits, observers and persistence. So
// an upstream CDP process and a cdpd pipeline are alike in `flowctl status`, the alerts and
// /metrics.
//
// Better than upstream's server, which shows such processes as UNSPECIFIED, UNHEALTHY, last
// heartbeat "never", and drops their metrics:
//   - SERVICE_TYPE_PIPELINE registers as a cdp-pipeline (component type UNSPECIFIED with
//     metadata service_type=cdp-pipeline, as cdpd registers its pipelines); SOURCE, PROCESSOR
//     and SINK as SOURCE, PROCESSOR and CONSUMER. The name is metadata service_name (what
//     upstream CDP sends: the pipeline's name), else config_name, else component_id, else the
//     id; metadata version is the version; health_endpoint the endpoint; component_id and
//     max_inflight are kept in the metadata, and api=flowctl.ControlPlane says how it came.
//   - A heartbeat carries no status: it is a heartbeat with status UNKNOWN (the service is
//     HEALTHY while it heartbeats, UNHEALTHY once silent for the TTL, as every service). Its
//     metrics (doubles) are stored as the decimal strings flowctl.v1 carries
//     (contract.MetricText; NaN and ±Inf left out), so `flowctl status <id>` shows them.
//   - GetServiceStatus and ListServices answer for every service, whichever protocol
//     registered it: is_healthy is status HEALTHY, metrics are the stored ones that are
//     numbers (health.* details are left out).
//
// The protocol has no Unregister: a process that stops is marked UNHEALTHY after the TTL.
// Unknown ids fail with codes.NotFound, "service <id> not found" (upstream: codes.Unknown with
// the same words).
type legacyServer struct {
	flowctllegacy.UnimplementedControlPlaneServer
	s *Server
}

// Metadata the legacy API adds to a registration.
const (
	// LegacyAPI is the value of metadata api on services registered through the legacy API.
	LegacyAPI = "flowctl.ControlPlane"

	metaAPI          = "api"
	metaComponentID  = "component_id"
	metaMaxInflight  = "max_inflight"
	metaServiceName  = "service_name" // upstream CDP: the pipeline's name
	metaConfigName   = "config_name"  // upstream CDP: the pipeline's name too
	legacyDescPrefix = "registered through flowctl's legacy API"
)

// Register implements flowctl.ControlPlane/Register.
func (l legacyServer) Register(ctx context.Context, info *flowctllegacy.ServiceInfo) (_ *flowctllegacy.RegistrationAck, err error) {
	defer l.s.observe("flowctl.Register", time.Now(), &err)
	req, err := legacyRegistration(info)
	if err != nil {
		return nil, err
	}
	id, _, err := l.s.register(ctx, req)
	if err != nil {
		return nil, err
	}
	ack := &flowctllegacy.RegistrationAck{ServiceId: id}
	switch info.GetServiceType() {
	case flowctllegacy.ServiceType_SERVICE_TYPE_SOURCE, flowctllegacy.ServiceType_SERVICE_TYPE_PROCESSOR:
		for _, et := range info.GetOutputEventTypes() {
			ack.TopicNames = append(ack.TopicNames, et+".v1")
		}
	}
	return ack, nil
}

// legacyRegistration translates a legacy registration into flowctl.v1's (see legacyServer).
func legacyRegistration(info *flowctllegacy.ServiceInfo) (*flowctlv1.RegisterRequest, error) {
	md := make(map[string]string, len(info.GetMetadata())+3)
	for k, v := range info.GetMetadata() {
		md[k] = v
	}
	var typ flowctlv1.ComponentType
	switch info.GetServiceType() {
	case flowctllegacy.ServiceType_SERVICE_TYPE_UNSPECIFIED:
	case flowctllegacy.ServiceType_SERVICE_TYPE_SOURCE:
		typ = flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE
	case flowctllegacy.ServiceType_SERVICE_TYPE_PROCESSOR:
		typ = flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR
	case flowctllegacy.ServiceType_SERVICE_TYPE_SINK:
		typ = flowctlv1.ComponentType_COMPONENT_TYPE_CONSUMER
	case flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE:
		md[contract.MetaServiceType] = contract.ServiceTypePipeline
	default:
		return nil, invalid("service_type: unknown service type %d", int32(info.GetServiceType()))
	}
	md[metaAPI] = LegacyAPI
	if c := info.GetComponentId(); c != "" {
		md[metaComponentID] = c
	}
	if n := info.GetMaxInflight(); n != 0 {
		md[metaMaxInflight] = strconv.Itoa(int(n))
	}
	name := info.GetServiceId()
	for _, n := range []string{md[metaServiceName], md[metaConfigName], info.GetComponentId()} {
		if n != "" {
			name = n
			break
		}
	}
	return &flowctlv1.RegisterRequest{
		ComponentId: info.GetServiceId(),
		Component: &flowctlv1.ComponentInfo{
			Id:               info.GetServiceId(),
			Name:             name,
			Description:      legacyDescPrefix + " (" + LegacyAPI + ")",
			Version:          md[contract.MetaVersion],
			Type:             typ,
			InputEventTypes:  info.GetInputEventTypes(),
			OutputEventTypes: info.GetOutputEventTypes(),
			Endpoint:         info.GetHealthEndpoint(),
			Metadata:         md,
		},
	}, nil
}

// Heartbeat implements flowctl.ControlPlane/Heartbeat.
func (l legacyServer) Heartbeat(ctx context.Context, hb *flowctllegacy.ServiceHeartbeat) (_ *emptypb.Empty, err error) {
	defer l.s.observe("flowctl.Heartbeat", time.Now(), &err)
	if len(hb.GetMetrics()) > MaxMetricEntries {
		return nil, invalid("metrics has %d entries, the limit is %d", len(hb.GetMetrics()), MaxMetricEntries)
	}
	metrics := make(map[string]string, len(hb.GetMetrics()))
	for k, v := range hb.GetMetrics() {
		if text, ok := contract.MetricText(v); ok {
			metrics[k] = text
		}
	}
	if err := l.s.heartbeat(ctx, hb.GetServiceId(), statusUnknown, metrics); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// GetServiceStatus implements flowctl.ControlPlane/GetServiceStatus (by info.service_id).
func (l legacyServer) GetServiceStatus(ctx context.Context, info *flowctllegacy.ServiceInfo) (_ *flowctllegacy.ServiceStatus, err error) {
	defer l.s.observe("flowctl.GetServiceStatus", time.Now(), &err)
	st, err := l.s.status(info.GetServiceId())
	if err != nil {
		return nil, err
	}
	return legacyStatus(st), nil
}

// ListServices implements flowctl.ControlPlane/ListServices: every service, sorted by id.
func (l legacyServer) ListServices(ctx context.Context, _ *emptypb.Empty) (_ *flowctllegacy.ServiceList, err error) {
	defer l.s.observe("flowctl.ListServices", time.Now(), &err)
	out := &flowctllegacy.ServiceList{}
	for _, e := range l.s.sortedEntries() {
		e.mu.Lock()
		st := e.statusLocked()
		e.mu.Unlock()
		out.Services = append(out.Services, legacyStatus(st))
	}
	return out, nil
}

// legacyStatus is a stored service in the legacy shape.
func legacyStatus(st *flowctlv1.ComponentStatusResponse) *flowctllegacy.ServiceStatus {
	info := st.GetComponent()
	var typ flowctllegacy.ServiceType
	switch {
	case info.GetMetadata()[contract.MetaServiceType] == contract.ServiceTypePipeline:
		typ = flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE
	case info.GetType() == flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE:
		typ = flowctllegacy.ServiceType_SERVICE_TYPE_SOURCE
	case info.GetType() == flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR:
		typ = flowctllegacy.ServiceType_SERVICE_TYPE_PROCESSOR
	case info.GetType() == flowctlv1.ComponentType_COMPONENT_TYPE_CONSUMER:
		typ = flowctllegacy.ServiceType_SERVICE_TYPE_SINK
	}
	metrics := make(map[string]float64, len(st.GetMetrics()))
	for k, v := range st.GetMetrics() {
		if _, detail := contract.CutHealth(k); detail {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			metrics[k] = f
		}
	}
	out := &flowctllegacy.ServiceStatus{
		ServiceId:   info.GetId(),
		ServiceType: typ,
		IsHealthy:   st.GetStatus() == statusHealthy,
		Metrics:     metrics,
		ComponentId: info.GetMetadata()[metaComponentID],
	}
	if lh := st.GetLastHeartbeat(); lh != nil && !lh.AsTime().IsZero() {
		out.LastHeartbeat = timestamppb.New(lh.AsTime())
	}
	return out
}
