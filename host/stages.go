package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// launch starts the goroutines of the incarnation.
func (r *run) launch() {
	r.launched = true
	r.allDone = make(chan struct{})
	r.abandon = make(chan struct{})

	bs := r.h.opts.BufferSize
	consCh := make([]chan item, len(r.cons))
	for i := range consCh {
		consCh[i] = make(chan item, bs)
	}
	// Every channel of the incarnation. Each is closed by its sender when that stage ends; items
	// left in them when the stages stopped early are released once every goroutine is done.
	chans := append([]chan item(nil), consCh...)
	// A send takes over the item's reference whether or not it succeeds: false means ctx ended
	// and the item was released. The fan-out turns the one reference into one per consumer.
	fanout := func(ctx context.Context, it item) bool {
		if len(consCh) == 0 {
			r.prog.acceptAll(it.l)
			it.l.Release()
			return true
		}
		it.l.Retain(len(consCh) - 1)
		for i, ch := range consCh {
			select {
			case ch <- it:
			case <-ctx.Done():
				for range consCh[i:] { // the consumers it did not reach
					it.l.Release()
				}
				return false
			}
		}
		return true
	}
	closeCons := func() {
		for _, ch := range consCh {
			close(ch)
		}
	}
	// The stage goroutines: one per processor, the decode stage, one per consumer, the source.
	// Every one is counted before any starts, so the count reaches 0 only after the source (the
	// last started, after chans is complete) returned.
	decodeAhead := r.needsDecode()
	n := len(r.procs) + len(r.cons) + 1
	if decodeAhead {
		n++
	}
	r.stages.Store(int64(n))
	// Build the chain backwards: each stage sends to next.
	next, closeNext := fanout, closeCons
	for i := len(r.procs) - 1; i >= 0; i-- {
		capacity := bs
		if i == 0 && decodeAhead {
			// Decoded ledgers wait in the decode stage, not here: a decoded ledger read soon
			// after its decode is still in the CPU's caches.
			capacity = 1
		}
		in := make(chan item, capacity)
		chans = append(chans, in)
		go r.processorLoop(r.procs[i], in, next, closeNext)
		next, closeNext = sendTo(in), func() { close(in) }
	}
	if decodeAhead {
		// Decode ahead of the processors on parallel workers (decode.go).
		in := make(chan item, bs)
		chans = append(chans, in)
		go r.decodeLoop(in, next, closeNext)
		next, closeNext = sendTo(in), func() { close(in) }
	}
	for i, c := range r.cons {
		go r.consumerLoop(i, c, consCh[i])
	}
	r.stageChans = chans
	go r.sourceLoop(next, closeNext)
	go r.prog.loop()
}

// stageDone ends one stage goroutine; the last one releases what is left in the incarnation's
// channels (all closed by then: their senders have returned) and closes allDone.
func (r *run) stageDone() {
	if r.stages.Add(-1) != 0 {
		return
	}
	for _, ch := range r.stageChans {
		for it := range ch {
			it.l.Release()
		}
	}
	close(r.allDone)
}

func (r *run) sourceLoop(send func(context.Context, item) bool, closeNext func()) {
	defer r.stageDone()
	defer closeNext()
	c := r.src
	src := r.source()
	var prev uint32
	lastEmit := time.Now()
	// emit takes over the ledger's reference: it is handed on or released.
	emit := func(l *ledger.Ledger) error {
		if l == nil {
			return errors.New("source emitted a nil ledger")
		}
		if err := r.srcCtx.Err(); err != nil {
			l.Release()
			return err
		}
		seq := l.Sequence()
		if seq < r.from {
			l.Release()
			return nil // before the start position (e.g. a file-aligned read): skipped
		}
		if prev != 0 && seq != prev+1 {
			l.Release()
			return fmt.Errorf("source emitted ledger %d after %d: ledgers must be consecutive", seq, prev)
		}
		now := time.Now()
		c.lat.observe(now.Sub(lastEmit))
		if !send(r.srcCtx, item{l: l}) {
			return r.srcCtx.Err()
		}
		prev = seq
		c.out.Add(1)
		c.last.Store(r.h.opts.Now().UnixNano())
		lastEmit = time.Now()
		return nil
	}
	err := r.guard(c, "Run", 0, func() error { return src.Run(r.srcCtx, r.from, emit) })
	stopping := r.sourceReturned(err)
	if err != nil && !(stopping && errors.Is(err, context.Canceled)) && r.workCtx.Err() == nil {
		r.fail(c, fmt.Errorf("source %s: %w", c.name, err))
	}
	if err := r.guard(c, "Close", 0, src.Close); err != nil {
		r.log.Warn("closing the source failed", "component", c.name, "err", err)
	}
}

func (r *run) processorLoop(c *comp, in <-chan item, send func(context.Context, item) bool, closeNext func()) {
	defer r.stageDone()
	defer closeNext()
	pr := c.impl.(component.Processor)
	defer func() {
		if cl, ok := pr.(component.Closer); ok {
			if err := r.guard(c, "Close", 0, cl.Close); err != nil {
				r.log.Warn("closing a processor failed", "component", c.name, "err", err)
			}
		}
	}()
	for {
		var it item
		select {
		case v, ok := <-in:
			if !ok {
				return
			}
			it = v
		case <-r.workCtx.Done():
			return
		}
		c.in.Add(1)
		seq := it.l.Sequence()
		t0 := time.Now()
		var recs []component.Record
		err := r.guard(c, "Process", seq, func() (err error) {
			recs, err = pr.Process(r.workCtx, it.l, it.recs)
			return err
		})
		c.lat.observe(time.Since(t0))
		c.last.Store(r.h.opts.Now().UnixNano())
		if err == nil && ledger.Checking() {
			// -race builds and CDPD_LEDGER_POISON=1: the decoded value is shared read only by
			// every pipeline holding the ledger; a processor that modified it is caught here.
			err = it.l.CheckDecoded(fmt.Sprintf("processor %s of pipeline %s", c.name, r.def.Name))
		}
		if err != nil {
			it.l.Release()
			c.errs.Add(1)
			r.fail(c, fmt.Errorf("processor %s: ledger %d: %w", c.name, seq, err))
			return
		}
		c.out.Add(int64(len(recs)))
		if !send(r.workCtx, item{l: it.l, recs: recs}) {
			return
		}
	}
}

func (r *run) consumerLoop(i int, c *comp, in <-chan item) {
	defer r.stageDone()
	co := c.impl.(component.Consumer)
	du, isDurable := co.(component.Durable)
	// A buffering consumer with a flush interval is flushed from here, between two Consume
	// calls, once the interval has passed since the first ledger accepted after its last flush
	// (component.TimedFlusher): rows at the tip become durable, and the checkpoint moves, within
	// the interval even when no more ledgers come.
	var (
		flushEvery time.Duration
		flushT     *time.Timer
		flushC     <-chan time.Time // nil while nothing is waiting for a timed flush
	)
	if tf, ok := co.(component.TimedFlusher); ok {
		_ = r.guard(c, "FlushInterval", 0, func() error { flushEvery = tf.FlushInterval(); return nil })
	}
	defer func() {
		if flushT != nil {
			flushT.Stop()
		}
	}()
ledgers:
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-in:
		case <-flushC:
			flushC = nil
			if err := r.guard(c, "Flush", 0, func() error { return co.Flush(r.workCtx) }); err != nil {
				c.errs.Add(1)
				r.fail(c, fmt.Errorf("consumer %s: timed flush: %w", c.name, err))
				break ledgers
			}
			if isDurable {
				r.prog.setDurable(i, r.durableOf(c, du))
			}
			continue
		case <-r.workCtx.Done():
		}
		if !ok {
			break
		}
		c.in.Add(1)
		seq := it.l.Sequence()
		t0 := time.Now()
		err := r.guard(c, "Consume", seq, func() error { return co.Consume(r.workCtx, it.l, it.recs) })
		it.l.Release() // the consumer is done with the ledger's bytes (component.Consumer)
		c.lat.observe(time.Since(t0))
		c.last.Store(r.h.opts.Now().UnixNano())
		if err != nil {
			c.errs.Add(1)
			r.fail(c, fmt.Errorf("consumer %s: ledger %d: %w", c.name, seq, err))
			break
		}
		c.out.Add(1)
		d := seq
		if isDurable {
			d = r.durableOf(c, du)
		}
		r.prog.accept(i, it.l, d)
		if flushEvery > 0 && flushC == nil && (!isDurable || d < seq) {
			if flushT == nil {
				flushT = time.NewTimer(flushEvery)
			} else {
				flushT.Reset(flushEvery)
			}
			flushC = flushT.C
		}
	}
	if r.isKilled() {
		return // kill -9: nothing is flushed
	}
	if err := r.guard(c, "Close", 0, func() error { return co.Close(r.hardCtx) }); err != nil {
		c.errs.Add(1)
		r.fail(c, fmt.Errorf("closing consumer %s: %w", c.name, err))
	}
	if isDurable {
		r.prog.setDurable(i, r.durableOf(c, du))
	}
}

func (r *run) durableOf(c *comp, du component.Durable) (d uint32) {
	_ = r.guard(c, "DurableLedger", 0, func() error { d = du.DurableLedger(); return nil })
	return d
}

// sendTo is a stage's send into the channel of the stage after it: false (and the ledger
// released) when ctx ends first.
func sendTo(in chan<- item) func(context.Context, item) bool {
	return func(ctx context.Context, it item) bool {
		select {
		case in <- it:
			return true
		case <-ctx.Done():
			it.l.Release()
			return false
		}
	}
}
