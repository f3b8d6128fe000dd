package alert

import (
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Evaluate re-evaluates the pending pairs (condition holding, not yet firing) now: the only
// ones whose outcome changes with time alone; everything else changes through Observe. Run
// calls it on its timer; it is exported for callers that drive time themselves.
func (m *Manager) Evaluate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	now := m.opts.Now()
	for k, p := range m.pairs {
		if p.Firing {
			continue
		}
		r, s := m.rules[k.alert], m.services[k.service]
		if r == nil || s == nil {
			delete(m.pairs, k)
			continue
		}
		m.evalPairLocked(r, k.service, s, now)
	}
	m.updateFiringLocked()
}

// Observe applies one service event and evaluates the rules that match the service.
// It never blocks on the network.
func (m *Manager) Observe(ev Event) {
	if ev.ServiceID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	now := m.opts.Now()
	if ev.Removed {
		delete(m.services, ev.ServiceID)
		for k, p := range m.pairs {
			if k.service != ev.ServiceID {
				continue
			}
			if p.Firing {
				m.resolveLocked(k, p, "service unregistered", now, "gone")
			} else {
				delete(m.pairs, k)
			}
		}
		m.updateFiringLocked()
		return
	}
	s := m.services[ev.ServiceID]
	if s == nil {
		s = &service{metrics: map[string]string{}}
		m.services[ev.ServiceID] = s
	}
	if ev.Replace {
		s.metrics = map[string]string{}
	}
	if ev.Status != flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN || ev.Replace {
		s.status = ev.Status
	}
	for k, v := range ev.Metrics {
		s.metrics[k] = v
	}
	m.evalServiceLocked(ev.ServiceID, now)
	m.updateFiringLocked()
}

// evalServiceLocked evaluates every rule matching service id.
func (m *Manager) evalServiceLocked(id string, now time.Time) {
	s := m.services[id]
	if s == nil {
		return
	}
	for _, r := range m.rules {
		if r.pb.GetService() != "*" && r.pb.GetService() != id {
			continue
		}
		m.evalPairLocked(r, id, s, now)
	}
}

func (m *Manager) evalPairLocked(r *rule, id string, s *service, now time.Time) {
	k := pairKey{r.pb.GetId(), id}
	p := m.pairs[k]
	holds, value := r.cond.Holds(s.status, s.metrics)
	if !holds {
		if p == nil {
			return
		}
		if p.Firing {
			p.Value = value
			m.resolveLocked(k, p, "", now, contract.StatusName(s.status))
			return
		}
		delete(m.pairs, k)
		return
	}
	if p == nil {
		p = &pairState{Since: now}
		m.pairs[k] = p
	}
	p.Value = value
	if p.Firing {
		return
	}
	if now.Sub(p.Since) < time.Duration(r.pb.GetForSeconds())*time.Second {
		return
	}
	p.Firing = true
	p.FiredAt = now
	if err := m.store.putPair(k, p); err != nil {
		m.log.Error("persisting alert state", "alert", k.alert, "service", k.service, "err", err)
	}
	pl := m.payloadLocked(r, k, p, StateFiring, now, contract.StatusName(s.status), "")
	m.log.Warn("alert firing", "alert", k.alert, "service", k.service, "condition", pl.Condition, "value", value)
	m.enqueueLocked(r.pb.GetId(), r.pb.GetWebhookUrl(), pl)
}

// resolveLocked ends a firing pair and queues its resolve notification.
func (m *Manager) resolveLocked(k pairKey, p *pairState, reason string, now time.Time, status string) {
	delete(m.pairs, k)
	if err := m.store.deletePair(k); err != nil {
		m.log.Error("persisting alert state", "alert", k.alert, "service", k.service, "err", err)
	}
	r := m.rules[k.alert]
	if r == nil {
		return
	}
	pl := m.payloadLocked(r, k, p, StateResolved, now, status, reason)
	m.log.Info("alert resolved", "alert", k.alert, "service", k.service, "condition", pl.Condition, "reason", pl.Reason)
	m.enqueueLocked(r.pb.GetId(), r.pb.GetWebhookUrl(), pl)
}

func (m *Manager) payloadLocked(r *rule, k pairKey, p *pairState, state string, now time.Time, status, reason string) Payload {
	pl := Payload{
		AlertID:    k.alert,
		ServiceID:  k.service,
		Condition:  r.cond.String(),
		State:      state,
		Status:     status,
		Value:      p.Value,
		ForSeconds: r.pb.GetForSeconds(),
		Since:      p.Since.UTC(),
		Time:       now.UTC(),
		Reason:     reason,
		DeliveryID: fmt.Sprintf("%s/%s/%d/%s", k.alert, k.service, p.FiredAt.UnixNano(), state),
	}
	if s := m.services[k.service]; s != nil && state == StateFiring {
		pl.Detail = errorDetail(s.metrics)
	}
	switch {
	case state == StateFiring:
		pl.Message = fmt.Sprintf("%s: %s (value %s)", k.service, pl.Condition, pl.Value)
	case reason != "":
		pl.Message = fmt.Sprintf("%s: %s resolved: %s", k.service, pl.Condition, reason)
	default:
		pl.Message = fmt.Sprintf("%s: %s no longer holds (status %s)", k.service, pl.Condition, status)
	}
	return pl
}

// errorDetail picks the service's last error from its health details, if any.
func errorDetail(metrics map[string]string) string {
	for _, k := range contract.ErrorDetails {
		if v := metrics[contract.HealthKey(k)]; v != "" {
			return v
		}
	}
	return ""
}

func (m *Manager) updateFiringLocked() {
	n := 0
	for _, p := range m.pairs {
		if p.Firing {
			n++
		}
	}
	m.firing.Set(float64(n))
}

func (m *Manager) updateFiring() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updateFiringLocked()
}
