package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/withobsrvr/cdpd/host/ledger"
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
	schema *Schema
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
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
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

// repair makes the files of one kind disjoint: sorted by first ledger (longest first), every
// file overlapping the file kept before it is cut down to its ledgers after that file.
func (p *Parquet) repair(kind string) error {
	list := p.files[kind]
	sortRanges(list)
	var kept []fileRange
	for i := 0; i < len(list); i++ {
		f := list[i]
		if len(kept) == 0 || f.first > kept[len(kept)-1].last {
			kept = append(kept, f)
			continue
		}
		k := kept[len(kept)-1]
		if f.path == k.path {
			continue // a part rewritten under the name of a file already listed
		}
		p.log.Warn("cutting a file that overlaps another (left by an interrupted write)", "file", p.rel(f.path), "kept", p.rel(k.path))
		rem, err := p.cut(f, k.first, k.last)
		if err != nil {
			return err
		}
		list = append(list, rem...)
		sortRanges(list[i+1:])
	}
	p.files[kind] = kept
	return nil
}

// dedupeRanges sorts files and drops repeated paths (a part rewritten under an existing name).
func dedupeRanges(fs []fileRange) []fileRange {
	sortRanges(fs)
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.path] {
			seen[f.path] = true
			out = append(out, f)
		}
	}
	return out
}

func sortRanges(fs []fileRange) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].first != fs[j].first {
			return fs[i].first < fs[j].first
		}
		return fs[i].last > fs[j].last
	})
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
		s, err := SchemaOf(r)
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

// writeKind writes one kind's buffer as the file of the current window and cuts the files it
// overlaps.
func (p *Parquet) writeKind(kind string, b *kindBuffer) error {
	dir := filepath.Join(p.root, kind, filepath.FromSlash(p.win.part))
	path := filepath.Join(dir, fmt.Sprintf("%s_%010d-%010d.parquet", kind, p.win.first, p.win.last))
	size, err := p.writeFile(path, parquetSchema(b.schema), p.win.first, p.win.last, b.counts, func(w *parquet.Writer) error {
		_, err := w.WriteRows(b.rows)
		return err
	})
	if err != nil {
		return err
	}
	p.written.Add(1)
	p.bytes.Add(size)
	nf := fileRange{first: p.win.first, last: p.win.last, path: path}
	var keep []fileRange
	for _, f := range p.files[kind] {
		if f.last < nf.first || f.first > nf.last {
			keep = append(keep, f)
			continue
		}
		if f.path == path { // replaced by the rename
			continue
		}
		rem, err := p.cut(f, nf.first, nf.last)
		if err != nil {
			return err
		}
		keep = append(keep, rem...)
	}
	keep = append(keep, nf)
	p.files[kind] = dedupeRanges(keep)
	p.log.Debug("wrote parquet file", "kind", kind, "first_ledger", nf.first, "last_ledger", nf.last, "rows", len(b.rows), "bytes", size)
	return nil
}

// writeFile writes a Parquet file atomically: a temporary file in the same directory,
// fsynced, renamed over path, and the directory fsynced.
func (p *Parquet) writeFile(path string, schema *parquet.Schema, first, last uint32, counts []ledgerCount, write func(*parquet.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("creating directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("creating temporary file: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var rows strings.Builder
	for i, c := range counts {
		if i > 0 {
			rows.WriteByte(',')
		}
		fmt.Fprintf(&rows, "%d:%d", c.seq, c.n)
	}
	w := parquet.NewWriter(tmp, schema, parquet.Compression(p.codec),
		parquet.KeyValueMetadata(metaFirst, strconv.FormatUint(uint64(first), 10)),
		parquet.KeyValueMetadata(metaLast, strconv.FormatUint(uint64(last), 10)),
		parquet.KeyValueMetadata(metaLedgerRows, rows.String()),
		parquet.CreatedBy("cdpd", "", ""))
	if err := write(w); err != nil {
		return 0, fmt.Errorf("writing rows: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("finishing parquet file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("syncing file: %w", err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat of written file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("closing file: %w", err)
	}
	name := tmp.Name()
	tmp = nil
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return 0, fmt.Errorf("renaming file into place: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// cut removes ledgers a..b from file f: its rows of ledgers before a and after b are written
// to files of their own (in f's directory), then f is removed. It returns the new files.
func (p *Parquet) cut(f fileRange, a, b uint32) ([]fileRange, error) {
	in, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("opening %s to cut ledgers %d-%d out: %w", f.path, a, b, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat of %s: %w", f.path, err)
	}
	pf, err := parquet.OpenFile(in, st.Size())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.path, err)
	}
	meta, ok := pf.Lookup(metaLedgerRows)
	if !ok {
		return nil, fmt.Errorf("%s overlaps ledgers %d-%d and has no %s metadata (not written by cdpd?): move it away", f.path, a, b, metaLedgerRows)
	}
	counts, err := parseLedgerRows(meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	// Rows are in ledger order: [0, before) precede a; [after, total) follow b.
	var before, after, total int64
	var left, right []ledgerCount
	for _, c := range counts {
		switch {
		case c.seq < a:
			before += int64(c.n)
			left = append(left, c)
		case c.seq <= b:
		default:
			right = append(right, c)
		}
	}
	for _, c := range counts {
		total += int64(c.n)
	}
	after = total - sumCounts(right)
	if total != pf.NumRows() {
		return nil, fmt.Errorf("%s: metadata counts %d rows, the file holds %d", f.path, total, pf.NumRows())
	}
	kind := fileNameRE.FindStringSubmatch(filepath.Base(f.path))[1]
	var out []fileRange
	part := func(first, last uint32, cs []ledgerCount, from, to int64) error {
		if from == to {
			return nil
		}
		path := filepath.Join(filepath.Dir(f.path), fmt.Sprintf("%s_%010d-%010d.parquet", kind, first, last))
		_, err := p.writeFile(path, pf.Schema(), first, last, cs, func(w *parquet.Writer) error {
			return copyRows(w, pf, from, to)
		})
		if err != nil {
			return fmt.Errorf("writing the part %d-%d of %s: %w", first, last, f.path, err)
		}
		out = append(out, fileRange{first: first, last: last, path: path})
		return nil
	}
	if f.first < a {
		if err := part(f.first, a-1, left, 0, before); err != nil {
			return nil, err
		}
	}
	if f.last > b {
		if err := part(b+1, f.last, right, after, total); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(f.path); err != nil {
		return nil, fmt.Errorf("removing %s after cutting it: %w", f.path, err)
	}
	return out, nil
}

func sumCounts(cs []ledgerCount) (n int64) {
	for _, c := range cs {
		n += int64(c.n)
	}
	return n
}

func parseLedgerRows(s string) ([]ledgerCount, error) {
	var out []ledgerCount
	if s == "" {
		return nil, nil
	}
	for _, e := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(e, ":")
		seq, err1 := strconv.ParseUint(a, 10, 32)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 0 {
			return nil, fmt.Errorf("bad %s metadata entry %q", metaLedgerRows, e)
		}
		out = append(out, ledgerCount{seq: uint32(seq), n: n})
	}
	return out, nil
}

// copyRows copies rows [from, to) of pf to w.
func copyRows(w *parquet.Writer, pf *parquet.File, from, to int64) error {
	r := parquet.NewReader(pf)
	defer r.Close()
	if err := r.SeekToRow(from); err != nil {
		return fmt.Errorf("seeking to row %d: %w", from, err)
	}
	buf := make([]parquet.Row, 256)
	for n := to - from; n > 0; {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		k, err := r.ReadRows(chunk)
		if k > 0 {
			if _, werr := w.WriteRows(chunk[:k]); werr != nil {
				return fmt.Errorf("writing rows: %w", werr)
			}
			n -= int64(k)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && n == 0 {
				break
			}
			return fmt.Errorf("reading rows: %w", err)
		}
	}
	return nil
}
