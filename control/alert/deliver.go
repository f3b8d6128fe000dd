package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/internal/backoff"
	"github.com/withobsrvr/cdpd/internal/webhook"
)

// sender delivers the notifications of one rule in order. It exists while it has work: the
// goroutine started by enqueueLocked drains the queue and ends.
type sender struct {
	url   string
	queue []Payload
}

// enqueueLocked queues a notification for rule id, starting the rule's delivery goroutine
// when it is not running.
func (m *Manager) enqueueLocked(id, url string, p Payload) {
	if s := m.senders[id]; s != nil {
		s.queue = append(s.queue, p)
		return
	}
	s := &sender{url: url, queue: []Payload{p}}
	m.senders[id] = s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.drain(id, s)
	}()
}

// drain delivers s's queue until it is empty (or the manager closes).
func (m *Manager) drain(id string, s *sender) {
	for {
		m.mu.Lock()
		if len(s.queue) == 0 || m.ctx.Err() != nil {
			dropped := len(s.queue)
			delete(m.senders, id)
			m.mu.Unlock()
			if dropped > 0 {
				m.log.Warn("alert manager closed: notifications not delivered", "alert", id, "dropped", dropped)
			}
			return
		}
		p := s.queue[0]
		s.queue = s.queue[1:]
		m.mu.Unlock()
		m.deliver(s.url, p)
	}
}

// deliver posts p to url through the shared webhook delivery (internal/webhook: retries of
// transient failures with capped exponential backoff, see retryPolicy).
func (m *Manager) deliver(url string, p Payload) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this type
		m.log.Error("encoding alert notification", "alert", p.AlertID, "err", err)
		return
	}
	s := webhook.Sender{Client: m.opts.Client, UserAgent: "cdpd-flowctl-alerts", MaxAttempts: m.opts.MaxAttempts, Retry: retryPolicy(m.opts)}
	res := s.Deliver(m.ctx, webhook.Delivery{URL: url, ID: p.DeliveryID, Body: body}, func(attempt int, wait time.Duration, err error) {
		m.log.Warn("alert notification failed, retrying", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempt", attempt, "retry_in", wait, "err", err)
	})
	switch {
	case res.Err == nil:
		m.notified.WithLabelValues(p.State, "delivered").Inc()
		m.log.Info("alert notification delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempt", res.Attempts)
	case res.Canceled:
		m.notified.WithLabelValues(p.State, "failed").Inc()
		m.log.Warn("alert manager closed during retries: notification not delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State)
	default:
		m.notified.WithLabelValues(p.State, "failed").Inc()
		m.log.Error("alert notification not delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempts", res.Attempts, "err", res.Err)
	}
}

// Flush waits until every queued notification has been delivered or given up, or ctx ends.
// Tests and graceful shutdowns use it.
func (m *Manager) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		m.mu.Lock()
		n := len(m.senders)
		m.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flushing alert notifications: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// retryPolicy is the webhook retry backoff of o: the wait after attempt n is BackoffBase
// doubled n-1 times, capped at BackoffMax, with ±20% jitter so that the webhooks of many rules
// do not retry in lockstep.
func retryPolicy(o Options) backoff.Policy {
	return backoff.Policy{Base: o.BackoffBase, Max: o.BackoffMax, Factor: 2, Jitter: 0.2}
}
