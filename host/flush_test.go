package host

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/loader"
)

// bufferConsumer holds what it accepts until Flush, like the Parquet sink: durable only up to
// its last flush.
type bufferConsumer struct {
	cfg struct {
		FlushInterval time.Duration `mapstructure:"flush_interval"`
	}
	mu             sync.Mutex
	pending, flush uint32
	flushes        int
}

func (b *bufferConsumer) Consume(_ context.Context, l *ledger.Ledger, _ []component.Record) error {
	b.mu.Lock()
	b.pending = l.Sequence()
	b.mu.Unlock()
	return nil
}

func (b *bufferConsumer) Flush(context.Context) error {
	b.mu.Lock()
	b.flush = b.pending
	b.flushes++
	b.mu.Unlock()
	return nil
}

func (b *bufferConsumer) Close(ctx context.Context) error { return b.Flush(ctx) }

func (b *bufferConsumer) DurableLedger() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flush
}

func (b *bufferConsumer) FlushInterval() time.Duration { return b.cfg.FlushInterval }

// A buffering consumer of a pipeline at the tip (one ledger, then nothing for an hour) is
// flushed by the host once its flush interval has passed, and the checkpoint follows; without
// an interval the ledger stays buffered. The host runs in a synctest bubble: its clock moves
// only while every goroutine waits.
func TestTimedFlushAtTheTip(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     uint32
	}{{2 * time.Second, first}, {0, 0}} {
		synctest.Test(t, func(t *testing.T) {
			l := newLab()
			var b *bufferConsumer
			reg := l.registry(t)
			if err := reg.AddConsumer(func(cfg map[string]any, _ component.Env) (component.Consumer, error) {
				b = &bufferConsumer{}
				return b, component.Decode(cfg, &b.cfg)
			}, "Buffer"); err != nil {
				t.Fatal(err)
			}
			h := newTestHost(t, l, func(o *Options) { o.Registry, o.StateDir = reg, t.TempDir() })
			apply(t, h, loader.Add, def("tip", comp_("MemSource", "start_ledger", first, "interval", time.Hour), nil,
				procs(comp_("Buffer", "flush_interval", tc.interval))))
			time.Sleep(5 * time.Second)
			synctest.Wait()
			p, _ := h.Get("tip")
			if got := p.Info().Checkpoint; got != tc.want {
				t.Errorf("flush_interval %s: checkpoint %d after 5s at the tip, want %d", tc.interval, got, tc.want)
			}
			b.mu.Lock()
			flushes := b.flushes
			b.mu.Unlock()
			if tc.interval > 0 && flushes != 1 {
				t.Errorf("flush_interval %s: %d flushes of one buffered ledger, want 1", tc.interval, flushes)
			}
		})
	}
}
