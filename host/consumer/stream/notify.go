package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/backoff"
	"github.com/withobsrvr/cdpd/internal/webhook"
)

// NotifyRule is one rule of NotificationDispatcher (upstream's keys).
type NotifyRule struct {
	Type      string   `mapstructure:"type"`      // the record's "type" field or its record kind
	Condition string   `mapstructure:"condition"` // gt, lt, eq
	Field     string   `mapstructure:"field"`
	Value     string   `mapstructure:"value"`
	Channels  []string `mapstructure:"channels"` // cdpd delivers "webhook"
}

// NotifyConfig is the config of NotificationDispatcher.
type NotifyConfig struct {
	Rules       []NotifyRule `mapstructure:"rules"`
	WebhookURLs []string     `mapstructure:"webhook_urls"` // secret: never logged
	// RateLimit is the quiet time after a rule fired for one field value (upstream's 5 minutes).
	RateLimit time.Duration `mapstructure:"rate_limit"`
	// QueueSize bounds the notifications waiting for delivery; Consume waits when it is full.
	QueueSize int `mapstructure:"queue_size"`
	// MaxAttempts, RetryWait and MaxRetryWait are each delivery's retries (internal/webhook).
	MaxAttempts  int           `mapstructure:"max_attempts"`
	RetryWait    time.Duration `mapstructure:"retry_wait"`
	MaxRetryWait time.Duration `mapstructure:"max_retry_wait"`
	Timeout      time.Duration `mapstructure:"timeout"` // one attempt
}

// SetDefaults implements component.Defaulter.
func (c *NotifyConfig) SetDefaults() {
	*c = NotifyConfig{RateLimit: 5 * time.Minute, QueueSize: 1000, MaxAttempts: 8, RetryWait: 500 * time.Millisecond,
		MaxRetryWait: 30 * time.Second, Timeout: 10 * time.Second}
}

// Notify is NotificationDispatcher: each record whose "type" field (or record kind) is a
// rule's type and whose field compares with the rule's value (gt, lt: as numbers, so "9" is
// less than "10000", where upstream compared text; eq: as numbers when both are, else as
// text) is POSTed to every webhook_urls entry as {"message", "timestamp" (the ledger's close
// time), "rule", "natural_key", "delivery_id", "record"}, through internal/webhook: the
// delivery the control plane's alert webhooks use (retries with backoff, the X-Cdpd-Delivery
// header, errors naming only the host). The delivery id is "<natural key>/<rule index>/<url
// index>", the same on every retry and every replay. A rule fires at most once per rate_limit
// for one field value (upstream's anti-spam). Only the "webhook" channel is delivered: a rule
// naming "slack" or "email" is a config error (those need Slack's and SendGrid's APIs, which
// cdpd does not call), so no notification is silently skipped.
//
// Data safety: at-least-once while a delivery is possible. Notifications are delivered in
// order by one goroutine from a bounded queue (queue_size; Consume waits when it is full);
// DurableLedger moves past a ledger only when its notifications were delivered or given up
// after max_attempts (counted in cdp_pipeline_consumer_write_errors_total, logged without the
// URL), so a crash re-sends the notifications it had not finished: receivers drop duplicates
// by delivery id. The rate limit is kept in memory and starts over after a restart.
type Notify struct {
	rules   []NotifyRule
	urls    []string
	cfg     NotifyConfig
	sender  webhook.Sender
	log     *slog.Logger
	metrics *consumer.Metrics
	failedC prometheus.Counter

	queue chan notifyItem
	stop  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	fired   map[string]time.Time // rule/value -> last firing (rate limit)
	pending []uint32             // ledgers queued, oldest first
	last    uint32               // last ledger consumed
	closed  bool

	matched, delivered, failed atomic.Int64
}

type notifyItem struct {
	seq        uint32
	deliveries []webhook.Delivery
}

// NewNotificationDispatcher is the constructor of NotificationDispatcher.
func NewNotificationDispatcher(c *NotifyConfig, env component.Env) (component.Consumer, error) {
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("NotificationDispatcher: rules are required")
	}
	for i, r := range c.Rules {
		if r.Type == "" || r.Field == "" {
			return nil, fmt.Errorf("NotificationDispatcher: rule %d: type and field are required", i+1)
		}
		if r.Condition != "gt" && r.Condition != "lt" && r.Condition != "eq" {
			return nil, fmt.Errorf("NotificationDispatcher: rule %d: condition %q is not gt, lt or eq", i+1, r.Condition)
		}
		if (r.Condition == "gt" || r.Condition == "lt") && !isNumber(r.Value) {
			return nil, fmt.Errorf("NotificationDispatcher: rule %d: %s needs a numeric value", i+1, r.Condition)
		}
		for _, ch := range r.Channels {
			if ch != "webhook" {
				return nil, fmt.Errorf("NotificationDispatcher: rule %d: channel %q is not delivered by cdpd (only webhook: Slack and email need their services' APIs)", i+1, ch)
			}
		}
		if len(r.Channels) == 0 {
			return nil, fmt.Errorf("NotificationDispatcher: rule %d: channels is empty (use [webhook])", i+1)
		}
	}
	if len(c.WebhookURLs) == 0 {
		return nil, fmt.Errorf("NotificationDispatcher: webhook_urls is required")
	}
	if c.QueueSize <= 0 || c.MaxAttempts <= 0 || c.RetryWait <= 0 || c.MaxRetryWait < c.RetryWait || c.Timeout <= 0 || c.RateLimit < 0 {
		return nil, fmt.Errorf("NotificationDispatcher: queue_size, max_attempts, retry_wait, timeout must be positive, max_retry_wait at least retry_wait")
	}
	name := env.Name
	if name == "" {
		name = "NotificationDispatcher"
	}
	n := &Notify{rules: c.Rules, urls: c.WebhookURLs, cfg: *c, log: env.Logger, metrics: consumer.NewMetrics(env.Metrics, name),
		sender: webhook.Sender{Client: &http.Client{Timeout: c.Timeout}, UserAgent: "cdpd-notifications", MaxAttempts: c.MaxAttempts,
			Retry: backoff.Policy{Base: c.RetryWait, Max: c.MaxRetryWait, Factor: 2, Jitter: 0.2}},
		queue: make(chan notifyItem, c.QueueSize), stop: make(chan struct{}), fired: map[string]time.Time{}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.failedC = consumer.Factory(env.Metrics, name).NewCounter(prometheus.CounterOpts{Namespace: consumer.MetricsNamespace,
		Name: "notifications_failed_total", Help: "Notifications given up after their delivery attempts."})
	return n, nil
}

// Start starts the delivery goroutine (stopped by Close).
func (n *Notify) Start(context.Context) error {
	n.wg.Add(1)
	go n.run()
	return nil
}

func isNumber(s string) bool { _, ok := new(big.Float).SetString(s); return ok }

// holds compares a field value with a rule's.
func holds(r NotifyRule, v string) bool {
	a, aok := new(big.Float).SetString(v)
	b, bok := new(big.Float).SetString(r.Value)
	switch r.Condition {
	case "gt":
		return aok && bok && a.Cmp(b) > 0
	case "lt":
		return aok && bok && a.Cmp(b) < 0
	default:
		if aok && bok {
			return a.Cmp(b) == 0
		}
		return v == r.Value
	}
}

// Consume queues the notifications of the ledger's matching records (waiting while the queue
// is full).
func (n *Notify) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	seq := l.Sequence()
	var ds []webhook.Delivery
	for _, r := range recs {
		raw, err := encode(r)
		if err != nil {
			return fmt.Errorf("NotificationDispatcher: ledger %d: %w", seq, err)
		}
		f := fields(raw)
		typ := text(f, "type")
		for i, rule := range n.rules {
			if rule.Type != typ && rule.Type != r.RecordKind() {
				continue
			}
			v, has := f[rule.Field]
			if !has || v == nil || !holds(rule, text(f, rule.Field)) || !n.allow(i, text(f, rule.Field), l.CloseTime()) {
				continue
			}
			n.matched.Add(1)
			body, _ := json.Marshal(map[string]any{
				"message":     fmt.Sprintf("Alert: %s with %s %s %s (%s)", rule.Type, rule.Field, rule.Condition, rule.Value, text(f, rule.Field)),
				"timestamp":   l.CloseTime().UTC(),
				"rule":        map[string]string{"type": rule.Type, "condition": rule.Condition, "field": rule.Field, "value": rule.Value},
				"natural_key": r.NaturalKey(),
				"record":      json.RawMessage(raw),
			})
			for j, u := range n.urls {
				id := r.NaturalKey() + "/" + strconv.Itoa(i) + "/" + strconv.Itoa(j)
				ds = append(ds, webhook.Delivery{URL: u, ID: id, Body: withDeliveryID(body, id)})
			}
		}
	}
	n.mu.Lock()
	n.last = seq
	if len(ds) == 0 {
		n.mu.Unlock()
		return nil
	}
	n.pending = append(n.pending, seq)
	n.mu.Unlock()
	select {
	case n.queue <- notifyItem{seq: seq, deliveries: ds}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("NotificationDispatcher: ledger %d: queue full: %w", seq, context.Cause(ctx))
	}
}

// withDeliveryID adds "delivery_id" to a JSON object.
func withDeliveryID(obj []byte, id string) []byte {
	q, _ := json.Marshal(id)
	out := make([]byte, 0, len(obj)+len(q)+16)
	out = append(out, obj[:len(obj)-1]...)
	out = append(out, `,"delivery_id":`...)
	out = append(out, q...)
	return append(out, '}')
}

// allow applies the rate limit of rule i for value v at time now (the ledger's close time).
func (n *Notify) allow(i int, v string, now time.Time) bool {
	if n.cfg.RateLimit == 0 {
		return true
	}
	key := strconv.Itoa(i) + "\x00" + v
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.fired[key]; ok && now.Sub(t) < n.cfg.RateLimit && now.Sub(t) >= 0 {
		return false
	}
	for k, t := range n.fired { // keep the map bounded by what is still quiet
		if now.Sub(t) >= n.cfg.RateLimit {
			delete(n.fired, k)
		}
	}
	n.fired[key] = now
	return true
}

// run delivers queued notifications in order until Close.
func (n *Notify) run() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		var it notifyItem
		select {
		case it = <-n.queue:
		case <-n.stop:
			return
		}
		for _, d := range it.deliveries {
			res := n.sender.Deliver(ctx, d, func(attempt int, wait time.Duration, err error) {
				n.metrics.Retries.Inc()
				n.log.Warn("notification failed, retrying", "delivery_id", d.ID, "attempt", attempt, "retry_in", wait, "error", err.Error())
			})
			switch {
			case res.Err == nil:
				n.delivered.Add(1)
				n.metrics.Records.Inc()
				n.metrics.Bytes.Add(float64(len(d.Body)))
			case ctx.Err() != nil:
				return // closing: the ledger stays not durable, a restart sends it again
			default:
				n.failed.Add(1)
				n.failedC.Inc()
				n.metrics.Errors.Inc()
				n.log.Error("notification not delivered", "delivery_id", d.ID, "attempts", res.Attempts, "error", res.Err.Error())
			}
		}
		n.mu.Lock()
		n.pending = n.pending[1:]
		n.mu.Unlock()
		n.metrics.Ledgers.Inc()
	}
}

// DurableLedger is the last ledger whose notifications are all finished (every earlier one's
// too).
func (n *Notify) DurableLedger() uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) > 0 {
		return n.pending[0] - 1
	}
	return n.last
}

// Flush waits until every queued notification is finished, or ctx ends.
func (n *Notify) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		n.mu.Lock()
		left := len(n.pending)
		n.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NotificationDispatcher: %d ledgers of notifications not finished: %w", left, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Close waits for the queued notifications (until ctx ends) and stops the delivery goroutine;
// what is left is delivered again by the next run (it is not durable).
func (n *Notify) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	err := n.Flush(ctx)
	close(n.stop)
	n.wg.Wait()
	return err
}

// Stats reports notifications_matched, notifications_delivered, notifications_failed and
// pending_ledgers.
func (n *Notify) Stats() map[string]float64 {
	n.mu.Lock()
	p := len(n.pending)
	n.mu.Unlock()
	return map[string]float64{
		"notifications_matched":   float64(n.matched.Load()),
		"notifications_delivered": float64(n.delivered.Load()),
		"notifications_failed":    float64(n.failed.Load()),
		"pending_ledgers":         float64(p),
	}
}
