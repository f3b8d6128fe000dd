package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// stdoutMu serialises writes to the process's standard output, which every pipeline of the
// daemon shares: a ledger's lines go out in one write under it, so lines of two pipelines never
// interleave.
var stdoutMu sync.Mutex

// StdoutConfig is the config of StdoutConsumer. It has no keys yet; unknown keys are errors.
type StdoutConfig struct{}

// Stdout writes every record as one JSON line (encoding/json of the record) to a writer
// (standard output by default). A ledger without records writes nothing. It is durable as
// soon as Consume returns.
//
// Data safety: at-least-once. Standard output keeps no cursor: the lines of a ledger are
// written before its checkpoint, so a crash loses none, and a replay writes the replayed
// ledgers' lines again (each line's record carries its natural key's fields, for readers that
// deduplicate).
type Stdout struct {
	w  io.Writer
	mu *sync.Mutex
	m  *consumer.Metrics

	records atomic.Int64
	ledgers atomic.Int64
	bytes   atomic.Int64
	last    atomic.Uint32
}

// NewStdoutConsumer is the component.ConsumerFactory of StdoutConsumer.
func NewStdoutConsumer(_ *StdoutConfig, env component.Env) (component.Consumer, error) {
	return &Stdout{w: os.Stdout, mu: &stdoutMu, m: consumer.NewMetrics(env.Metrics, env.Name)}, nil
}

// NewStdout returns a Stdout consumer writing to w; writes to w are serialised by the consumer
// (share one Stdout, or guard w yourself, if several consumers write to the same w).
func NewStdout(w io.Writer) *Stdout {
	return &Stdout{w: w, mu: &sync.Mutex{}, m: consumer.NewMetrics(nil, "")}
}

// Consume writes one JSON line per record, all lines of the ledger in one write.
func (s *Stdout) Consume(_ context.Context, l *ledger.Ledger, recs []component.Record) error {
	lb := lineBuffers.Get().(*lineBuffer)
	defer lb.put()
	buf := &lb.buf
	for _, r := range recs {
		if err := lb.enc.Encode(r); err != nil {
			return fmt.Errorf("encoding %s record %q of ledger %d as JSON: %w", r.RecordKind(), r.NaturalKey(), l.Sequence(), err)
		}
	}
	if buf.Len() > 0 {
		s.mu.Lock()
		_, err := s.w.Write(buf.Bytes())
		s.mu.Unlock()
		if err != nil {
			s.m.Errors.Inc()
			return fmt.Errorf("writing %d records of ledger %d: %w", len(recs), l.Sequence(), err)
		}
	}
	s.records.Add(int64(len(recs)))
	s.bytes.Add(int64(buf.Len()))
	s.ledgers.Add(1)
	s.last.Store(l.Sequence())
	s.m.Records.Add(float64(len(recs)))
	s.m.Bytes.Add(float64(buf.Len()))
	s.m.Ledgers.Inc()
	return nil
}

// lineBuffer is one ledger's lines being encoded: an encoder writing into its buffer (a line
// is json.Marshal's bytes and a newline). lineBuffers reuses them across ledgers and
// consumers; one grown over maxKeptBuffer is dropped.
type lineBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder
}

const maxKeptBuffer = 4 << 20

var lineBuffers = sync.Pool{New: func() any {
	lb := &lineBuffer{}
	lb.enc = json.NewEncoder(&lb.buf)
	return lb
}}

func (lb *lineBuffer) put() {
	if lb.buf.Cap() > maxKeptBuffer {
		return
	}
	lb.buf.Reset()
	lineBuffers.Put(lb)
}

// Flush does nothing: every Consume is written through.
func (s *Stdout) Flush(context.Context) error { return nil }

// Close does nothing; the writer is not closed (it is usually the process's stdout).
func (s *Stdout) Close(context.Context) error { return nil }

// Stats reports records_written, ledgers_consumed, bytes_written and last_ledger.
func (s *Stdout) Stats() map[string]float64 {
	return map[string]float64{
		"records_written":  float64(s.records.Load()),
		"ledgers_consumed": float64(s.ledgers.Load()),
		"bytes_written":    float64(s.bytes.Load()),
		"last_ledger":      float64(s.last.Load()),
	}
}
