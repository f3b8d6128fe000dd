package file

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// DebugLoggerConfig is the config of DebugLogger, with upstream's keys.
type DebugLoggerConfig struct {
	// Name and LogPrefix are accepted as upstream has them; the lines carry the pipeline and
	// component attributes instead (config values are never logged).
	Name      string `mapstructure:"name"`
	LogPrefix string `mapstructure:"log_prefix"`
	// MaxFields is the most fields logged per record (default 10).
	MaxFields int `mapstructure:"max_fields"`
}

// SetDefaults implements component.Defaulter.
func (c *DebugLoggerConfig) SetDefaults() { *c = DebugLoggerConfig{MaxFields: 10} }

// LogDebugConfig is the config of LogDebug, with upstream's key.
type LogDebugConfig struct {
	// LogLevel: info (default) logs a summary per ledger; debug also logs every record as
	// JSON (at most maxDebugJSON bytes each).
	LogLevel string `mapstructure:"log_level"`
}

// SetDefaults implements component.Defaulter.
func (c *LogDebugConfig) SetDefaults() { *c = LogDebugConfig{LogLevel: "info"} }

// maxDebugJSON bounds the JSON of one record in LogDebug's lines; maxDebugValue a field's
// value in DebugLogger's (as upstream: 50 characters).
const (
	maxDebugJSON  = 4096
	maxDebugValue = 50
)

// Debug is DebugLogger and LogDebug: they log what reaches them through the pipeline's logger
// (env.Logger, with its pipeline and component attributes) at debug level, so the lines show
// when cdpd runs with --log-level debug and cost nothing otherwise. Upstream printed with the
// standard logger at every level.
//
// DebugLogger logs one line per record: its kind, its natural key and its first max_fields
// fields (in field order, strings cut to 50 characters, lists and objects as their size).
// LogDebug logs one line per ledger (sequence, close time, records per kind) and, with
// log_level debug, one line per record with its JSON (cut to 4 KiB).
//
// Data safety: none is claimed; they keep nothing, and a replay logs the ledgers again.
type Debug struct {
	typ       string
	log       *slog.Logger
	m         *consumer.Metrics
	maxFields int  // DebugLogger: fields per record; 0 for LogDebug
	records   bool // LogDebug: log every record's JSON

	ledgers atomic.Int64
	recs    atomic.Int64
	last    atomic.Uint32
}

// NewDebugLogger is DebugLogger's constructor.
func NewDebugLogger(c *DebugLoggerConfig, env component.Env) (component.Consumer, error) {
	if c.MaxFields < 0 {
		return nil, fmt.Errorf("DebugLogger: max_fields must not be negative (got %d)", c.MaxFields)
	}
	return newDebug("DebugLogger", env, c.MaxFields, false), nil
}

// NewLogDebug is LogDebug's constructor.
func NewLogDebug(c *LogDebugConfig, env component.Env) (component.Consumer, error) {
	switch c.LogLevel {
	case "", "info", "debug":
	default:
		return nil, fmt.Errorf("LogDebug: log_level must be info or debug (got %q)", c.LogLevel)
	}
	return newDebug("LogDebug", env, 0, c.LogLevel == "debug"), nil
}

func newDebug(typ string, env component.Env, maxFields int, records bool) *Debug {
	d := &Debug{typ: typ, log: env.Logger, m: consumer.NewMetrics(env.Metrics, env.Name), maxFields: maxFields, records: records}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d
}

// Consume logs the ledger's records.
func (d *Debug) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	seq := l.Sequence()
	if d.log.Enabled(ctx, slog.LevelDebug) {
		if d.typ == "LogDebug" {
			d.logLedger(ctx, l, recs)
		} else {
			for _, r := range recs {
				d.logFields(ctx, seq, r)
			}
		}
	}
	d.ledgers.Add(1)
	d.recs.Add(int64(len(recs)))
	d.last.Store(seq)
	d.m.Ledgers.Inc()
	d.m.Records.Add(float64(len(recs)))
	return nil
}

func (d *Debug) logLedger(ctx context.Context, l *ledger.Ledger, recs []component.Record) {
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[r.RecordKind()]++
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	attrs := []any{"ledger", l.Sequence(), "close_time", l.CloseTime().UTC(), "records", len(recs)}
	for _, k := range names {
		attrs = append(attrs, slog.Int("kind."+k, kinds[k]))
	}
	d.log.DebugContext(ctx, "ledger received", attrs...)
	if !d.records {
		return
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		text := string(b)
		if err != nil {
			text = "(not JSON: " + err.Error() + ")"
		} else if len(text) > maxDebugJSON {
			text = text[:maxDebugJSON] + "…"
		}
		d.log.DebugContext(ctx, "record", "ledger", l.Sequence(), "kind", r.RecordKind(), "key", r.NaturalKey(), "json", text)
	}
}

func (d *Debug) logFields(ctx context.Context, seq uint32, r component.Record) {
	attrs := []any{"ledger", seq, "kind", r.RecordKind(), "key", r.NaturalKey()}
	s, err := consumer.SchemaOf(r)
	if err != nil {
		d.log.DebugContext(ctx, "record", append(attrs, "error", err.Error())...)
		return
	}
	vals, err := s.Values(r, nil)
	if err != nil {
		d.log.DebugContext(ctx, "record", append(attrs, "error", err.Error())...)
		return
	}
	n := min(d.maxFields, len(vals))
	for i := 0; i < n; i++ {
		attrs = append(attrs, slog.String("field."+s.Columns[i].Name, debugValue(vals[i])))
	}
	if more := len(vals) - n; more > 0 {
		attrs = append(attrs, "more_fields", more)
	}
	d.log.DebugContext(ctx, "record", attrs...)
}

// debugValue summarises one value as upstream did: strings cut to 50 characters, lists and
// JSON as their size.
func debugValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if r := []rune(x); len(r) > maxDebugValue {
			return string(r[:maxDebugValue]) + "… (truncated)"
		}
		return x
	case []string:
		return fmt.Sprintf("array[%d items]", len(x))
	case json.RawMessage:
		return fmt.Sprintf("json[%d bytes]", len(x))
	}
	return fmt.Sprint(cellValue(v))
}

// Flush does nothing: nothing is buffered.
func (d *Debug) Flush(context.Context) error { return nil }

// Close does nothing.
func (d *Debug) Close(context.Context) error { return nil }

// Stats reports ledgers_consumed, records_consumed and last_ledger.
func (d *Debug) Stats() map[string]float64 {
	return map[string]float64{
		"ledgers_consumed": float64(d.ledgers.Load()),
		"records_consumed": float64(d.recs.Load()),
		"last_ledger":      float64(d.last.Load()),
	}
}
