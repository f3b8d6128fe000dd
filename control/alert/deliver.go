package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/withobsrvr/cdpd/internal/backoff"
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

// deliver posts p to url, retrying transient failures with capped exponential backoff
// (retryPolicy).
func (m *Manager) deliver(url string, p Payload) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this type
		m.log.Error("encoding alert notification", "alert", p.AlertID, "err", err)
		return
	}
	for attempt := 1; ; attempt++ {
		retry, err := m.post(url, p.DeliveryID, body)
		if err == nil {
			m.notified.WithLabelValues(p.State, "delivered").Inc()
			m.log.Info("alert notification delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempt", attempt)
			return
		}
		if !retry || attempt >= m.opts.MaxAttempts || m.ctx.Err() != nil {
			m.notified.WithLabelValues(p.State, "failed").Inc()
			m.log.Error("alert notification not delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempts", attempt, "err", err)
			return
		}
		wait := m.retry.Delay(attempt)
		m.log.Warn("alert notification failed, retrying", "alert", p.AlertID, "service", p.ServiceID, "state", p.State, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			m.notified.WithLabelValues(p.State, "failed").Inc()
			m.log.Warn("alert manager closed during retries: notification not delivered", "alert", p.AlertID, "service", p.ServiceID, "state", p.State)
			return
		case <-t.C:
		}
	}
}

// post makes one attempt; retry says whether a failure is worth another attempt.
func (m *Manager) post(url, deliveryID string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cdpd-flowctl-alerts")
	req.Header.Set("X-Cdpd-Delivery", deliveryID)
	resp, err := m.opts.Client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, whose path or query often holds a token: keep
		// only the host in what gets logged.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("posting webhook to %s: %w", req.URL.Host, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s (not retried)", resp.Status)
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
