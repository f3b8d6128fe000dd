// Package alert owns the control plane's alert rules: their condition language, their
// storage (a bbolt bucket in the control plane's database, or memory), their evaluation
// against the services' heartbeats and status changes, and the webhook notifications they
// send. A Manager implements the gRPC service cdpd.v1.AlertService that `flowctl alert`
// talks to.
//
// # Rules
//
// A rule (cdpdv1.Alert) names a service id or "*" (every service), a condition (see
// ParseCondition) and a webhook URL, optionally with a duration (for_seconds) the condition
// must hold before the rule fires. Each (rule, service) pair is tracked separately:
//
//	condition starts holding    -> pending (since = now)
//	pending for >= for_seconds  -> firing: one "firing" notification
//	condition stops holding     -> if firing: one "resolved" notification
//	service unregistered        -> if firing: one "resolved" notification (reason says why)
//	rule deleted                -> if firing: one "resolved" notification
//
// Conditions are evaluated on every observed event (Observe: registration, heartbeat,
// status change) and, for rules with a duration, on a timer (Run). The firing state is
// persisted with the rules, so a control plane restart neither repeats a firing nor forgets
// to resolve it.
//
// # Notifications
//
// Each notification is a JSON Payload POSTed to the rule's webhook. Delivery is at least
// once: failures (network errors, HTTP 5xx, 408, 429) are retried with capped exponential
// backoff up to MaxAttempts; other 4xx answers are not retried. Notifications of one rule
// are delivered in order by one goroutine, so a slow webhook never delays another rule's.
// Every payload carries a delivery_id (also in the X-Cdpd-Delivery header) that stays the
// same across retries, so a receiver can drop duplicates.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.etcd.io/bbolt"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/internal/backoff"
)

// Event is one change of a service as the control plane observed it.
type Event struct {
	ServiceID string
	// Status is the service's status after the event. HEALTH_STATUS_UNKNOWN keeps the last
	// known status of a service already seen (a heartbeat that does not report a status).
	Status flowctlv1.HealthStatus
	// Metrics are merged into the last known metrics (as the control plane merges them).
	Metrics map[string]string
	// Removed is set when the service was unregistered.
	Removed bool
	// Replace is set when the service (re-)registered: its metrics start empty again.
	Replace bool
}

// Options configure a Manager. Zero values take the defaults in brackets.
type Options struct {
	// DB persists rules and firing states in its buckets; nil keeps them in memory.
	DB *bbolt.DB
	// Now is the clock [time.Now].
	Now func() time.Time
	// Client posts the webhooks [an http.Client with a 10 s timeout].
	Client *http.Client
	// Logger [slog.Default()].
	Logger *slog.Logger
	// Services returns the control plane's current services; used once by New to seed the
	// state of services registered before the manager started. Optional.
	Services func() []*flowctlv1.ComponentStatusResponse
	// EvalInterval is how often Run re-evaluates pending rules with a duration [1 s].
	EvalInterval time.Duration
	// MaxAttempts bounds the delivery attempts of one notification [8].
	MaxAttempts int
	// BackoffBase is the wait after the first failed attempt, doubled after each [500 ms].
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts [30 s].
	BackoffMax time.Duration
	// Registerer receives the manager's metrics (cdpd_alert_*); nil registers none.
	Registerer prometheus.Registerer
}

// Payload is the JSON body of a webhook notification.
type Payload struct {
	AlertID   string `json:"alert_id"`
	ServiceID string `json:"service_id"`
	Condition string `json:"condition"`
	// State is "firing" or "resolved".
	State string `json:"state"`
	// Status is the service's health status when the notification was made ("gone" when the
	// service was unregistered).
	Status string `json:"status"`
	// Value is the observed value the condition compared: the status, or the metric's text.
	Value      string `json:"value,omitempty"`
	ForSeconds int64  `json:"for_seconds,omitempty"`
	// Since is when the condition started holding.
	Since time.Time `json:"since"`
	// Time is when the notification was made.
	Time time.Time `json:"time"`
	// Reason explains a resolve that is not a recovery ("service unregistered", "alert deleted").
	Reason string `json:"reason,omitempty"`
	// Detail is the service's last error, when its health details carry one.
	Detail string `json:"detail,omitempty"`
	// Message is a one-line human summary.
	Message string `json:"message"`
	// DeliveryID identifies this notification ("<alert>/<service>/<firing time, Unix ns>/<state>");
	// it is the same on every retry.
	DeliveryID string `json:"delivery_id"`
}

// The notification states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// rule is a stored alert with its parsed condition.
type rule struct {
	pb   *cdpdv1.Alert
	cond Condition
}

// service is the last known state of one service.
type service struct {
	status  flowctlv1.HealthStatus
	metrics map[string]string
}

// pairKey identifies the state of one rule for one service.
type pairKey struct{ alert, service string }

// pairState is the evaluation state of one (rule, service) pair.
type pairState struct {
	Since   time.Time `json:"since"`             // when the condition started holding
	Firing  bool      `json:"firing"`            // a firing notification was made
	FiredAt time.Time `json:"fired_at,omitzero"` // when
	Value   string    `json:"value,omitempty"`
}

// Manager holds the alert rules, evaluates them and delivers their notifications. It
// implements cdpdv1.AlertServiceServer. Close stops its goroutines.
type Manager struct {
	cdpdv1.UnimplementedAlertServiceServer

	opts  Options
	retry backoff.Policy // webhook retry delays (retryPolicy)
	log   *slog.Logger
	store *store

	mu       sync.Mutex
	closed   bool
	rules    map[string]*rule
	services map[string]*service
	pairs    map[pairKey]*pairState
	senders  map[string]*sender // per rule id, while it has notifications to deliver

	ctx    context.Context // cancelled by Close: stops deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	notified *prometheus.CounterVec
	firing   prometheus.Gauge
}

// New loads the rules and firing states (from opts.DB when set) and seeds the service states
// from opts.Services.
func New(opts Options) (*Manager, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.EvalInterval <= 0 {
		opts.EvalInterval = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 500 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	st, err := openStore(opts.DB)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		opts:     opts,
		retry:    retryPolicy(opts),
		log:      opts.Logger.With("component", "alerts"),
		store:    st,
		rules:    map[string]*rule{},
		services: map[string]*service{},
		pairs:    map[pairKey]*pairState{},
		senders:  map[string]*sender{},
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // discarded: metrics exist but are exported nowhere
	}
	m.notified = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "cdpd_alert_notifications_total",
		Help: "Alert webhook notifications by state (firing, resolved) and result (delivered, failed).",
	}, []string{"state", "result"})
	m.firing = promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "cdpd_alert_firing",
		Help: "Alert (rule, service) pairs currently firing.",
	})

	alerts, err := st.loadAlerts()
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		cond, err := ParseCondition(a.GetCondition())
		if err != nil {
			// A stored rule is one we accepted; a rule we can no longer parse is skipped loudly.
			m.log.Error("skipping stored alert with a bad condition", "alert", a.GetId(), "err", err)
			continue
		}
		m.rules[a.GetId()] = &rule{pb: a, cond: cond}
	}
	pairs, err := st.loadPairs()
	if err != nil {
		return nil, err
	}
	for k, p := range pairs {
		if _, ok := m.rules[k.alert]; !ok {
			continue
		}
		m.pairs[k] = p
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())

	if opts.Services != nil {
		now := m.opts.Now()
		m.mu.Lock()
		seen := map[string]bool{}
		for _, s := range opts.Services() {
			id := s.GetComponent().GetId()
			seen[id] = true
			m.services[id] = &service{status: s.GetStatus(), metrics: copyMap(s.GetMetrics())}
		}
		// Firing pairs of services that vanished while we were down are resolved.
		for k, p := range m.pairs {
			if p.Firing && !seen[k.service] {
				m.resolveLocked(k, p, "service no longer registered", now, "gone")
			}
		}
		for id := range m.services {
			m.evalServiceLocked(id, now)
		}
		m.updateFiringLocked()
		m.mu.Unlock()
	}
	m.updateFiring()
	return m, nil
}

// Run re-evaluates pending rules with a duration every EvalInterval until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.opts.EvalInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.ctx.Done():
			return nil
		case <-t.C:
			m.Evaluate()
		}
	}
}

// Alerts returns the rules sorted by id.
func (m *Manager) Alerts() []*cdpdv1.Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*cdpdv1.Alert, 0, len(m.rules))
	for _, r := range m.rules {
		out = append(out, r.pb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}

// Add validates and stores a rule (assigning an id when it has none) and evaluates it
// against the known services at once.
func (m *Manager) Add(a *cdpdv1.Alert) (*cdpdv1.Alert, error) {
	if a == nil {
		return nil, &InvalidError{"an alert is required"}
	}
	cond, err := validate(a)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	out := &cdpdv1.Alert{
		Id:         a.GetId(),
		Service:    a.GetService(),
		Condition:  cond.String(),
		WebhookUrl: a.GetWebhookUrl(),
		ForSeconds: a.GetForSeconds(),
		CreatedAt:  timestamp(m.opts.Now()),
	}
	if out.Id == "" {
		for {
			id, err := m.store.nextID()
			if err != nil {
				return nil, err
			}
			if _, taken := m.rules[id]; !taken {
				out.Id = id
				break
			}
		}
	} else if _, taken := m.rules[out.Id]; taken {
		return nil, &ExistsError{ID: out.Id}
	}
	if err := m.store.putAlert(out); err != nil {
		return nil, err
	}
	r := &rule{pb: out, cond: cond}
	m.rules[out.Id] = r
	now := m.opts.Now()
	for id, s := range m.services {
		if out.Service == "*" || out.Service == id {
			m.evalPairLocked(r, id, s, now)
		}
	}
	m.updateFiringLocked()
	m.log.Info("alert created", "alert", out.Id, "service", out.Service, "condition", out.Condition, "for_seconds", out.ForSeconds)
	return out, nil
}

// Remove deletes a rule; its firing pairs are resolved ("alert deleted").
func (m *Manager) Remove(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if _, ok := m.rules[id]; !ok {
		return &NotFoundError{ID: id}
	}
	now := m.opts.Now()
	for k, p := range m.pairs {
		if k.alert != id {
			continue
		}
		if p.Firing {
			status := "gone"
			if s := m.services[k.service]; s != nil {
				status = contract.StatusName(s.status)
			}
			m.resolveLocked(k, p, "alert deleted", now, status)
		} else {
			delete(m.pairs, k)
		}
	}
	if err := m.store.deleteAlert(id); err != nil {
		return err
	}
	delete(m.rules, id)
	m.updateFiringLocked()
	m.log.Info("alert deleted", "alert", id)
	return nil
}

// Close stops the manager: notifications not yet delivered are dropped (and logged), and
// Close waits for the delivery goroutines to end. Run returns too.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

var errClosed = errors.New("alert manager is closed")

// InvalidError is a rule that cannot be accepted.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return "invalid alert: " + e.Msg }

// ExistsError is a rule id that is already taken.
type ExistsError struct{ ID string }

func (e *ExistsError) Error() string { return fmt.Sprintf("alert %q already exists", e.ID) }

// NotFoundError is an unknown rule id.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("alert %q not found", e.ID) }

func copyMap(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
