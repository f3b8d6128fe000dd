package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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
	"github.com/withobsrvr/cdpd/internal/atomicfile"
)

// ParquetConfig is the config of SaveToParquet, with the keys of the upstream CDP consumer.
type ParquetConfig struct {
	// StorageType is FS (the default when local_path is set). GCS and S3 are not supported.
	StorageType string `mapstructure:"storage_type"`
	// LocalPath is the root directory of the files (required).
	LocalPath string `mapstructure:"local_path"`
	// PathPrefix is a sub-path under local_path.
	PathPrefix string `mapstructure:"path_prefix"`
	// Compression: snappy (default), zstd, gzip, none.
	Compression string `mapstructure:"compression"`
	// BufferSize: a file is written once this many records are buffered (default 10000).
	BufferSize int `mapstructure:"buffer_size"`
	// MaxFileSizeMB: a file is written once the buffered rows' uncompressed size estimate
	// reaches this (default 128).
	MaxFileSizeMB int `mapstructure:"max_file_size_mb"`
	// RotationIntervalMinutes: a file is written once its first ledger was buffered this long
	// ago (default 60; checked when a ledger arrives).
	RotationIntervalMinutes int `mapstructure:"rotation_interval_minutes"`
	// PartitionBy: ledger_day (default; year=YYYY/month=MM/day=DD of the ledger close time),
	// hour (…/hour=HH), ledger_range (ledgers/<start>-<end>, ledgers_per_file wide), none.
	PartitionBy string `mapstructure:"partition_by"`
	// LedgersPerFile is the width of a ledger_range partition (default 10000).
	LedgersPerFile uint32 `mapstructure:"ledgers_per_file"`

	// Accepted so upstream files load; cloud keys are rejected with a clear error.
	BucketName      string `mapstructure:"bucket_name"`
	Region          string `mapstructure:"region"`
	SchemaEvolution bool   `mapstructure:"schema_evolution"` // ignored: the schema is the record type
	IncludeMetadata bool   `mapstructure:"include_metadata"` // ignored
	Debug           bool   `mapstructure:"debug"`            // ignored: use the log level
	DryRun          bool   `mapstructure:"dry_run"`          // not supported: an error when true
}

// Parquet is the SaveToParquet consumer: records are buffered per record kind and written as
// one Parquet file per kind and window of whole ledgers:
//
//	<local_path>/<path_prefix>/<kind>/<partition>/<kind>_<first>-<last>.parquet
//
// (ledger numbers zero-padded to 10 digits). A file covers every record of its kind in ledgers
// first..last; it is written to a temporary name, fsynced and renamed. When a file is written,
// existing files of the same kind whose ranges overlap it are cut (their ledgers outside the new
// range are rewritten into files of their own, using the per-ledger row counts every file
// carries in its key/value metadata) and removed, so a replay of ledgers after a crash rewrites
// instead of doubling, whatever window boundaries the replay uses. Start repairs overlaps left
// by a crash in the middle of that and removes temporary files.
type Parquet struct {
	cfg    ParquetConfig
	root   string
	codec  compress.Codec
	log    *slog.Logger
	now    func() time.Time
	rotate time.Duration

	mu      sync.Mutex
	started bool
	files   map[string][]fileRange // kind -> files, sorted by first ledger
	buf     map[string]*kindBuffer
	win     window

	lastErr  atomic.Pointer[string] // health: the last write error, nil when the last write succeeded
	durable  atomic.Uint32
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
	size        int64
}

type kindBuffer struct {
	schema *consumer.Schema
	rows   []parquet.Row
	counts []ledgerCount // rows per ledger, in ledger order
	vals   []any
}

type ledgerCount struct {
	seq uint32
	n   int
}

type fileRange struct {
	first, last uint32
	path        string
}

const (
	metaLedgerRows = "cdpd.ledger_rows" // "seq:count,seq:count,..." for ledgers with rows
	metaFirst      = "cdpd.first_ledger"
	metaLast       = "cdpd.last_ledger"
)

var fileNameRE = regexp.MustCompile(`^(.+)_(\d{10})-(\d{10})\.parquet$`)

// SetDefaults implements component.Defaulter.
func (c *ParquetConfig) SetDefaults() {
	*c = ParquetConfig{Compression: "snappy", BufferSize: 10000, MaxFileSizeMB: 128,
		RotationIntervalMinutes: 60, PartitionBy: "ledger_day", LedgersPerFile: 10000}
}

// NewSaveToParquet is SaveToParquet's constructor.
func NewSaveToParquet(c *ParquetConfig, env component.Env) (component.Consumer, error) {
	return NewParquet(c, env)
}

// NewParquet validates the config; it opens nothing (see Start).
func NewParquet(cp *ParquetConfig, env component.Env) (*Parquet, error) {
	c := *cp
	switch strings.ToUpper(c.StorageType) {
	case "", "FS", "LOCAL":
	case "GCS", "S3":
		return nil, fmt.Errorf("SaveToParquet: storage_type %s is not supported by cdpd (only FS, the local filesystem: set local_path)", c.StorageType)
	default:
		return nil, fmt.Errorf("SaveToParquet: unknown storage_type %q (FS is supported)", c.StorageType)
	}
	if c.BucketName != "" || c.Region != "" {
		return nil, fmt.Errorf("SaveToParquet: bucket_name/region are for GCS/S3 storage, which cdpd does not support (only FS: set local_path)")
	}
	if c.LocalPath == "" {
		return nil, errors.New("SaveToParquet: local_path is required")
	}
	if c.DryRun {
		return nil, errors.New("SaveToParquet: dry_run is not supported")
	}
	if c.BufferSize <= 0 || c.MaxFileSizeMB <= 0 || c.RotationIntervalMinutes <= 0 {
		return nil, fmt.Errorf("SaveToParquet: buffer_size, max_file_size_mb and rotation_interval_minutes must be positive (got %d, %d, %d)",
			c.BufferSize, c.MaxFileSizeMB, c.RotationIntervalMinutes)
	}
	if c.LedgersPerFile == 0 {
		return nil, errors.New("SaveToParquet: ledgers_per_file must be positive")
	}
	switch c.PartitionBy {
	case "", "none", "ledger_day", "hour", "ledger_range":
	default:
		return nil, fmt.Errorf("SaveToParquet: unknown partition_by %q (ledger_day, hour, ledger_range or none)", c.PartitionBy)
	}
	var codec compress.Codec
	switch strings.ToLower(c.Compression) {
	case "snappy", "":
		codec = &parquet.Snappy
	case "zstd":
		codec = &parquet.Zstd
	case "gzip":
		codec = &parquet.Gzip
	case "none", "uncompressed":
		codec = &parquet.Uncompressed
	default:
		return nil, fmt.Errorf("SaveToParquet: unknown compression %q (snappy, zstd, gzip or none)", c.Compression)
	}
	if strings.HasPrefix(c.LocalPath, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("SaveToParquet: expanding ~ in local_path: %w", err)
		}
		c.LocalPath = filepath.Join(home, c.LocalPath[2:])
	}
	if c.PathPrefix != "" && !filepath.IsLocal(c.PathPrefix) {
		return nil, fmt.Errorf("SaveToParquet: path_prefix %q must be a relative path inside local_path", c.PathPrefix)
	}
	p := &Parquet{cfg: c, root: filepath.Join(c.LocalPath, c.PathPrefix), codec: codec,
		log: env.Logger, now: env.Now, rotate: time.Duration(c.RotationIntervalMinutes) * time.Minute}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Start creates the output directory, indexes the existing files, removes temporary files
// and repairs overlapping files left by a crash.
func (p *Parquet) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.MkdirAll(p.root, 0o755); err != nil {
		return fmt.Errorf("SaveToParquet: creating output directory: %w", err)
	}
	p.files = map[string][]fileRange{}
	p.buf = map[string]*kindBuffer{}
	err := filepath.WalkDir(p.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if dest, ok := atomicfile.TempOf(name); ok && fileNameRE.MatchString(dest) || strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			p.log.Info("removing temporary file of an interrupted write", "file", p.rel(path))
			return os.Remove(path)
		}
		rel, _ := filepath.Rel(p.root, path)
		kind, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		m := fileNameRE.FindStringSubmatch(name)
		if m == nil || m[1] != kind {
			return nil
		}
		first, _ := strconv.ParseUint(m[2], 10, 32)
		last, _ := strconv.ParseUint(m[3], 10, 32)
		p.files[kind] = append(p.files[kind], fileRange{first: uint32(first), last: uint32(last), path: path})
		return nil
	})
	if err != nil {
		return fmt.Errorf("SaveToParquet: indexing existing files: %w", err)
	}
	for kind := range p.files {
		if err := p.repair(kind); err != nil {
			return fmt.Errorf("SaveToParquet: repairing overlapping files of %s: %w", kind, err)
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
func (p *Parquet) Consume(_ context.Context, l *ledger.Ledger, recs []component.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return errors.New("SaveToParquet: Consume before Start")
	}
	seq := l.Sequence()
	if p.win.open && seq <= p.win.last {
		return fmt.Errorf("SaveToParquet: ledger %d arrived after ledger %d (ledgers must ascend)", seq, p.win.last)
	}
	part := p.partition(l)
	if p.win.open && part != p.win.part {
		if err := p.flushLocked(); err != nil {
			return err
		}
	}
	if !p.win.open {
		p.win = window{open: true, first: seq, part: part, opened: p.now()}
	}
	p.win.last = seq
	for _, r := range recs {
		s, err := consumer.SchemaOf(r)
		if err != nil {
			return fmt.Errorf("SaveToParquet: ledger %d: %w", seq, err)
		}
		b := p.buf[s.Kind]
		if b == nil {
			b = &kindBuffer{schema: s}
			p.buf[s.Kind] = b
		}
		if b.vals, err = s.Values(r, b.vals[:0]); err != nil {
			return fmt.Errorf("SaveToParquet: ledger %d: %w", seq, err)
		}
		row, size := appendParquetRow(nil, s, b.vals)
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
		return nil
	}
	if p.win.records >= p.cfg.BufferSize || p.win.size >= int64(p.cfg.MaxFileSizeMB)<<20 || p.now().Sub(p.win.opened) >= p.rotate {
		return p.flushLocked()
	}
	return nil
}

// Flush writes the buffer.
func (p *Parquet) Flush(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushLocked()
}

// Close writes the buffer. The consumer cannot be used afterwards.
func (p *Parquet) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return nil
	}
	err := p.flushLocked()
	p.started = false
	return err
}

// DurableLedger is the last ledger whose records are all in renamed files.
func (p *Parquet) DurableLedger() uint32 { return p.durable.Load() }

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

// Health reports the last write error, if the last write failed.
func (p *Parquet) Health() string {
	if e := p.lastErr.Load(); e != nil {
		return *e
	}
	return ""
}

// rel is a path relative to the output root, for logs (config values stay out of logs).
func (p *Parquet) rel(path string) string {
	if r, err := filepath.Rel(p.root, path); err == nil {
		return r
	}
	return filepath.Base(path)
}

func (p *Parquet) flushLocked() error {
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
		if err := p.writeKind(kind, b); err != nil {
			msg := "write failed: " + err.Error()
			p.lastErr.Store(&msg)
			return fmt.Errorf("SaveToParquet: writing %s records of ledgers %d-%d: %w", kind, p.win.first, p.win.last, err)
		}
		p.records.Add(int64(len(b.rows)))
		b.rows, b.counts = b.rows[:0], b.counts[:0]
	}
	p.lastErr.Store(nil)
	p.durable.Store(p.win.last)
	p.win = window{}
	p.buffered.Store(0)
	return nil
}
