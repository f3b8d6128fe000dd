package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// ParquetConfig is the config of SaveToParquet, with the keys of the upstream CDP consumer.
type ParquetConfig struct {
	// Where the files go: storage_type (FS, GCS, S3), local_path, bucket_name, path_prefix,
	// region, endpoint, gcs_options.
	StorageConfig `mapstructure:",squash"`
	// Compression: snappy (default), zstd, gzip, lz4 (LZ4_RAW), none.
	Compression string `mapstructure:"compression"`
	// BufferSize: a file is written once this many records are buffered (default 10000).
	BufferSize int `mapstructure:"buffer_size"`
	// MaxFileSizeMB: a file is written once the buffered rows' uncompressed size estimate
	// reaches this (default 128).
	MaxFileSizeMB int `mapstructure:"max_file_size_mb"`
	// RotationIntervalMinutes: a file is written once its first ledger was buffered this long
	// ago (default 60; checked when a ledger arrives).
	RotationIntervalMinutes int `mapstructure:"rotation_interval_minutes"`
	// FlushInterval: the host writes the buffered records this long after the first ledger
	// buffered since the last write (default 5s), so that a pipeline at the tip has its rows
	// (and its checkpoint) within the interval; each write is a file per record kind, so a
	// longer interval makes fewer, larger files at the tip.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// PartitionBy: ledger_day (default; year=YYYY/month=MM/day=DD of the ledger close time),
	// hour (…/hour=HH), ledger_range (ledgers/<start>-<end>, ledgers_per_file wide), none.
	PartitionBy string `mapstructure:"partition_by"`
	// LedgersPerFile is the width of a ledger_range partition (default 10000).
	LedgersPerFile uint32 `mapstructure:"ledgers_per_file"`

	// Accepted so upstream files load.
	SchemaEvolution bool `mapstructure:"schema_evolution" cdpd:"ignored: the schema is the record type"`
	IncludeMetadata bool `mapstructure:"include_metadata" cdpd:"ignored: the ledger range is in each file's metadata and name"`
	Debug           bool `mapstructure:"debug" cdpd:"ignored: use --log-level debug"`
	DryRun          bool `mapstructure:"dry_run"` // not supported: an error when true
}

// Parquet is the SaveToParquet consumer: records are buffered per record kind and written as
// one Parquet file (an object, on GCS and S3) per kind and window of whole ledgers:
//
//	<path_prefix>/<kind>/<partition>/<kind>_<first>-<last>.parquet
//
// under local_path (FS) or in bucket_name (GCS, S3), ledger numbers zero-padded to 10 digits.
// A file covers every record of its kind in ledgers first..last; it is written atomically
// through the Store (FS: temporary name, fsync, rename; GCS/S3: one upload). When a file is
// written, existing files of the same kind whose ranges overlap it are cut (their ledgers
// outside the new range are rewritten into files of their own, using the per-ledger row counts
// every file carries in its key/value metadata) and removed, so a replay of ledgers after a
// crash replaces instead of doubling, whatever window boundaries the replay uses. Start
// repairs overlaps left by a crash in the middle of that and removes temporary files.
//
// Data safety: exactly-once in the files. A kill -9 loses only buffered rows, of ledgers after
// DurableLedger, which the checkpoint has not passed, so they are replayed; a replay replaces
// the files it overlaps (the reliability suite checks every ledger lands once). Files are
// written when buffer_size records or max_file_size_mb are buffered, when the partition
// changes, rotation_interval_minutes after the window opened, and flush_interval after it
// (component.TimedFlusher, by the host). Upstream named files by wall time and doubled rows on
// every replay.
type Parquet struct {
	typ     string      // the consumer's type name, in errors
	single  *singleKind // when set, the one record kind written (other kinds are an error)
	cfg     ParquetConfig
	storage string // FS, GCS or S3
	codec   compress.Codec
	log     *slog.Logger
	now     func() time.Time
	rotate  time.Duration
	sinkState

	mu      sync.Mutex
	started bool
	store   Store
	files   map[string][]fileRange // kind -> files, sorted by first ledger
	buf     map[string]*kindBuffer
	win     window

	written  atomic.Int64
	bytes    atomic.Int64
	records  atomic.Int64
	buffered atomic.Int64
}

type window struct {
	open        bool
	first, last uint32
	part        string
	opened      time.Time
	records     int
	ledgers     int
	size        int64
}

type kindBuffer struct {
	schema *consumer.Schema
	pq     *parquet.Schema // the files' schema
	rows   []parquet.Row
	counts []ledgerCount // rows per ledger, in ledger order
	vals   []any
}

type ledgerCount struct {
	seq uint32
	n   int
}

// fileRange is one file of a kind: its ledgers and its key in the store.
type fileRange struct {
	first, last uint32
	key         string
}

const (
	metaLedgerRows = "cdpd.ledger_rows" // "seq:count,seq:count,..." for ledgers with rows
	metaFirst      = "cdpd.first_ledger"
	metaLast       = "cdpd.last_ledger"
)

var fileNameRE = regexp.MustCompile(`^(.+)_(\d{10})-(\d{10})\.parquet$`)

// DefaultFlushInterval is the flush_interval of the buffering file consumers.
const DefaultFlushInterval = 5 * time.Second

// SetDefaults implements component.Defaulter.
func (c *ParquetConfig) SetDefaults() {
	*c = ParquetConfig{Compression: "snappy", BufferSize: 10000, MaxFileSizeMB: 128,
		RotationIntervalMinutes: 60, FlushInterval: DefaultFlushInterval, PartitionBy: "ledger_day", LedgersPerFile: 10000}
}

// NewSaveToParquet is SaveToParquet's constructor.
func NewSaveToParquet(c *ParquetConfig, env component.Env) (component.Consumer, error) {
	return NewParquet(c, env)
}

// NewParquet validates the config; it opens nothing (see Start).
func NewParquet(cp *ParquetConfig, env component.Env) (*Parquet, error) {
	return newParquet("SaveToParquet", nil, cp, env)
}

// singleKind makes a Parquet writer of one record kind whose rows have a schema of their own
// (nested columns) instead of the record's flat columns (consumer.Schema).
type singleKind struct {
	kind   string
	schema *parquet.Schema
	// row is the Parquet row of a record of kind, with an estimate of its size in bytes.
	row func(component.Record) (parquet.Row, int, error)
}

// newParquet is the Parquet writer of consumer typ; single, when set, is the one record kind
// it takes and how its rows are made.
func newParquet(typ string, single *singleKind, cp *ParquetConfig, env component.Env) (*Parquet, error) {
	c := *cp
	st, err := c.check(typ)
	if err != nil {
		return nil, err
	}
	if c.DryRun {
		return nil, fmt.Errorf("%s: dry_run is not supported", typ)
	}
	if c.BufferSize <= 0 || c.MaxFileSizeMB <= 0 || c.RotationIntervalMinutes <= 0 {
		return nil, fmt.Errorf("%s: buffer_size, max_file_size_mb and rotation_interval_minutes must be positive (got %d, %d, %d)", typ,
			c.BufferSize, c.MaxFileSizeMB, c.RotationIntervalMinutes)
	}
	if err := checkFlushInterval(c.FlushInterval); err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	if c.LedgersPerFile == 0 {
		return nil, fmt.Errorf("%s: ledgers_per_file must be positive", typ)
	}
	switch c.PartitionBy {
	case "", "none", "ledger_day", "hour", "ledger_range":
	default:
		return nil, fmt.Errorf("%s: unknown partition_by %q (ledger_day, hour, ledger_range or none)", typ, c.PartitionBy)
	}
	var codec compress.Codec
	switch strings.ToLower(c.Compression) {
	case "snappy", "":
		codec = &parquet.Snappy
	case "zstd":
		codec = &parquet.Zstd
	case "gzip":
		codec = &parquet.Gzip
	case "lz4":
		codec = &parquet.Lz4Raw
	case "none", "uncompressed":
		codec = &parquet.Uncompressed
	default:
		return nil, fmt.Errorf("%s: unknown compression %q (snappy, zstd, gzip, lz4 or none)", typ, c.Compression)
	}
	p := &Parquet{typ: typ, single: single, cfg: c, storage: st, codec: codec, log: env.Logger, now: env.Now,
		rotate: time.Duration(c.RotationIntervalMinutes) * time.Minute, sinkState: sinkState{m: consumer.NewMetrics(env.Metrics, env.Name)}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// checkFlushInterval rejects a flush_interval below a millisecond ("100us"), which would flush
// after every ledger (a bare number is seconds: component.Decode).
func checkFlushInterval(d time.Duration) error {
	if d < time.Millisecond {
		return fmt.Errorf("flush_interval must be at least 1ms (a bare number is seconds; got %s)", d)
	}
	return nil
}

// Start opens the store, indexes the existing files, removes temporary files and repairs
// overlapping files left by a crash.
func (p *Parquet) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	store, err := openStore(ctx, &p.cfg.StorageConfig, p.storage)
	if err != nil {
		return fmt.Errorf("%s: %w", p.typ, err)
	}
	p.store = store
	p.files = map[string][]fileRange{}
	p.buf = map[string]*kindBuffer{}
	n, err := store.RemoveTemps(ctx, func(dest string) bool { return strings.HasSuffix(dest, ".parquet") })
	if err != nil {
		return fmt.Errorf("%s: removing temporary files of interrupted writes: %w", p.typ, err)
	}
	if n > 0 {
		p.log.Info("removed temporary files of interrupted writes", "files", n)
	}
	err = store.List(ctx, "", func(key string) error {
		kind, _, _ := strings.Cut(key, "/")
		m := fileNameRE.FindStringSubmatch(path.Base(key))
		if m == nil || m[1] != kind {
			return nil
		}
		first, _ := strconv.ParseUint(m[2], 10, 32)
		last, _ := strconv.ParseUint(m[3], 10, 32)
		p.files[kind] = append(p.files[kind], fileRange{first: uint32(first), last: uint32(last), key: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: indexing existing files: %w", p.typ, err)
	}
	for kind := range p.files {
		if err := p.repair(ctx, kind); err != nil {
			return fmt.Errorf("%s: repairing overlapping files of %s: %w", p.typ, kind, err)
		}
	}
	p.started = true
	return nil
}

// partition is the partition directory of a ledger.
func (p *Parquet) partition(l *ledger.Ledger) string {
	t := l.CloseTime().UTC()
	switch p.cfg.PartitionBy {
	case "ledger_day":
		return fmt.Sprintf("year=%04d/month=%02d/day=%02d", t.Year(), t.Month(), t.Day())
	case "hour":
		return fmt.Sprintf("year=%04d/month=%02d/day=%02d/hour=%02d", t.Year(), t.Month(), t.Day(), t.Hour())
	case "ledger_range":
		n := p.cfg.LedgersPerFile
		start := l.Sequence() / n * n
		return fmt.Sprintf("ledgers/%d-%d", start, start+n-1)
	}
	return ""
}

// Consume buffers the records of one ledger and writes the buffer when it is full.
func (p *Parquet) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return fmt.Errorf("%s: Consume before Start", p.typ)
	}
	seq := l.Sequence()
	if p.win.open && seq <= p.win.last {
		return fmt.Errorf("%s: ledger %d arrived after ledger %d (ledgers must ascend)", p.typ, seq, p.win.last)
	}
	for _, r := range recs {
		if p.single != nil && r.RecordKind() != p.single.kind {
			return fmt.Errorf("%s: ledger %d: records of kind %q are not written by this consumer (it takes %s)", p.typ, seq, r.RecordKind(), p.single.kind)
		}
	}
	part := p.partition(l)
	if p.win.open && part != p.win.part {
		if err := p.flushLocked(ctx); err != nil {
			return err
		}
	}
	if !p.win.open {
		p.win = window{open: true, first: seq, part: part, opened: p.now()}
	}
	p.win.last = seq
	p.win.ledgers++
	for _, r := range recs {
		s, err := consumer.SchemaOf(r)
		if err != nil {
			return fmt.Errorf("%s: ledger %d: %w", p.typ, seq, err)
		}
		b := p.buf[s.Kind]
		if b == nil {
			b = &kindBuffer{schema: s}
			if p.single != nil {
				b.pq = p.single.schema
			} else {
				b.pq = parquetSchema(s)
			}
			p.buf[s.Kind] = b
		}
		var row parquet.Row
		var size int
		if p.single != nil {
			row, size, err = p.single.row(r)
		} else if b.vals, err = s.Values(r, b.vals[:0]); err == nil {
			row, size = appendParquetRow(nil, s, b.vals)
		}
		if err != nil {
			return fmt.Errorf("%s: ledger %d: %w", p.typ, seq, err)
		}
		b.rows = append(b.rows, row)
		if n := len(b.counts); n > 0 && b.counts[n-1].seq == seq {
			b.counts[n-1].n++
		} else {
			b.counts = append(b.counts, ledgerCount{seq: seq, n: 1})
		}
		p.win.records++
		p.win.size += int64(size)
	}
	p.buffered.Store(int64(p.win.records))
	if p.win.records == 0 {
		// Nothing buffered: every ledger so far is durable; the next window starts afresh.
		p.win.open = false
		p.durable.Store(seq)
		p.m.Ledgers.Add(float64(p.win.ledgers))
		return nil
	}
	if p.win.records >= p.cfg.BufferSize || p.win.size >= int64(p.cfg.MaxFileSizeMB)<<20 || p.now().Sub(p.win.opened) >= p.rotate {
		return p.flushLocked(ctx)
	}
	return nil
}

// Flush writes the buffer.
func (p *Parquet) Flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return nil
	}
	return p.flushLocked(ctx)
}

// FlushInterval implements component.TimedFlusher (flush_interval).
func (p *Parquet) FlushInterval() time.Duration { return p.cfg.FlushInterval }

// Close writes the buffer and closes the store. The consumer cannot be used afterwards.
func (p *Parquet) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.started {
		err = p.flushLocked(ctx)
		p.started = false
	}
	if p.store != nil {
		err = errors.Join(err, p.store.Close())
		p.store = nil
	}
	return err
}

// Stats reports files_written, total_bytes, records_written, buffered_records, last_ledger.
func (p *Parquet) Stats() map[string]float64 {
	return map[string]float64{
		"files_written":    float64(p.written.Load()),
		"total_bytes":      float64(p.bytes.Load()),
		"records_written":  float64(p.records.Load()),
		"buffered_records": float64(p.buffered.Load()),
		"last_ledger":      float64(p.durable.Load()),
	}
}

func (p *Parquet) flushLocked(ctx context.Context) error {
	if !p.win.open {
		return nil
	}
	kinds := make([]string, 0, len(p.buf))
	for k, b := range p.buf {
		if len(b.rows) > 0 {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		b := p.buf[kind]
		if err := p.writeKind(ctx, kind, b); err != nil {
			p.wrote(err)
			return fmt.Errorf("%s: writing %s records of ledgers %d-%d: %w", p.typ, kind, p.win.first, p.win.last, err)
		}
		p.records.Add(int64(len(b.rows)))
		p.m.Records.Add(float64(len(b.rows)))
		b.rows, b.counts = b.rows[:0], b.counts[:0]
	}
	p.wrote(nil)
	p.durable.Store(p.win.last)
	p.m.Ledgers.Add(float64(p.win.ledgers))
	p.win = window{}
	p.buffered.Store(0)
	return nil
}
