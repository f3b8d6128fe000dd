package source

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	sdklog "github.com/stellar/go-stellar-sdk/support/log"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// MetricsNamespace prefixes the SDK's stream metrics (ingest_ledger_fetch_duration_seconds) and ours.
const MetricsNamespace = "cdp_pipeline_source"

// defaultTipInterval is how often a source asks its backend for the newest ledger it holds.
const defaultTipInterval = 5 * time.Second

// sourceStats is the state behind Stats() and the source's Prometheus gauges.
type sourceStats struct {
	now func() time.Time

	processed     atomic.Uint64
	last          atomic.Uint32
	bytes         atomic.Uint64
	lastProcessed atomic.Int64 // unix seconds
	lastClose     atomic.Int64 // unix seconds; 0 = none yet
	tip           atomic.Uint32
	base          atomic.Uint32          // the ledger before the first one this run reads
	end           atomic.Uint32          // the run's end_ledger (0: unbounded)
	tipErr        atomic.Pointer[string] // the last tip poll's error; nil after a success

	regOnce sync.Once
}

func newSourceStats(now func() time.Time) *sourceStats {
	if now == nil {
		now = time.Now
	}
	return &sourceStats{now: now}
}

func (s *sourceStats) observe(l *ledger.Ledger) {
	s.processed.Add(1)
	s.last.Store(l.Sequence())
	s.bytes.Add(uint64(l.Size())) //nolint:gosec // sizes are positive
	s.lastProcessed.Store(s.now().Unix())
	s.lastClose.Store(l.CloseTime().Unix())
}

// health is "" while the backend answers the tip poll, else why it does not: a following
// source whose datastore vanished (deleted directory, lost bucket, revoked credentials) only
// sees "no new ledger yet", so without this it would look idle and healthy.
func (s *sourceStats) health() string {
	if e := s.tipErr.Load(); e != nil {
		return "datastore unreachable: " + *e
	}
	return ""
}

// lag is now minus the close time of the last ledger emitted (0 before the first).
func (s *sourceStats) lag() float64 {
	ct := s.lastClose.Load()
	if ct == 0 {
		return 0
	}
	return float64(s.now().Unix() - ct)
}

// span records the range a run reads: from its first ledger to end (0: unbounded).
func (s *sourceStats) span(from, end uint32) {
	s.base.Store(from - 1)
	s.end.Store(end)
}

// behind is how many ledgers the backend holds after the last one emitted (0 if unknown), up
// to end_ledger for a bounded run: what is left to do, not the distance to the network's tip.
func (s *sourceStats) behind() float64 {
	tip := s.tip.Load()
	if end := s.end.Load(); end != 0 && tip > end {
		tip = end
	}
	done := s.last.Load()
	if b := s.base.Load(); done < b {
		done = b
	}
	if tip <= done {
		return 0
	}
	return float64(tip - done)
}

func (s *sourceStats) values() map[string]float64 {
	m := map[string]float64{
		"processed_ledgers":   float64(s.processed.Load()),
		"last_ledger":         float64(s.last.Load()),
		"bytes":               float64(s.bytes.Load()),
		"last_processed_time": float64(s.lastProcessed.Load()),
		"lag_seconds":         s.lag(),
	}
	if s.tip.Load() != 0 {
		m["tip_ledger"] = float64(s.tip.Load())
		m["ledgers_behind_tip"] = s.behind()
	}
	return m
}

// register adds the source's gauges to reg (once per source). A collector of the same name
// already there (a previous incarnation that shared the registry) is replaced.
func (s *sourceStats) register(reg *prometheus.Registry, logger *slog.Logger) {
	if reg == nil {
		return
	}
	s.regOnce.Do(func() {
		for _, c := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: MetricsNamespace, Name: "lag_seconds",
				Help: "Seconds between now and the close time of the last ledger the source emitted.",
			}, s.lag),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: MetricsNamespace, Name: "ledgers_behind_tip",
				Help: "Ledgers the source's datastore or RPC server holds after the last ledger emitted (up to end_ledger when one is set).",
			}, s.behind),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: MetricsNamespace, Name: "tip_ledger",
				Help: "The newest ledger the source's datastore or RPC server holds (polled).",
			}, func() float64 { return float64(s.tip.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: MetricsNamespace, Name: "last_ledger",
				Help: "The last ledger the source emitted.",
			}, func() float64 { return float64(s.last.Load()) }),
		} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					reg.Unregister(are.ExistingCollector)
					err = reg.Register(c)
				}
				if err != nil {
					logger.Warn("registering source metric", "error", err)
				}
			}
		}
	})
}

// pollTip asks tip for the newest ledger every interval until ctx ends. Errors are logged at
// debug level and leave the previous figure in place; the last one is kept for health until a
// poll succeeds again.
func (s *sourceStats) pollTip(ctx context.Context, interval time.Duration, logger *slog.Logger,
	tip func(context.Context) (uint32, error)) {
	if interval <= 0 {
		interval = defaultTipInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		tctx, cancel := context.WithTimeout(ctx, interval+10*time.Second)
		seq, err := tip(tctx)
		cancel()
		if err == nil {
			s.tip.Store(seq)
			s.tipErr.Store(nil)
		} else if ctx.Err() == nil {
			logger.Debug("polling the source's newest ledger", "error", err)
			msg := err.Error()
			s.tipErr.Store(&msg)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runRange is what a Run from `from` streams: from (start when from is 0) to end (0: follow
// the tip); ok is false when from is past a bounded end (nothing to do).
func runRange(start, end, from uint32) (rng ledgerbackend.Range, first uint32, ok bool) {
	if from == 0 {
		from = start
	}
	if end != 0 && from > end {
		return rng, from, false
	}
	if end != 0 {
		return ledgerbackend.BoundedRange(from, end), from, true
	}
	return ledgerbackend.UnboundedRange(from), from, true
}

// stream runs one RawLedgers iteration over rng and emits a copy of each ledger (a pooled one:
// emit takes over its reference, see ledger.CopyPooled). It returns nil when a bounded range
// is done, ctx.Err() when cancelled, else the error. Stream metrics
// go to reg (the pipeline incarnation's registry) if it is not nil and they are not registered
// there yet (the SDK panics on a second registration; then the run is not instrumented).
func stream(ctx context.Context, ls ledgerbackend.LedgerStream, rng ledgerbackend.Range, bounded bool,
	reg *prometheus.Registry, env component.Env, st *sourceStats, emit func(*ledger.Ledger) error) error {
	seq := rawLedgers(ctx, ls, rng, reg, env.Logger)
	var next uint32
	for raw, err := range seq {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		// A pooled copy: the host releases it when every consumer is done with it, and the
		// buffer holds a later ledger (of any pipeline) instead of a fresh 1.3 MB allocation.
		l, err := ledger.CopyPooled(raw, env.Decodes)
		if err != nil {
			return err
		}
		if next != 0 && l.Sequence() != next {
			l.Release()
			return errors.New("source yielded ledgers out of order")
		}
		next = l.Sequence() + 1
		st.observe(l)
		if err := emit(l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !bounded {
		return errors.New("ledger stream of an unbounded range ended")
	}
	return nil
}

func rawLedgers(ctx context.Context, ls ledgerbackend.LedgerStream, rng ledgerbackend.Range,
	reg *prometheus.Registry, logger *slog.Logger) (seq iter.Seq2[[]byte, error]) {
	if reg != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					logger.Warn("stream metrics already registered on this pipeline's registry; this run is not instrumented",
						"panic", r)
					seq = nil
				}
			}()
			seq = ls.RawLedgers(ctx, rng, ledgerbackend.WithStreamMetrics(reg, MetricsNamespace))
		}()
	}
	if seq == nil {
		seq = ls.RawLedgers(ctx, rng)
	}
	return seq
}

// sdkLogger is the SDK's logger for a stream: warnings and errors only (teardown problems).
func sdkLogger() *sdklog.Entry {
	l := sdklog.New()
	l.SetLevel(sdklog.WarnLevel)
	return l
}
