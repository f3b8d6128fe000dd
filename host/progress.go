package host

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// progress is how far one incarnation got and the checkpoint that follows from it: per
// consumer the last ledger it accepted (Consume returned nil) and the last it holds durably;
// over all consumers the current ledger (lowest accepted) and the checkpoint (lowest durable),
// which loop writes at most once per interval while the incarnation runs and finish writes
// once more when it ends.
type progress struct {
	accepted   []atomic.Uint32 // per consumer: last ledger whose Consume returned nil
	acceptedCT []atomic.Int64  // per consumer: close time (unix seconds) of that ledger
	counts     []atomic.Int64  // per consumer: ledgers accepted
	durable    []atomic.Uint32 // per consumer: last durable ledger

	current          atomic.Uint32 // min accepted
	currentCloseTime atomic.Int64  // close time of the current ledger
	processed        atomic.Int64  // min counts
	checkpointed     atomic.Uint32 // last checkpoint loaded or written
	// behindSince is when the checkpoint first fell behind the durable ledger and has not
	// caught up since (Options.Now, unix nanoseconds; 0 = up to date): the checkpoint's age.
	behindSince atomic.Int64

	cps        *checkpoint.Store // nil: no checkpoints
	pipeline   string
	configHash string
	now        func() time.Time
	interval   time.Duration
	log        *slog.Logger

	// saved is told the outcome of every checkpoint write (the pipeline's checkpoint health,
	// Pipeline.checkpointSaved); nil = nobody listens. Set before loop starts.
	saved func(err error)
	// first is called once, when every consumer has accepted the incarnation's first ledger
	// (Pipeline.progressed); nil = nobody listens. Set before the stages start.
	first     func()
	firstOnce atomic.Bool
	failing   bool // the last write failed (loop and finish only)
	wrote     bool // a write succeeded in this incarnation (loop and finish only)

	notify chan struct{} // buffered 1: progress was made
	stop   chan struct{} // closed by finish
	done   chan struct{} // closed when loop returned
}

func newProgress(consumers int, cps *checkpoint.Store, pipeline, configHash string, opts Options, log *slog.Logger) *progress {
	return &progress{
		accepted:   make([]atomic.Uint32, consumers),
		acceptedCT: make([]atomic.Int64, consumers),
		counts:     make([]atomic.Int64, consumers),
		durable:    make([]atomic.Uint32, consumers),
		cps:        cps, pipeline: pipeline, configHash: configHash,
		now: opts.Now, interval: opts.CheckpointInterval, log: log,
		notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// load reads the pipeline's checkpoint (ok false without one or without a store) and takes it
// as the checkpoint already written.
func (g *progress) load() (ledger uint32, ok bool, err error) {
	if g.cps == nil {
		return 0, false, nil
	}
	c, ok, err := g.cps.Load(g.pipeline)
	if err != nil || !ok {
		return 0, false, err
	}
	g.checkpointed.Store(c.Ledger)
	return c.Ledger, true, nil
}

// accept records that consumer i accepted ledger l (durable up to d).
func (g *progress) accept(i int, l *ledger.Ledger, d uint32) {
	g.accepted[i].Store(l.Sequence())
	g.acceptedCT[i].Store(l.CloseTime().Unix())
	g.counts[i].Add(1)
	g.durable[i].Store(d)
	cur, cnt, ct := g.accepted[0].Load(), g.counts[0].Load(), g.acceptedCT[0].Load()
	for j := 1; j < len(g.accepted); j++ {
		cur = min(cur, g.accepted[j].Load())
		cnt = min(cnt, g.counts[j].Load())
		ct = min(ct, g.acceptedCT[j].Load())
	}
	storeMax(&g.current, cur)
	g.currentCloseTime.Store(ct)
	for {
		old := g.processed.Load()
		if cnt <= old || g.processed.CompareAndSwap(old, cnt) {
			break
		}
	}
	if cnt > 0 {
		g.handled()
	}
	g.advanced()
}

// acceptAll is accept for a pipeline without consumers.
func (g *progress) acceptAll(l *ledger.Ledger) {
	storeMax(&g.current, l.Sequence())
	g.currentCloseTime.Store(l.CloseTime().Unix())
	g.processed.Add(1)
	g.handled()
	g.advanced()
}

// setDurable records consumer i's durable ledger after its last Consume (its Close flushed).
func (g *progress) setDurable(i int, d uint32) {
	g.durable[i].Store(d)
	g.advanced()
}

func storeMax(a *atomic.Uint32, v uint32) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// durableMin is the ledger every consumer has durably accepted in this incarnation (0: none).
func (g *progress) durableMin() uint32 {
	if len(g.durable) == 0 {
		return g.current.Load()
	}
	d := g.durable[0].Load()
	for i := 1; i < len(g.durable); i++ {
		d = min(d, g.durable[i].Load())
	}
	return d
}

// handled tells first, once, that a ledger went through every consumer.
func (g *progress) handled() {
	if g.first != nil && !g.firstOnce.Load() && g.firstOnce.CompareAndSwap(false, true) {
		g.first()
	}
}

// advanced wakes loop.
func (g *progress) advanced() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

// loop writes the checkpoint when it advanced, at most once per interval, until finish. A
// write that failed is tried again after the interval even without new progress.
func (g *progress) loop() {
	defer close(g.done)
	if g.cps == nil {
		<-g.stop
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		select {
		case <-g.notify:
		case <-g.stop:
			return
		}
		if err := g.save(); err != nil && !errors.Is(err, errNoAdvance) {
			g.advanced() // try again after the interval
		}
		t.Reset(g.interval)
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
	}
}

// finish stops loop and, with write, writes the final checkpoint. Call it once, after loop was
// started.
func (g *progress) finish(write bool) {
	close(g.stop)
	<-g.done
	if write && g.cps != nil {
		_ = g.save()
	}
}

var errNoAdvance = errors.New("checkpoint did not advance")

// save writes durableMin if it changed. Only loop and finish call it, never at the same time.
// A failed write is logged when a streak of failures begins and when it ends (loop retries
// every interval); saved hears of every failure, of the first success of the incarnation and
// of the first after failures.
func (g *progress) save() error {
	d := g.durableMin()
	if d == 0 || d == g.checkpointed.Load() {
		return errNoAdvance
	}
	g.behindSince.CompareAndSwap(0, g.now().UnixNano())
	err := g.cps.Save(checkpoint.Checkpoint{Pipeline: g.pipeline, Ledger: d, ConfigHash: g.configHash, UpdatedAt: g.now().UTC()})
	if err != nil {
		if !g.failing {
			g.log.Error("writing the checkpoint failed; retrying", "err", err, "checkpoint", g.checkpointed.Load(), "durable_ledger", d)
		}
		g.failing = true
		if g.saved != nil {
			g.saved(err)
		}
		return err
	}
	g.checkpointed.Store(d)
	if g.durableMin() > d {
		g.behindSince.Store(g.now().UnixNano()) // it moved on meanwhile
	} else {
		g.behindSince.Store(0)
	}
	if g.failing {
		g.log.Info("writing the checkpoint succeeds again", "checkpoint", d)
	}
	// Told once per incarnation and after failures: an earlier incarnation may have failed.
	if g.saved != nil && (g.failing || !g.wrote) {
		g.saved(nil)
	}
	g.failing, g.wrote = false, true
	return nil
}

// age is how long the checkpoint has lagged behind the ledgers every consumer durably
// accepted (0 when it is up to date, or without checkpoints).
func (g *progress) age() time.Duration {
	since := g.behindSince.Load()
	if since == 0 {
		return 0
	}
	return max(g.now().Sub(time.Unix(0, since)), 0)
}
