package sql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// PostgresConfig is the config of SaveToPostgreSQL.
type PostgresConfig struct {
	// ConnectionString is a libpq URL or key=value string. When empty, the upstream CDP keys
	// host, port, database, username, password, sslmode build it.
	ConnectionString string `mapstructure:"connection_string"`
	Host             string `mapstructure:"host"`
	Port             int    `mapstructure:"port"`
	Database         string `mapstructure:"database"`
	Username         string `mapstructure:"username"`
	Password         string `mapstructure:"password"`
	SSLMode          string `mapstructure:"sslmode"`
	// TableName is the table of every record (default: each record kind in its own table named
	// after the kind). May be schema-qualified ("analytics.contract_events").
	TableName string `mapstructure:"table_name"`
	// BatchSize: records per transaction (default 10000). A transaction holds whole ledgers; it
	// is committed when a ledger arrives and BatchSize records are pending or the last commit
	// is FlushInterval old (so a live pipeline commits every ledger, a catch-up batches).
	BatchSize int `mapstructure:"batch_size"`
	// FlushInterval: the host flushes a pending batch this long after its first ledger
	// (component.TimedFlusher), so a quiet pipeline's last ledgers become visible (default 2s).
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// MaxOpenConns caps the connection pool (default 4).
	MaxOpenConns int `mapstructure:"max_open_conns"`
	MaxIdleConns int `mapstructure:"max_idle_conns" cdpd:"ignored: the pool keeps idle connections up to max_open_conns"`
	// ConnectTimeout in seconds (default 10).
	ConnectTimeout int `mapstructure:"connect_timeout"`
	// CreateTable creates missing tables from the record type (default true).
	CreateTable *bool `mapstructure:"create_table"`
	// CursorTable holds the consumer's position (default cdpd_cursors).
	CursorTable string `mapstructure:"cursor_table"`
	// MaxRetryWait caps the backoff between attempts while the database is unreachable (default 30s).
	MaxRetryWait time.Duration `mapstructure:"max_retry_wait"`
}

// Postgres is the SaveToPostgreSQL consumer. Each record kind goes to its own table (created
// when missing) whose first column, natural_key text PRIMARY KEY, is the record's NaturalKey;
// the other columns follow the record type (see Schema):
//
//	string text, bool boolean, int32 integer, int/int64 bigint, uint32 bigint, uint64 numeric(20),
//	float64 double precision, time.Time timestamptz, []string text[], json.RawMessage jsonb;
//	non-nullable fields are NOT NULL.
//
// Tables (the data tables, their schemas and cdpd_cursors, which many pipelines share) are
// created under an advisory lock on their name (createShared, also for the typed consumers'
// tables), so pipelines starting together on one database do not fail on each other's
// CREATE ... IF NOT EXISTS.
// Each batch is copied (COPY, pgx.CopyFrom) straight into its tables; when a key is already
// there (a replay), into a temporary table instead, merged by one INSERT ... SELECT ... ON
// CONFLICT (natural_key) DO UPDATE (skipped when the row is unchanged), so a replay is a no-op
// (copyMerge). In the same transaction the consumer's cursor
// row in cdpd_cursors(pipeline, consumer, last_ledger, updated_at, epoch) is raised to the
// transaction's last ledger (never lowered: a replay of ledgers it already holds, e.g. when
// another consumer of the pipeline lags behind, leaves it where it is): data and position
// never disagree (Position reads it). Writers are fenced by the row's owner epoch: a writer
// that another one has taken the cursor over from fails its commit with ErrFenced instead of
// writing (postgres_epoch.go). Transactions hold whole ledgers. A batch is committed in the
// background while the next one fills (one commit in flight; DurableLedger, which the host's
// checkpoint follows, moves when it lands). While the database is unreachable the commit
// retries with capped exponential backoff, and the next batch due waits for it (the pipeline
// backs up) until it succeeds or the wait's context is cancelled; Health reports "database
// unreachable: ..." meanwhile. Other database errors (bad data, a table of another shape) are
// returned by the next Consume, Flush or Close, and the failed batch is committed again
// before any later one.
type Postgres struct {
	typ      string  // CDP type name, in errors
	layout   *Layout // which table each record kind goes to
	cfg      PostgresConfig
	poolCfg  *pgxpool.Config
	pipeline string
	name     string
	log      *slog.Logger
	now      func() time.Time
	cursor   string // sanitized cursor table name

	openMu sync.Mutex
	pool   *pgxpool.Pool
	closed bool
	tables map[string]bool // tables known to exist

	mu sync.Mutex // txState but its atomics, and flight; held by Consume/Flush/Close
	txState
	flight *flight // the commit in the background, if any (pgwrite.go)
	failed *sealed // a batch whose commit failed, committed again first

	healthMu sync.Mutex
	health   string

	epoch int64 // this writer's owner epoch of its cursor row (postgres_epoch.go)

	retries atomic.Int64
}

// NewSaveToPostgreSQL is the component.ConsumerFactory of SaveToPostgreSQL.
func NewSaveToPostgreSQL(c *PostgresConfig, env component.Env) (component.Consumer, error) {
	return NewPostgres(c, env)
}

// SetDefaults implements component.Defaulter.
func (c *PostgresConfig) SetDefaults() {
	*c = PostgresConfig{BatchSize: 10000, FlushInterval: 2 * time.Second, MaxOpenConns: 4, ConnectTimeout: 10,
		CursorTable: "cdpd_cursors", MaxRetryWait: 30 * time.Second}
}

// NewPostgres validates the config; it connects to nothing (see Start).
func NewPostgres(cp *PostgresConfig, env component.Env) (*Postgres, error) {
	return newPostgres("SaveToPostgreSQL", genericLayout, cp, env)
}

// newPostgres is the writer of every PostgreSQL consumer: typ is its CDP type name, layout
// where its records go.
func newPostgres(typ string, layout *Layout, cp *PostgresConfig, env component.Env) (*Postgres, error) {
	c := *cp
	conn := c.ConnectionString
	if conn == "" {
		if c.Host == "" {
			return nil, errors.New(typ + ": connection_string (or host, database, username) is required")
		}
		conn = keyValueConnString(c)
	} else if c.Host != "" || c.Database != "" || c.Username != "" || c.Password != "" {
		return nil, errors.New(typ + ": give either connection_string or host/port/database/username/password, not both")
	}
	if c.BatchSize <= 0 || c.MaxOpenConns <= 0 || c.ConnectTimeout <= 0 || c.MaxRetryWait <= 0 || c.FlushInterval <= 0 {
		return nil, errors.New(typ + ": batch_size, flush_interval, max_open_conns, connect_timeout and max_retry_wait must be positive")
	}
	pc, err := pgxpool.ParseConfig(conn)
	if err != nil {
		// pgx redacts the password; drop the string itself anyway: it may hold secrets.
		msg := strings.ReplaceAll(err.Error(), conn, "<connection_string>")
		return nil, fmt.Errorf("%s: connection_string is invalid: %s", typ, msg)
	}
	pc.MaxConns = int32(c.MaxOpenConns)
	pc.ConnConfig.ConnectTimeout = time.Duration(c.ConnectTimeout) * time.Second
	pc.HealthCheckPeriod = 5 * time.Second
	if c.CursorTable == "" {
		return nil, errors.New(typ + ": cursor_table must not be empty")
	}
	p := &Postgres{typ: typ, layout: layout, cfg: c, poolCfg: pc, pipeline: env.Pipeline, name: env.Name, log: env.Logger,
		now: env.Now, cursor: sanitizeTable(c.CursorTable), tables: map[string]bool{},
		txState: txState{pending: newBatch(layout, c.TableName, pgValue)}}
	if p.name == "" {
		p.name = typ
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

func keyValueConnString(c PostgresConfig) string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	parts := []string{"host=" + q(c.Host)}
	if c.Port != 0 {
		parts = append(parts, fmt.Sprintf("port=%d", c.Port))
	}
	if c.Database != "" {
		parts = append(parts, "dbname="+q(c.Database))
	}
	if c.Username != "" {
		parts = append(parts, "user="+q(c.Username))
	}
	if c.Password != "" {
		parts = append(parts, "password="+q(c.Password))
	}
	sslmode := c.SSLMode
	if sslmode == "" {
		sslmode = "disable" // the upstream default
	}
	parts = append(parts, "sslmode="+q(sslmode))
	return strings.Join(parts, " ")
}

// sanitizeTable quotes a table name, splitting an optional schema qualifier.
func sanitizeTable(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// Start opens the pool and creates the cursor table (one attempt: an unreachable database
// fails the start, and the host retries the pipeline with backoff).
func (p *Postgres) Start(ctx context.Context) error {
	_, err := p.ensurePool(ctx)
	return err
}

func (p *Postgres) ensurePool(ctx context.Context) (*pgxpool.Pool, error) {
	p.openMu.Lock()
	defer p.openMu.Unlock()
	if p.pool != nil {
		return p.pool, nil
	}
	if p.closed {
		return nil, permanent(errors.New(p.typ + ": used after Close"))
	}
	pool, err := pgxpool.NewWithConfig(ctx, p.poolCfg)
	if err != nil {
		return nil, fmt.Errorf("%s: creating connection pool: %w", p.typ, err)
	}
	err = createShared(ctx, pool, p.cursor, `CREATE TABLE IF NOT EXISTS `+p.cursor+` (
	pipeline text NOT NULL,
	consumer text NOT NULL,
	last_ledger bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	`+pgCursorEpochColumn+`,
	PRIMARY KEY (pipeline, consumer))`)
	if err != nil {
		pool.Close()
		p.setHealth("database unreachable: " + err.Error())
		return nil, fmt.Errorf("%s: creating cursor table %s: %w", p.typ, p.cfg.CursorTable, err)
	}
	if err := p.claimEpoch(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", p.typ, err)
	}
	p.pool = pool
	return pool, nil
}

// Position returns the last ledger committed by this consumer (pipeline name and component
// name identify its cursor row).
func (p *Postgres) Position(ctx context.Context) (uint32, bool, error) {
	var q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	p.openMu.Lock()
	closed := p.closed
	p.openMu.Unlock()
	if closed { // after Close: a connection of its own
		conn, err := pgx.ConnectConfig(ctx, p.poolCfg.ConnConfig)
		if err != nil {
			return 0, false, fmt.Errorf("%s: connecting to read the cursor: %w", p.typ, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		q = conn
	} else {
		pool, err := p.ensurePool(ctx)
		if err != nil {
			return 0, false, err
		}
		q = pool
	}
	var last int64
	err := q.QueryRow(ctx, `SELECT last_ledger FROM `+p.cursor+` WHERE pipeline = $1 AND consumer = $2`,
		p.pipeline, p.name).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s: reading cursor: %w", p.typ, err)
	}
	return uint32(last), last > 0, nil // 0: a writer took the row before its first commit
}

// Consume adds the ledger's records to the pending transaction and commits it when it is big
// or old enough.
func (p *Postgres) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq := l.Sequence()
	if err := p.add(p.typ, seq, recs); err != nil {
		return err
	}
	if p.due(p.cfg.BatchSize, p.cfg.FlushInterval, p.now()) {
		return p.commitLocked(ctx, false)
	}
	return nil
}

// pgValue converts a Schema value to what pgx encodes into the column type.
func pgValue(v any) any {
	switch x := v.(type) {
	case uint32:
		return int64(x)
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}
	case json.RawMessage:
		return string(x) // JSON text for jsonb
	}
	return v
}

// FlushInterval implements component.TimedFlusher (flush_interval).
func (p *Postgres) FlushInterval() time.Duration { return p.cfg.FlushInterval }

// Flush commits the pending transaction and waits for it.
func (p *Postgres) Flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commitLocked(ctx, true)
}

// Close commits the pending transaction and closes the pool.
func (p *Postgres) Close(ctx context.Context) error {
	p.mu.Lock()
	err := p.commitLocked(ctx, true)
	p.mu.Unlock()
	p.openMu.Lock()
	if p.pool != nil {
		p.pool.Close()
		p.pool = nil
	}
	p.closed = true
	p.openMu.Unlock()
	return err
}

// DurableLedger is the last ledger committed (with the cursor) to the database.
func (p *Postgres) DurableLedger() uint32 { return p.durable.Load() }

// Stats reports records_written, batches_written, last_ledger, retries.
func (p *Postgres) Stats() map[string]float64 {
	return map[string]float64{
		"records_written": float64(p.records.Load()),
		"batches_written": float64(p.batches.Load()),
		"last_ledger":     float64(p.durable.Load()),
		"retries":         float64(p.retries.Load()),
	}
}

// Health is "" when the last database operation succeeded, else "database unreachable: ...".
func (p *Postgres) Health() string {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	return p.health
}

func (p *Postgres) setHealth(s string) {
	p.healthMu.Lock()
	p.health = s
	p.healthMu.Unlock()
}
