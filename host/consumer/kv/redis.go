package kv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/backoff"
)

// ConnConfig holds the connection keys every Redis consumer takes (upstream's spelling) and
// cdpd's cursor and retry keys.
type ConnConfig struct {
	// URL is a redis:// or rediss:// URL (it may carry the password and the database); when
	// set, the address keys must not be.
	URL     string `mapstructure:"redis_url"`
	Address string `mapstructure:"redis_address"` // host:port
	// Addr is another spelling of redis_address, the one upstream's shipped example files use
	// (upstream itself reads only redis_address, so those files fail there; here they work).
	Addr     string `mapstructure:"address"`
	Password string `mapstructure:"redis_password"`
	DB       int    `mapstructure:"redis_db"`
	UseTLS   bool   `mapstructure:"use_tls"` // TLS 1.2 or later to redis_address
	// CursorKey is the hash holding the consumers' positions (field "<pipeline>/<consumer>").
	CursorKey string `mapstructure:"cursor_key"`
	// MaxRetryWait caps the backoff between attempts while Redis is unreachable.
	MaxRetryWait time.Duration `mapstructure:"max_retry_wait"`
}

func (c *ConnConfig) setDefaults() {
	c.CursorKey = "cdpd_cursors"
	c.MaxRetryWait = 30 * time.Second
}

// options builds the client options; errors never quote the URL or the password.
func (c *ConnConfig) options(typ string) (*redis.Options, error) {
	switch {
	case c.Address == "":
		c.Address = c.Addr
	case c.Addr != "" && c.Addr != c.Address:
		return nil, fmt.Errorf("%s: redis_address and address differ (they are one key: give one)", typ)
	}
	var o *redis.Options
	switch {
	case c.URL != "" && (c.Address != "" || c.Password != "" || c.DB != 0):
		return nil, fmt.Errorf("%s: give either redis_url or redis_address/redis_password/redis_db, not both", typ)
	case c.URL != "":
		var err error
		if o, err = redis.ParseURL(c.URL); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("%s: redis_url is invalid: %s", typ, strings.ReplaceAll(err.Error(), c.URL, "<redis_url>"))
		}
		if c.UseTLS && o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	case c.Address != "":
		o = &redis.Options{Addr: c.Address, Password: c.Password, DB: c.DB}
		if c.UseTLS {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, fmt.Errorf("%s: redis_address (or redis_url) is required", typ)
	}
	if c.DB < 0 {
		return nil, fmt.Errorf("%s: redis_db must not be negative", typ)
	}
	if c.CursorKey == "" || c.MaxRetryWait <= 0 {
		return nil, fmt.Errorf("%s: cursor_key must not be empty and max_retry_wait must be positive", typ)
	}
	// One retry loop (ours, with the cursor check), no handshake extras an older server
	// answers with errors, a small pool: one transaction at a time.
	o.MaxRetries = -1
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.PoolSize = 2
	o.DialTimeout = 5 * time.Second
	o.ReadTimeout = 30 * time.Second // a ledger's transaction may be large
	o.WriteTimeout = 30 * time.Second
	return o, nil
}

// shape turns one ledger's records into Redis commands.
type shape interface {
	// prepare encodes the ledger's records (seq, now) into a batch; errors name the record.
	prepare(seq uint32, recs []component.Record, now time.Time) (*batch, error)
}

// batch is the prepared writes of one ledger: apply queues them on a pipeline (called again
// for a retry).
type batch struct {
	records, bytes int
	apply          func(ctx context.Context, p redis.Pipeliner)
}

// Sink is a Redis consumer: a shape's writes, one MULTI/EXEC per ledger with the cursor (see
// the package doc for the data-safety contract).
type Sink struct {
	typ      string
	opts     *redis.Options
	cfg      ConnConfig
	shape    shape
	field    string // cursor field: <pipeline>/<consumer>
	log      *slog.Logger
	now      func() time.Time
	metrics  *consumer.Metrics
	retryPol backoff.Policy

	openMu sync.Mutex
	client *redis.Client
	closed bool

	mu     sync.Mutex // Consume, Position
	pos    uint32     // the cursor as last read or written
	hasPos bool

	healthMu sync.Mutex
	health   string

	records, bytes, ledgers, skipped, retries atomic.Int64
	last                                      atomic.Uint32
}

// clientLog sends go-redis's own log lines (dial failures, pool notes: the outages our retry
// loop already reports with the pipeline) to slog at debug level instead of standard error.
type clientLog struct{}

func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

var setClientLog sync.Once

func newSink(typ string, c *ConnConfig, sh shape, env component.Env) (*Sink, error) {
	setClientLog.Do(func() { redis.SetLogger(clientLog{}) })
	o, err := c.options(typ)
	if err != nil {
		return nil, err
	}
	name := env.Name
	if name == "" {
		name = typ
	}
	s := &Sink{typ: typ, opts: o, cfg: *c, shape: sh, field: env.Pipeline + "/" + name, log: env.Logger, now: env.Now,
		metrics:  consumer.NewMetrics(env.Metrics, name),
		retryPol: backoff.Policy{Base: 100 * time.Millisecond, Max: c.MaxRetryWait, Factor: 2, Jitter: 0.2}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Start opens the client and reads the cursor (one attempt: an unreachable Redis fails the
// start, and the host retries the pipeline with backoff).
func (s *Sink) Start(ctx context.Context) error {
	s.openMu.Lock()
	if s.closed {
		s.openMu.Unlock()
		return fmt.Errorf("%s: started after Close", s.typ)
	}
	if s.client == nil {
		s.client = redis.NewClient(s.opts)
	}
	s.openMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readCursorLocked(ctx); err != nil {
		s.setHealth("redis unreachable: " + err.Error())
		return err
	}
	return nil
}

func (s *Sink) conn() (*redis.Client, error) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.client == nil {
		if s.closed {
			return nil, fmt.Errorf("%s: used after Close", s.typ)
		}
		s.client = redis.NewClient(s.opts) // Start was skipped
	}
	return s.client, nil
}

// readCursorLocked loads the consumer's cursor into pos/hasPos.
func (s *Sink) readCursorLocked(ctx context.Context) error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	v, err := c.HGet(ctx, s.cfg.CursorKey, s.field).Result()
	if errors.Is(err, redis.Nil) {
		s.hasPos = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: reading cursor %s: %w", s.typ, s.cfg.CursorKey, err)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("%s: cursor %s field %s holds %q, not a ledger sequence", s.typ, s.cfg.CursorKey, s.field, v)
	}
	s.pos, s.hasPos = uint32(n), true
	s.last.Store(s.pos)
	return nil
}

// Position is the last ledger whose writes Redis holds (the cursor).
func (s *Sink) Position(ctx context.Context) (uint32, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readCursorLocked(ctx); err != nil {
		return 0, false, err
	}
	return s.pos, s.hasPos, nil
}

// Consume writes the ledger's records and the cursor in one transaction; a ledger at or below
// the cursor is skipped.
func (s *Sink) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := l.Sequence()
	if s.hasPos && seq <= s.pos {
		s.skipped.Add(1)
		return nil
	}
	b, err := s.shape.prepare(seq, recs, s.now())
	if err != nil {
		return fmt.Errorf("%s: ledger %d: %w", s.typ, seq, err)
	}
	c, err := s.conn()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := s.exec(ctx, c, seq, b)
		if err == nil {
			break
		}
		s.metrics.Errors.Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: ledger %d: %w (gave up: %w)", s.typ, seq, err, context.Cause(ctx))
		}
		if !retryable(err) {
			return s.failLocked(ctx, c, seq, err)
		}
		wait := s.retryPol.Delay(attempt)
		s.retries.Add(1)
		s.metrics.Retries.Inc()
		s.setHealth("redis unreachable: " + err.Error())
		s.log.Warn("redis unreachable, retrying", "error", err.Error(), "ledger", seq, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: ledger %d: redis unreachable: %w (gave up: %w)", s.typ, seq, err, context.Cause(ctx))
		case <-t.C:
		}
		// The transaction may have landed before the connection broke: the cursor says.
		if err := s.readCursorLocked(ctx); err == nil && s.hasPos && s.pos >= seq {
			break
		}
	}
	s.setHealth("")
	s.pos, s.hasPos = seq, true
	s.last.Store(seq)
	s.records.Add(int64(b.records))
	s.bytes.Add(int64(b.bytes))
	s.ledgers.Add(1)
	s.metrics.Records.Add(float64(b.records))
	s.metrics.Bytes.Add(float64(b.bytes))
	s.metrics.Ledgers.Inc()
	return nil
}

// exec sends the batch and the cursor as one MULTI/EXEC.
func (s *Sink) exec(ctx context.Context, c *redis.Client, seq uint32, b *batch) error {
	p := c.TxPipeline()
	b.apply(ctx, p)
	p.HSet(ctx, s.cfg.CursorKey, s.field, seq)
	_, err := p.Exec(ctx)
	return err
}

// failLocked handles an error Redis answered: when the transaction ran (an error inside EXEC
// does not undo the other commands), the cursor is put back so that it never claims a ledger
// whose writes failed.
func (s *Sink) failLocked(ctx context.Context, c *redis.Client, seq uint32, cause error) error {
	var err error
	if s.hasPos {
		err = c.HSet(ctx, s.cfg.CursorKey, s.field, s.pos).Err()
	} else {
		err = c.HDel(ctx, s.cfg.CursorKey, s.field).Err()
	}
	if err != nil {
		return fmt.Errorf("%s: ledger %d: %w (and putting the cursor back failed: %w)", s.typ, seq, cause, err)
	}
	return fmt.Errorf("%s: ledger %d: redis answered: %w", s.typ, seq, cause)
}

// retryable reports whether err means Redis is (for now) unreachable or unable, as opposed to
// an answer about the data that retrying cannot change.
func retryable(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return true // network errors, timeouts, closed connections
	}
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsOOMError(err) ||
		strings.HasPrefix(err.Error(), "BUSY ")
}

// Flush does nothing: every Consume commits its ledger.
func (s *Sink) Flush(context.Context) error { return nil }

// Close closes the client.
func (s *Sink) Close(context.Context) error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.closed = true
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	if err != nil {
		return fmt.Errorf("%s: closing the client: %w", s.typ, err)
	}
	return nil
}

// Stats reports records_written, bytes_written, ledgers_written, ledgers_skipped (replays at
// or below the cursor), retries and last_ledger (the cursor).
func (s *Sink) Stats() map[string]float64 {
	return map[string]float64{
		"records_written": float64(s.records.Load()),
		"bytes_written":   float64(s.bytes.Load()),
		"ledgers_written": float64(s.ledgers.Load()),
		"ledgers_skipped": float64(s.skipped.Load()),
		"retries":         float64(s.retries.Load()),
		"last_ledger":     float64(s.last.Load()),
	}
}

// Health is "" when the last Redis operation succeeded, else "redis unreachable: ...".
func (s *Sink) Health() string {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.health
}

func (s *Sink) setHealth(h string) {
	s.healthMu.Lock()
	s.health = h
	s.healthMu.Unlock()
}
