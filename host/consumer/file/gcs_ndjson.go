package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// GCSConfig is the config of SaveToGCS, with upstream's keys.
type GCSConfig struct {
	// BucketName is the GCS bucket (required).
	BucketName string `mapstructure:"bucket_name"`
	// ObjectPrefix is the path of the objects in the bucket (default "stellar-payments").
	ObjectPrefix string `mapstructure:"object_prefix"`
	// ProjectID is accepted as upstream requires it; writing objects to an existing bucket
	// does not need it.
	ProjectID string `mapstructure:"project_id"`
	// BufferSize: an object is written once this many bytes of JSON lines are buffered
	// (default 1 MiB).
	BufferSize int `mapstructure:"buffer_size"`
	// FlushInterval: the host writes the buffered lines this long after the first ledger
	// buffered since the last write (default 5s).
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// SetDefaults implements component.Defaulter.
func (c *GCSConfig) SetDefaults() {
	*c = GCSConfig{ObjectPrefix: "stellar-payments", BufferSize: 1 << 20, FlushInterval: DefaultFlushInterval}
}

// GCS is the SaveToGCS consumer: every record as one JSON line (encoding/json of the record),
// in NDJSON objects of whole ledgers named by ledger range and by the close hour of their first
// ledger (a window never spans two hours, as upstream rotated its object every hour):
//
//	<object_prefix>/YYYY/MM/DD/HH/payments-<first>-<last>.ndjson
//
// (ledger numbers zero-padded to 10 digits; "payments-" is upstream's name stem, kept so that
// readers of upstream's objects find these). Each object is one upload, which GCS makes
// visible whole or not at all. Objects are written when buffer_size bytes are buffered, when
// the hour changes, flush_interval after the window opened (component.TimedFlusher) and on
// Close.
//
// Data safety: exactly-once in the bucket. A kill -9 loses only buffered lines, of ledgers
// after DurableLedger, which the checkpoint has not passed, so they are replayed. Start lists
// the objects under object_prefix; a replayed ledger that an object already holds is skipped
// (an object holds every record of the ledgers of its range, so its lines are already there):
// a replay never doubles a line. To rewrite ledgers (after changing the processors), delete
// their objects first. Upstream appended to one object per hour through a writer it only
// closed at the next hour, so a crash lost the hour, and a replay doubled lines.
type GCS struct {
	cfg GCSConfig
	log *slog.Logger
	sinkState

	mu      sync.Mutex
	started bool
	store   Store
	have    rangeSet // the ledgers the objects in the bucket hold
	win     gcsWindow
	buf     bytes.Buffer

	objects  atomic.Int64
	bytesW   atomic.Int64
	records  atomic.Int64
	skipped  atomic.Int64
	buffered atomic.Int64
}

type gcsWindow struct {
	open        bool
	first, last uint32
	hour        time.Time
	records     int
	ledgers     int
}

type ledgerRange struct{ first, last uint32 }

var ndjsonNameRE = regexp.MustCompile(`^payments-(\d{10})-(\d{10})\.ndjson$`)

// NewSaveToGCS is SaveToGCS's constructor; it opens nothing (see Start).
func NewSaveToGCS(cp *GCSConfig, env component.Env) (component.Consumer, error) {
	c := *cp
	if c.BucketName == "" {
		return nil, errors.New("SaveToGCS: bucket_name is required")
	}
	if strings.Contains(c.BucketName, "/") {
		return nil, errors.New("SaveToGCS: bucket_name is a bucket; put the path inside it in object_prefix")
	}
	c.ObjectPrefix = strings.Trim(c.ObjectPrefix, "/")
	if c.ObjectPrefix != "" && path.Clean(c.ObjectPrefix) != c.ObjectPrefix || strings.HasPrefix(c.ObjectPrefix, "..") {
		return nil, errors.New("SaveToGCS: object_prefix must be a clean path inside the bucket")
	}
	if c.BufferSize <= 0 {
		return nil, fmt.Errorf("SaveToGCS: buffer_size must be positive (got %d)", c.BufferSize)
	}
	if err := checkFlushInterval(c.FlushInterval); err != nil {
		return nil, fmt.Errorf("SaveToGCS: %w", err)
	}
	g := &GCS{cfg: c, log: env.Logger, sinkState: sinkState{m: consumer.NewMetrics(env.Metrics, env.Name)}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g, nil
}

// Start opens the bucket and lists the objects already written.
func (g *GCS) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	store, err := openGCS(ctx, g.cfg.BucketName, g.cfg.ObjectPrefix, GCSOptions{})
	if err != nil {
		return fmt.Errorf("SaveToGCS: %w", err)
	}
	g.store = store
	g.have = nil
	err = store.List(ctx, "", func(key string) error {
		m := ndjsonNameRE.FindStringSubmatch(path.Base(key))
		if m == nil {
			return nil
		}
		first, _ := strconv.ParseUint(m[1], 10, 32)
		last, _ := strconv.ParseUint(m[2], 10, 32)
		if first <= last {
			g.have.add(uint32(first), uint32(last))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("SaveToGCS: listing the objects written before: %w", err)
	}
	g.started = true
	return nil
}

// rangeSet is a set of ledgers kept as disjoint ranges sorted by first ledger.
type rangeSet []ledgerRange

// add adds the ledgers first..last.
func (s *rangeSet) add(first, last uint32) {
	r := *s
	i := sort.Search(len(r), func(i int) bool { return uint64(r[i].last)+1 >= uint64(first) })
	j := i
	for j < len(r) && uint64(r[j].first) <= uint64(last)+1 {
		first, last = min(first, r[j].first), max(last, r[j].last)
		j++
	}
	*s = append(r[:i], append([]ledgerRange{{first, last}}, r[j:]...)...)
}

// contains says whether ledger seq is in the set.
func (s rangeSet) contains(seq uint32) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].last >= seq })
	return i < len(s) && s[i].first <= seq
}

// Consume buffers one ledger's records as JSON lines and writes an object when the buffer is
// full or the hour changes.
func (g *GCS) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started {
		return errors.New("SaveToGCS: Consume before Start")
	}
	seq := l.Sequence()
	if g.win.open && seq <= g.win.last {
		return fmt.Errorf("SaveToGCS: ledger %d arrived after ledger %d (ledgers must ascend)", seq, g.win.last)
	}
	if g.have.contains(seq) {
		if err := g.flushLocked(ctx); err != nil {
			return err
		}
		g.skipped.Add(1)
		g.durable.Store(seq)
		return nil
	}
	hour := l.CloseTime().UTC().Truncate(time.Hour)
	if g.win.open && !hour.Equal(g.win.hour) {
		if err := g.flushLocked(ctx); err != nil {
			return err
		}
	}
	if !g.win.open {
		g.win = gcsWindow{open: true, first: seq, hour: hour}
	}
	g.win.last = seq
	g.win.ledgers++
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("SaveToGCS: encoding %s record %q of ledger %d as JSON: %w", r.RecordKind(), r.NaturalKey(), seq, err)
		}
		g.buf.Write(b)
		g.buf.WriteByte('\n')
		g.win.records++
	}
	g.buffered.Store(int64(g.buf.Len()))
	if g.win.records == 0 {
		g.win.open = false
		g.durable.Store(seq)
		g.m.Ledgers.Add(float64(g.win.ledgers))
		return nil
	}
	if g.buf.Len() >= g.cfg.BufferSize {
		return g.flushLocked(ctx)
	}
	return nil
}

func (g *GCS) flushLocked(ctx context.Context) error {
	if !g.win.open {
		return nil
	}
	w := g.win
	key := path.Join(w.hour.Format("2006/01/02/15"), fmt.Sprintf("payments-%010d-%010d.ndjson", w.first, w.last))
	n, err := g.store.Put(ctx, key, func(out io.Writer) error {
		_, err := out.Write(g.buf.Bytes())
		return err
	})
	g.wrote(err)
	if err != nil {
		return fmt.Errorf("SaveToGCS: writing the records of ledgers %d-%d: %w", w.first, w.last, err)
	}
	g.have.add(w.first, w.last)
	g.objects.Add(1)
	g.bytesW.Add(n)
	g.records.Add(int64(w.records))
	g.m.Bytes.Add(float64(n))
	g.m.Records.Add(float64(w.records))
	g.m.Ledgers.Add(float64(w.ledgers))
	g.durable.Store(w.last)
	g.log.Debug("wrote NDJSON object", "first_ledger", w.first, "last_ledger", w.last, "records", w.records, "bytes", n)
	g.buf.Reset()
	g.buffered.Store(0)
	g.win = gcsWindow{}
	return nil
}

// Flush writes the buffered lines as an object.
func (g *GCS) Flush(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started {
		return nil
	}
	return g.flushLocked(ctx)
}

// FlushInterval implements component.TimedFlusher (flush_interval).
func (g *GCS) FlushInterval() time.Duration { return g.cfg.FlushInterval }

// Close writes the buffered lines and closes the client.
func (g *GCS) Close(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	if g.started {
		err = g.flushLocked(ctx)
		g.started = false
	}
	if g.store != nil {
		err = errors.Join(err, g.store.Close())
		g.store = nil
	}
	return err
}

// Stats reports objects_written, bytes_written, records_written, buffered_bytes,
// ledgers_skipped (replayed ledgers an object already held) and last_ledger.
func (g *GCS) Stats() map[string]float64 {
	return map[string]float64{
		"objects_written": float64(g.objects.Load()),
		"bytes_written":   float64(g.bytesW.Load()),
		"records_written": float64(g.records.Load()),
		"buffered_bytes":  float64(g.buffered.Load()),
		"ledgers_skipped": float64(g.skipped.Load()),
		"last_ledger":     float64(g.durable.Load()),
	}
}
