package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// observe records an RPC's latency; use as `defer s.observe("X", time.Now(), &err)`.
func (s *Server) observe(method string, start time.Time, err *error) {
	s.rpcDuration.WithLabelValues(method, status.Code(*err).String()).Observe(time.Since(start).Seconds())
}

func notFound(id string) error {
	return status.Errorf(codes.NotFound, "service %s not found", id)
}

// RegisterComponent registers (or replaces) a service; see the package documentation. A
// service whose owner is live belongs to it: another client is refused with PermissionDenied.
func (s *Server) RegisterComponent(ctx context.Context, req *flowctlv1.RegisterRequest) (_ *flowctlv1.RegisterResponse, err error) {
	defer s.observe("RegisterComponent", time.Now(), &err)
	id, token, err := s.register(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &flowctlv1.RegisterResponse{ServiceId: id, ConnectionInfo: map[string]string{contract.ConnOwnerToken: token}}
	// As upstream: sources and processors are assigned one topic per output event type.
	switch req.GetComponent().GetType() {
	case flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE, flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR:
		for _, et := range req.GetComponent().GetOutputEventTypes() {
			resp.AssignedTopics = append(resp.AssignedTopics, et+".v1")
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.LocalAddr != nil {
		resp.ConnectionInfo["control_plane_endpoint"] = p.LocalAddr.String()
	}
	return resp, nil
}

// register validates a registration and stores it under its service id (component_id, else
// component.id, else generated), replacing any registration of that id, unless another owner
// holds the id and is live (PermissionDenied); it returns the id and the owner token in force
// (the caller's own, or one issued now). It is the one store operation of a registration,
// whatever the protocol that carried it (RegisterComponent, the legacy Register): validation,
// ownership, the registry caps, persistence, the history and the observers apply to every
// protocol alike.
func (s *Server) register(ctx context.Context, req *flowctlv1.RegisterRequest) (string, string, error) {
	if err := checkRegister(req); err != nil {
		return "", "", err
	}
	c, err := callerOf(ctx)
	if err != nil {
		return "", "", err
	}
	info := proto.Clone(req.GetComponent()).(*flowctlv1.ComponentInfo)
	if info.Metadata == nil {
		info.Metadata = map[string]string{}
	}
	info.Metadata[contract.MetaRegisteredBy] = registrant(ctx) // the server's word, never the client's
	id := req.GetComponentId()
	if id == "" {
		id = info.GetId()
	}
	if id == "" {
		id = randomID(typeWord(info.GetType()))
	}
	info.Id = id
	// The token in force: the caller's own, else one issued now (returned in connection_info).
	token := c.token
	if token == "" {
		token = newToken()
	}
	now := s.now()
	e := &entry{
		id: id, info: info, registeredAt: now, status: statusHealthy, lastHB: now,
		metrics: make(map[string]string), seen: make(map[string]int64), owner: ownerFor(c, token),
	}

	s.mu.Lock()
	prev := s.entries[id]
	prevPrincipal := ""
	if prev != nil {
		prev.mu.Lock()
		admitted, live, po := prev.owner.admits(c), s.liveLocked(prev, now), prev.owner
		prev.mu.Unlock()
		if !admitted && live {
			s.mu.Unlock()
			return "", "", denied(id, po, fmt.Sprintf("it can be taken over once it has been silent for %s", s.opts.HeartbeatTTL))
		}
		if !admitted {
			s.log.Warn("service taken over: its owner was silent for longer than the TTL",
				"service_id", id, "owner", po.principal, "new_owner", c.principal)
		}
		prevPrincipal = po.principal
	}
	// A new id must fit the registry's cap (re-registering a known id always works). Without
	// it a client registering distinct ids in a loop grows the registry, the histories and the
	// janitor's work without bound (30,000 registrations took a server from 38 to 330 MiB).
	h := s.histories[id]
	if prev == nil && (len(s.entries) >= s.opts.MaxServices || (h == nil && len(s.histories) >= 2*s.opts.MaxServices)) {
		n := len(s.entries)
		s.mu.Unlock()
		return "", "", status.Errorf(codes.ResourceExhausted, "registry full: %d services registered, the limit is %d; unregister services first", n, s.opts.MaxServices)
	}
	// So must a service new to this client: one client cannot fill the registry for all.
	if prevPrincipal != c.principal && s.perClient[c.principal] >= s.opts.MaxServicesPerClient {
		n := s.perClient[c.principal]
		s.mu.Unlock()
		return "", "", status.Errorf(codes.ResourceExhausted, "client %s has %d services registered, the limit per client is %d; unregister services first", c.principal, n, s.opts.MaxServicesPerClient)
	}
	if h == nil {
		h = newHistory(id)
		s.histories[id] = h
	}
	e.hist = h
	s.setEntryLocked(id, e)
	s.mu.Unlock()
	if s.db != nil {
		// Write-through: answer only once the registration is on disk.
		if err := s.persistService(e); err != nil {
			s.mu.Lock()
			if s.entries[id] == e {
				s.setEntryLocked(id, prev)
			}
			s.mu.Unlock()
			s.persistErrors.Inc()
			return "", "", status.Errorf(codes.Internal, "persisting registration of %s: %v", id, err)
		}
	}

	prevStatus := statusUnknown
	if prev != nil {
		prev.mu.Lock()
		prevStatus = prev.status
		prev.mu.Unlock()
	}
	s.log.Info("service registered", "service_id", id, "component_type", info.GetType().String(),
		"name", info.GetName(), "replaced", prev != nil, "owner", c.principal)
	s.notify(ServiceEvent{
		ServiceID: id, Kind: EventRegistered, Status: statusHealthy, PrevStatus: prevStatus,
		Metrics: map[string]string{}, Metadata: info.GetMetadata(), Time: now,
	})
	return id, token, nil
}

// registrant says who made a registration, as the control plane saw the call: the verified
// client certificate's subject (mutual TLS), else the peer address, else "unknown".
func registrant(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
		return "tls:" + ti.State.VerifiedChains[0][0].Subject.String()
	}
	if p.Addr != nil {
		return "peer:" + p.Addr.String()
	}
	return "unknown"
}

// typeWord is the prefix of generated ids: "source", "processor", "consumer", "component".
func typeWord(t flowctlv1.ComponentType) string {
	switch t {
	case flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE:
		return "source"
	case flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR:
		return "processor"
	case flowctlv1.ComponentType_COMPONENT_TYPE_CONSUMER:
		return "consumer"
	}
	return "component"
}

// UnregisterComponent removes a service (written through to the database). Unknown ids succeed.
func (s *Server) UnregisterComponent(ctx context.Context, req *flowctlv1.UnregisterRequest) (_ *emptypb.Empty, err error) {
	defer s.observe("UnregisterComponent", time.Now(), &err)
	id := req.GetServiceId()
	if err := checkServiceID(id); err != nil {
		return nil, err
	}
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e := s.entries[id]
	if e == nil {
		s.mu.Unlock()
		return &emptypb.Empty{}, nil
	}
	e.mu.Lock()
	admitted, live, o := e.owner.admits(c), s.liveLocked(e, s.now()), e.owner
	e.mu.Unlock()
	if !admitted && live {
		s.mu.Unlock()
		return nil, denied(id, o, "only its owner may unregister it while it heartbeats")
	}
	s.setEntryLocked(id, nil)
	s.mu.Unlock()
	if s.db != nil {
		if err := s.deleteService(id); err != nil {
			s.persistErrors.Inc()
			return nil, status.Errorf(codes.Internal, "persisting unregistration of %s: %v", id, err)
		}
	}

	e.mu.Lock()
	prev := e.status
	e.mu.Unlock()
	s.log.Info("service unregistered", "service_id", id)
	s.notify(ServiceEvent{
		ServiceID: id, Kind: EventUnregistered, Status: statusUnknown, PrevStatus: prev,
		Metadata: e.info.GetMetadata(), Time: s.now(),
	})
	return &emptypb.Empty{}, nil
}

// Heartbeat records a heartbeat: metrics merged, a non-UNKNOWN status replaces the stored one.
func (s *Server) Heartbeat(ctx context.Context, req *flowctlv1.HeartbeatRequest) (_ *emptypb.Empty, err error) {
	defer s.observe("Heartbeat", time.Now(), &err)
	if err := s.heartbeat(ctx, req.GetServiceId(), req.GetStatus(), req.GetMetrics()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// heartbeat validates and records one heartbeat of service id: metrics merged into the stored
// map (within the limits), a status other than UNKNOWN replaces the stored one, the history
// grows by one sample. It is the one store operation of a heartbeat, whatever the protocol
// that carried it (Heartbeat, the legacy Heartbeat).
func (s *Server) heartbeat(ctx context.Context, id string, st flowctlv1.HealthStatus, metrics map[string]string) error {
	if err := checkServiceID(id); err != nil {
		return err
	}
	if err := checkStatus(st); err != nil {
		return err
	}
	if _, err := checkMap("metrics", metrics, MaxMetricEntries, MaxMetricBytes); err != nil {
		return err
	}
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	e := s.lookup(id)
	if e == nil {
		return notFound(id)
	}
	now := s.now()
	e.mu.Lock()
	if !e.owner.admits(c) {
		o, live := e.owner, s.liveLocked(e, now)
		e.mu.Unlock()
		if live {
			return denied(id, o, "only its owner may heartbeat it")
		}
		return denied(id, o, "its owner is silent: register it to take it over")
	}
	bind := e.owner.unowned()
	// Merged-map limits: count what the merge would add before changing anything.
	entries, size := len(e.metrics), e.metricBytes
	for k, v := range metrics {
		if old, ok := e.metrics[k]; ok {
			size += len(v) - len(old)
		} else {
			entries++
			size += len(k) + len(v)
		}
	}
	if entries > MaxMetricEntries || size > MaxMetricBytes {
		e.mu.Unlock()
		return invalid("merged metrics of %s would have %d entries / %d bytes, the limits are %d / %d (re-register to reset them)",
			id, entries, size, MaxMetricEntries, MaxMetricBytes)
	}
	nowNS := now.UnixNano()
	for k, v := range metrics {
		e.metrics[k] = v
		e.seen[k] = nowNS
	}
	e.metricBytes = size
	prev := e.status
	switch {
	case st != statusUnknown:
		e.status = st
	case e.staleFrom != statusUnknown:
		e.status = e.staleFrom // back from silence, no opinion: what it was before
	case e.status == statusUnknown:
		e.status = statusHealthy // as upstream
	}
	e.staleFrom = statusUnknown
	e.lastHB = now
	cur := e.status
	var ev ServiceEvent
	observed := s.hasObservers()
	if observed {
		ev = ServiceEvent{
			ServiceID: id, Kind: EventHeartbeat, Status: cur, PrevStatus: prev,
			Metrics: copyMap(e.metrics), Metadata: e.info.GetMetadata(), Time: now,
		}
	}
	h := e.hist
	sampled := metrics
	if h.empty.Load() {
		sampled = copyMap(e.metrics) // a fresh history starts from the whole merged state
	}
	e.mu.Unlock()
	if bind {
		s.bindOwner(e, c)
	}

	s.recordSample(h, now.UnixNano(), cur, sampled)
	s.markDirty(id)
	s.heartbeats.Inc()
	if observed {
		s.notify(ev)
	}
	return nil
}

// GetComponentStatus returns one service's status, NotFound for an unknown id.
func (s *Server) GetComponentStatus(ctx context.Context, req *flowctlv1.ComponentStatusRequest) (_ *flowctlv1.ComponentStatusResponse, err error) {
	defer s.observe("GetComponentStatus", time.Now(), &err)
	return s.status(req.GetServiceId())
}

// status is one service's stored state (a copy), NotFound for an unknown id: the one read of
// a service, whatever the protocol.
func (s *Server) status(id string) (*flowctlv1.ComponentStatusResponse, error) {
	if err := checkServiceID(id); err != nil {
		return nil, err
	}
	e := s.lookup(id)
	if e == nil {
		return nil, notFound(id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statusLocked(), nil
}

// ListComponents lists services of a type (UNSPECIFIED = all), only HEALTHY ones unless
// include_unhealthy.
func (s *Server) ListComponents(ctx context.Context, req *flowctlv1.ListComponentsRequest) (_ *flowctlv1.ListComponentsResponse, err error) {
	defer s.observe("ListComponents", time.Now(), &err)
	if err := checkType("type_filter", req.GetTypeFilter()); err != nil {
		return nil, err
	}
	resp := &flowctlv1.ListComponentsResponse{}
	for _, e := range s.sortedEntries() {
		if t := req.GetTypeFilter(); t != componentTypeNone && e.info.GetType() != t {
			continue
		}
		e.mu.Lock()
		if req.GetIncludeUnhealthy() || e.status == statusHealthy {
			resp.Components = append(resp.Components, e.statusLocked())
		}
		e.mu.Unlock()
	}
	return resp, nil
}

// DiscoverComponents finds registrations by type (UNSPECIFIED = any), event types (any of them
// among the input or output types) and metadata filters (all must match).
func (s *Server) DiscoverComponents(ctx context.Context, req *flowctlv1.DiscoveryRequest) (_ *flowctlv1.DiscoveryResponse, err error) {
	defer s.observe("DiscoverComponents", time.Now(), &err)
	if err := checkType("type", req.GetType()); err != nil {
		return nil, err
	}
	resp := &flowctlv1.DiscoveryResponse{}
	for _, e := range s.sortedEntries() {
		info := e.info
		if t := req.GetType(); t != componentTypeNone && info.GetType() != t {
			continue
		}
		if ets := req.GetEventTypes(); len(ets) > 0 && !slices.ContainsFunc(ets, func(et string) bool {
			return slices.Contains(info.GetInputEventTypes(), et) || slices.Contains(info.GetOutputEventTypes(), et)
		}) {
			continue
		}
		match := true
		for k, v := range req.GetMetadataFilters() {
			if got, ok := info.GetMetadata()[k]; !ok || got != v {
				match = false
				break
			}
		}
		if match {
			resp.Components = append(resp.Components, info)
		}
	}
	return resp, nil
}

// GetHistory returns a service's heartbeat samples, oldest first, filtered by time and metric
// names. Unregistered services keep their history until it ages out; an id with neither a
// registration nor a history is NotFound. A full day of a pipeline with 16 metrics is about
// 8 MB on the wire, above gRPC's default 4 MiB client receive limit: clients ask with since /
// metric_names or raise grpc.MaxCallRecvMsgSize.
func (s *Server) GetHistory(ctx context.Context, req *cdpdv1.GetHistoryRequest) (_ *cdpdv1.GetHistoryResponse, err error) {
	defer s.observe("GetHistory", time.Now(), &err)
	id := req.GetServiceId()
	if err := checkServiceID(id); err != nil {
		return nil, err
	}
	var since int64
	if ts := req.GetSince(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, invalid("since: %v", err)
		}
		since = ts.AsTime().UnixNano()
	}
	var names map[string]bool
	if len(req.GetMetricNames()) > 0 {
		names = make(map[string]bool, len(req.GetMetricNames()))
		for _, n := range req.GetMetricNames() {
			names[n] = true
		}
	}
	s.mu.RLock()
	h := s.histories[id]
	s.mu.RUnlock()
	if h == nil {
		return nil, notFound(id)
	}
	h.mu.Lock()
	samples := h.read(since, names)
	h.mu.Unlock()
	return &cdpdv1.GetHistoryResponse{ServiceId: id, Samples: samples}, nil
}
