package server

import (
	"time"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// HeartbeatTTLFactor is how many heartbeat intervals a service may stay silent before the
// janitor marks it unhealthy (see HeartbeatTTLFor).
const HeartbeatTTLFactor = 3

// HeartbeatTTLFor is the heartbeat TTL for clients that heartbeat every interval: the larger
// of DefaultHeartbeatTTL and HeartbeatTTLFactor × interval, so that two late or lost
// heartbeats in a row do not mark a service unhealthy, whatever the interval (30 s up to a
// 10 s interval, 2 min at 40 s). `flowctl server --heartbeat-ttl` documents the rule and
// cdpd's embedded control plane applies it to --heartbeat-interval. A non-positive interval
// gives DefaultHeartbeatTTL.
func HeartbeatTTLFor(interval time.Duration) time.Duration {
	return max(DefaultHeartbeatTTL, HeartbeatTTLFactor*interval)
}

// Sweep runs one janitor pass now (Run calls it every JanitorInterval): services silent for
// longer than HeartbeatTTL become UNHEALTHY, services silent for longer than ServiceExpiry are
// removed with their history, metrics a service stopped sending (not in its heartbeats for
// longer than HeartbeatTTL while it kept heartbeating) are dropped, history samples older
// than HistoryMaxAge are dropped, and so are emptied histories of unregistered services.
func (s *Server) Sweep() {
	now := s.now()
	deadline := now.Add(-s.opts.HeartbeatTTL)
	expiry := now.Add(-s.opts.ServiceExpiry)
	var events []ServiceEvent
	var expired []*entry
	for _, e := range s.sortedEntries() {
		e.mu.Lock()
		ref := e.lastHB
		if ref.Before(s.started) {
			ref = s.started // grace after a restart of the server
		}
		if ref.Before(expiry) {
			expired = append(expired, e)
			e.mu.Unlock()
			continue
		}
		if s.dropStaleMetricsLocked(e) {
			s.markDirty(e.id)
		}
		if ref.Before(deadline) && e.status != flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY {
			prev := e.status
			e.staleFrom = prev
			e.status = flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
			s.log.Warn("service marked unhealthy: no heartbeat within TTL",
				"service_id", e.id, "last_heartbeat", e.lastHB, "ttl", s.opts.HeartbeatTTL)
			if s.hasObservers() {
				events = append(events, ServiceEvent{
					ServiceID: e.id, Kind: EventStatus, Status: e.status, PrevStatus: prev,
					Metrics: copyMap(e.metrics), Metadata: e.info.GetMetadata(), Time: now,
				})
			}
			e.mu.Unlock()
			s.markDirty(e.id)
			continue
		}
		e.mu.Unlock()
	}
	for _, ev := range events {
		s.notify(ev)
	}
	for _, e := range expired {
		s.expire(e, now)
	}
	s.pruneHistories(now)
}

// dropStaleMetricsLocked removes the metrics e has not sent for longer than HeartbeatTTL
// before its last heartbeat, so that a metric the service stopped reporting (a removed
// component's, or one injected by another caller) does not stay for good. A silent service
// keeps its last metrics. It reports whether any was dropped; e.mu held.
func (s *Server) dropStaleMetricsLocked(e *entry) bool {
	cutoff := e.lastHB.Add(-s.opts.HeartbeatTTL).UnixNano()
	dropped := false
	for k, t := range e.seen {
		if t < cutoff {
			e.metricBytes -= len(k) + len(e.metrics[k])
			delete(e.metrics, k)
			delete(e.seen, k)
			dropped = true
		}
	}
	return dropped
}

// expire removes a service silent for longer than ServiceExpiry, with its history, unless it
// came back or was replaced meanwhile.
func (s *Server) expire(e *entry, now time.Time) {
	s.mu.Lock()
	if s.entries[e.id] != e {
		s.mu.Unlock()
		return
	}
	e.mu.Lock()
	ref, prev := e.lastHB, e.status
	e.mu.Unlock()
	if ref.Before(s.started) {
		ref = s.started
	}
	if !ref.Before(now.Add(-s.opts.ServiceExpiry)) {
		s.mu.Unlock()
		return // a heartbeat arrived meanwhile
	}
	s.setEntryLocked(e.id, nil)
	s.dropHistoryLocked(e.id)
	s.mu.Unlock()
	if s.db != nil {
		if err := s.deleteService(e.id); err != nil {
			s.persistErrors.Inc()
			s.log.Error("deleting an expired service from the database", "service_id", e.id, "err", err)
		}
	}
	s.log.Info("service expired: silent for longer than the service expiry",
		"service_id", e.id, "last_heartbeat", ref, "expiry", s.opts.ServiceExpiry)
	s.notify(ServiceEvent{
		ServiceID: e.id, Kind: EventExpired, Status: statusUnknown, PrevStatus: prev,
		Metadata: e.info.GetMetadata(), Time: now,
	})
}

func (s *Server) pruneHistories(now time.Time) {
	cutoff := now.Add(-s.opts.HistoryMaxAge).UnixNano()
	s.mu.RLock()
	hs := make([]*history, 0, len(s.histories))
	for _, h := range s.histories {
		hs = append(hs, h)
	}
	s.mu.RUnlock()
	var empty []string
	for _, h := range hs {
		h.mu.Lock()
		before := h.size()
		if h.pruneBefore(cutoff) {
			s.markDirty(h.id)
		}
		if !h.dropped {
			s.histBytes.Add(h.size() - before)
		}
		if h.n == 0 {
			empty = append(empty, h.id)
		}
		h.mu.Unlock()
	}
	s.enforceTotal()
	if len(empty) == 0 {
		return
	}
	s.mu.Lock()
	for _, id := range empty {
		h := s.histories[id]
		if h == nil || s.entries[id] != nil {
			continue
		}
		h.mu.Lock()
		n := h.n
		h.mu.Unlock()
		if n == 0 {
			s.dropHistoryLocked(id)
		}
	}
	s.mu.Unlock()
}

// HeartbeatTTL is the TTL the janitor judges services by.
func (s *Server) HeartbeatTTL() time.Duration { return s.opts.HeartbeatTTL }
