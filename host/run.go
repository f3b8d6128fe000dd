package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/loader"
)

// comp is one component of an incarnation with what the host measures about it.
type comp struct {
	kind component.Kind
	typ  string
	name string
	line int
	impl any

	in, out, errs atomic.Int64
	last          atomic.Int64  // Options.Now of the last ledger handled, unix nanoseconds
	busySince     atomic.Int64  // unix nanoseconds (wall clock) since the current call began; 0 idle
	busyLedger    atomic.Uint32 // ledger of the current call
	busyCall      atomic.Value  // string: name of the current call (Process, Consume, ...)
	failed        atomic.Bool   // this component caused the incarnation's failure

	inC, outC, errC prometheus.Counter
	lat             prometheus.Observer

	statsMu sync.Mutex
	prev    map[string]float64
	updated time.Time
}

func (c *comp) label() string { return fmt.Sprintf("%s %s", c.kind, c.name) }

// item is one ledger and the records produced for it so far. Whoever holds an item holds one
// reference to its ledger (ledger.Retain/Release: pooled ledgers return their buffer to the
// pool when the last holder is done): a stage either hands the item on (send) or releases it.
type item struct {
	l    *ledger.Ledger
	recs []component.Record
}

// run is one incarnation of a pipeline version.
type run struct {
	p    *Pipeline
	h    *Host
	def  *loader.Pipeline
	log  *slog.Logger
	reg  *prometheus.Registry
	dir  string // the pipeline's state directory ("" without StateDir)
	from uint32

	decodes atomic.Int64
	src     *comp
	procs   []*comp
	cons    []*comp
	comps   []*comp

	startedAt time.Time // Options.Now
	began     time.Time // wall clock, for durations

	// Contexts: hard (cancelled at the drain deadline or on kill) > work (cancelled on
	// failure) > source (cancelled to stop intake). startCtx is work's child for Start.
	hardCtx   context.Context
	hardStop  context.CancelFunc
	workCtx   context.Context
	workStop  context.CancelFunc
	srcCtx    context.Context
	srcStop   context.CancelFunc
	startStop context.CancelFunc

	accepted         []atomic.Uint32 // per consumer: last ledger whose Consume returned nil
	acceptedCT       []atomic.Int64  // per consumer: close time (unix seconds) of that ledger
	currentCloseTime atomic.Int64    // close time of the current ledger
	counts           []atomic.Int64  // per consumer: ledgers accepted
	durable          []atomic.Uint32 // per consumer: last durable ledger
	current          atomic.Uint32   // min accepted
	processed        atomic.Int64    // min counts
	checkpointed     atomic.Uint32   // last checkpoint loaded or written
	cpNotify         chan struct{}
	cpStop           chan struct{}
	cpDone           chan struct{}

	mu        sync.Mutex
	err       error // first failure
	errInStop bool  // err happened after the stop was requested (a drain error)
	stopping  bool  // stop was requested (intake stopped)
	killed    bool
	deadline  *time.Timer
	abandonT  *time.Timer
	hardFired bool
	srcEnded  bool // the source's Run returned nil (end of range)

	wg          sync.WaitGroup
	allDone     chan struct{}
	abandon     chan struct{}
	abandonOnce sync.Once
	launched    bool
}

// build constructs (and so validates) every component of def with a fresh registry. Errors
// are *loader.Error naming the file, the line and the pipeline.
func (h *Host) build(def *loader.Pipeline) (*run, error) {
	reg := prometheus.NewRegistry()
	r := &run{h: h, def: def, reg: reg, log: h.log.With("pipeline", def.Name)}
	if h.cps != nil {
		r.dir = h.cps.Dir(def.Name)
	}
	m := newRunMetrics(reg)
	used := map[string]int{}
	env := func(kind component.Kind, typ string) component.Env {
		used[typ]++
		name := typ
		if n := used[typ]; n > 1 {
			name = fmt.Sprintf("%s_%d", typ, n)
		}
		return component.Env{
			Pipeline: def.Name, Name: name,
			Logger:  r.log.With("component", name, "kind", string(kind)),
			Metrics: reg, StateDir: r.dir, Now: h.opts.Now, Decodes: &r.decodes, Network: def.Network(),
		}
	}
	bad := func(line int, what string, err error) error {
		if line == 0 {
			line = def.Line
		}
		return &loader.Error{File: def.File, Line: line, Pipeline: def.Name, Msg: fmt.Sprintf("%s: %v", what, err), Err: err}
	}
	add := func(kind component.Kind, lc loader.Component, e component.Env, impl any) *comp {
		c := &comp{kind: kind, typ: lc.Type, name: e.Name, line: lc.Line, impl: impl}
		m.attach(c)
		r.comps = append(r.comps, c)
		return c
	}
	e := env(component.KindSource, def.Source.Type)
	src, err := safeConstruct(func() (component.Source, error) {
		return h.opts.Registry.NewSource(def.Source.Type, def.Source.Config, e)
	})
	if err != nil {
		return nil, bad(def.Source.Line, fmt.Sprintf("source (%s)", def.Source.Type), err)
	}
	r.src = add(component.KindSource, def.Source, e, src)
	for i, pc := range def.Processors {
		e := env(component.KindProcessor, pc.Type)
		pr, err := safeConstruct(func() (component.Processor, error) {
			return h.opts.Registry.NewProcessor(pc.Type, pc.Config, e)
		})
		if err != nil {
			return nil, bad(pc.Line, fmt.Sprintf("processor %d (%s)", i+1, pc.Type), err)
		}
		r.procs = append(r.procs, add(component.KindProcessor, pc, e, pr))
	}
	for i, cc := range def.Consumers {
		e := env(component.KindConsumer, cc.Type)
		co, err := safeConstruct(func() (component.Consumer, error) {
			return h.opts.Registry.NewConsumer(cc.Type, cc.Config, e)
		})
		if err != nil {
			return nil, bad(cc.Line, fmt.Sprintf("consumer %d (%s)", i+1, cc.Type), err)
		}
		r.cons = append(r.cons, add(component.KindConsumer, cc, e, co))
	}
	n := len(r.cons)
	r.accepted = make([]atomic.Uint32, n)
	r.acceptedCT = make([]atomic.Int64, n)
	r.counts = make([]atomic.Int64, n)
	r.durable = make([]atomic.Uint32, n)
	m.pipeline(r)
	return r, nil
}

func (r *run) source() component.Source { return r.src.impl.(component.Source) }

// start opens the components (consumers first, then processors, then the source) and computes
// the start position. On error every component is closed.
func (r *run) start(ctx context.Context) (err error) {
	r.hardCtx, r.hardStop = context.WithCancel(context.Background())
	r.workCtx, r.workStop = context.WithCancel(r.hardCtx)
	r.srcCtx, r.srcStop = context.WithCancel(r.workCtx)
	startCtx, cancel := context.WithCancel(r.workCtx)
	r.startStop = cancel
	stopAfter := context.AfterFunc(ctx, cancel)
	defer stopAfter()
	r.startedAt = r.h.opts.Now()
	r.began = time.Now()
	defer func() {
		if err != nil {
			r.closeAll()
		}
	}()
	if r.dir != "" {
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return r.defErr(0, "creating the state directory", err)
		}
	}
	order := append(append(append([]*comp(nil), r.cons...), r.procs...), r.src)
	for _, c := range order {
		st, ok := c.impl.(component.Starter)
		if !ok {
			continue
		}
		if err := r.call(startCtx, c, "Start", func() error { return st.Start(startCtx) }); err != nil {
			return r.defErr(c.line, fmt.Sprintf("starting %s", c.label()), err)
		}
	}
	from, err := r.position(startCtx)
	if err != nil {
		return err
	}
	r.from = from
	return nil
}

func (r *run) defErr(line int, what string, err error) error {
	if line == 0 {
		line = r.def.Line
	}
	return &loader.Error{File: r.def.File, Line: line, Pipeline: r.def.Name, Msg: fmt.Sprintf("%s: %v", what, err), Err: err}
}

// position is max(start_ledger, min(checkpoint+1, lowest consumer position+1)).
func (r *run) position(ctx context.Context) (uint32, error) {
	start, _ := r.source().Range()
	from := start
	var cp uint32
	haveCP := false
	if r.h.cps != nil {
		c, ok, err := r.h.cps.Load(r.def.Name)
		if err != nil {
			return 0, r.defErr(0, "loading the checkpoint", err)
		}
		if ok {
			cp, haveCP = c.Ledger, true
			r.checkpointed.Store(cp)
		}
	}
	// Lowest next ledger any consumer needs; a consumer without its own position needs the
	// ledger after the checkpoint (or start_ledger when there is none).
	var need uint64 = 1<<63 - 1
	for _, c := range r.cons {
		pc, ok := c.impl.(component.Positioned)
		var next uint64
		switch {
		case ok:
			var (
				last uint32
				has  bool
			)
			err := r.call(ctx, c, "Position", func() (err error) {
				last, has, err = pc.Position(ctx)
				return err
			})
			if err != nil {
				return 0, r.defErr(c.line, fmt.Sprintf("reading the position of %s", c.label()), err)
			}
			if has {
				next = uint64(last) + 1
			} else {
				next = uint64(start)
			}
		case haveCP:
			next = uint64(cp) + 1
		default:
			next = uint64(start)
		}
		need = min(need, next)
	}
	if len(r.cons) == 0 && haveCP {
		need = uint64(cp) + 1
	}
	if need != 1<<63-1 && need > uint64(from) {
		from = uint32(min(need, 1<<32-1))
	}
	return from, nil
}

// launch starts the goroutines of the incarnation.
func (r *run) launch() {
	r.launched = true
	r.allDone = make(chan struct{})
	r.abandon = make(chan struct{})
	r.cpNotify = make(chan struct{}, 1)
	r.cpStop = make(chan struct{})
	r.cpDone = make(chan struct{})

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
			r.acceptAll(it.l)
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
	// Build the chain backwards: each stage sends to next.
	next, closeNext := fanout, closeCons
	for i := len(r.procs) - 1; i >= 0; i-- {
		in := make(chan item, bs)
		chans = append(chans, in)
		r.wg.Add(1)
		go r.processorLoop(r.procs[i], in, next, closeNext)
		next = func(ctx context.Context, it item) bool {
			select {
			case in <- it:
				return true
			case <-ctx.Done():
				it.l.Release()
				return false
			}
		}
		closeNext = func() { close(in) }
	}
	for i, c := range r.cons {
		r.wg.Add(1)
		go r.consumerLoop(i, c, consCh[i])
	}
	r.wg.Add(1)
	go r.sourceLoop(next, closeNext)
	go r.checkpointLoop()
	go func() {
		r.wg.Wait()
		for _, ch := range chans { // all closed now: their senders have returned
			for it := range ch {
				it.l.Release()
			}
		}
		close(r.allDone)
	}()
}

func (r *run) sourceLoop(send func(context.Context, item) bool, closeNext func()) {
	defer r.wg.Done()
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
		c.lat.Observe(now.Sub(lastEmit).Seconds())
		if !send(r.srcCtx, item{l: l}) {
			return r.srcCtx.Err()
		}
		prev = seq
		c.out.Add(1)
		c.outC.Inc()
		c.last.Store(r.h.opts.Now().UnixNano())
		lastEmit = time.Now()
		return nil
	}
	err := r.guard(c, "Run", 0, func() error { return src.Run(r.srcCtx, r.from, emit) })
	r.mu.Lock()
	stopping := r.stopping
	if err == nil {
		r.srcEnded = true
	}
	r.mu.Unlock()
	if err != nil && !(stopping && errors.Is(err, context.Canceled)) && r.workCtx.Err() == nil {
		r.fail(c, fmt.Errorf("source %s: %w", c.name, err))
	}
	if err := r.guard(c, "Close", 0, src.Close); err != nil {
		r.log.Warn("closing the source failed", "component", c.name, "err", err)
	}
}

func (r *run) processorLoop(c *comp, in <-chan item, send func(context.Context, item) bool, closeNext func()) {
	defer r.wg.Done()
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
		c.inC.Inc()
		seq := it.l.Sequence()
		t0 := time.Now()
		var recs []component.Record
		err := r.guard(c, "Process", seq, func() (err error) {
			recs, err = pr.Process(r.workCtx, it.l, it.recs)
			return err
		})
		c.lat.Observe(time.Since(t0).Seconds())
		c.last.Store(r.h.opts.Now().UnixNano())
		if err != nil {
			it.l.Release()
			c.errs.Add(1)
			c.errC.Inc()
			r.fail(c, fmt.Errorf("processor %s: ledger %d: %w", c.name, seq, err))
			return
		}
		c.out.Add(int64(len(recs)))
		c.outC.Add(float64(len(recs)))
		if !send(r.workCtx, item{l: it.l, recs: recs}) {
			return
		}
	}
}

func (r *run) consumerLoop(i int, c *comp, in <-chan item) {
	defer r.wg.Done()
	co := c.impl.(component.Consumer)
	du, isDurable := co.(component.Durable)
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-in:
		case <-r.workCtx.Done():
		}
		if !ok {
			break
		}
		c.in.Add(1)
		c.inC.Inc()
		seq := it.l.Sequence()
		t0 := time.Now()
		err := r.guard(c, "Consume", seq, func() error { return co.Consume(r.workCtx, it.l, it.recs) })
		it.l.Release() // the consumer is done with the ledger's bytes (component.Consumer)
		c.lat.Observe(time.Since(t0).Seconds())
		c.last.Store(r.h.opts.Now().UnixNano())
		if err != nil {
			c.errs.Add(1)
			c.errC.Inc()
			r.fail(c, fmt.Errorf("consumer %s: ledger %d: %w", c.name, seq, err))
			break
		}
		c.out.Add(1)
		c.outC.Inc()
		d := seq
		if isDurable {
			d = r.durableOf(c, du)
		}
		r.accept(i, it.l, d)
	}
	r.mu.Lock()
	killed := r.killed
	r.mu.Unlock()
	if killed {
		return // kill -9: nothing is flushed
	}
	if err := r.guard(c, "Close", 0, func() error { return co.Close(r.hardCtx) }); err != nil {
		c.errs.Add(1)
		c.errC.Inc()
		r.fail(c, fmt.Errorf("closing consumer %s: %w", c.name, err))
	}
	if isDurable {
		r.durable[i].Store(r.durableOf(c, du))
		r.notifyCheckpoint()
	}
}

func (r *run) durableOf(c *comp, du component.Durable) (d uint32) {
	_ = r.guard(c, "DurableLedger", 0, func() error { d = du.DurableLedger(); return nil })
	return d
}

// accept records that consumer i accepted ledger l (durable up to d).
func (r *run) accept(i int, l *ledger.Ledger, d uint32) {
	r.accepted[i].Store(l.Sequence())
	r.acceptedCT[i].Store(l.CloseTime().Unix())
	r.counts[i].Add(1)
	r.durable[i].Store(d)
	cur, cnt, ct := r.accepted[0].Load(), r.counts[0].Load(), r.acceptedCT[0].Load()
	for j := 1; j < len(r.accepted); j++ {
		cur = min(cur, r.accepted[j].Load())
		cnt = min(cnt, r.counts[j].Load())
		ct = min(ct, r.acceptedCT[j].Load())
	}
	storeMax(&r.current, cur)
	r.currentCloseTime.Store(ct)
	for {
		old := r.processed.Load()
		if cnt <= old || r.processed.CompareAndSwap(old, cnt) {
			break
		}
	}
	r.notifyCheckpoint()
}

// acceptAll is accept for a pipeline without consumers.
func (r *run) acceptAll(l *ledger.Ledger) {
	storeMax(&r.current, l.Sequence())
	r.currentCloseTime.Store(l.CloseTime().Unix())
	r.processed.Add(1)
	r.notifyCheckpoint()
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
func (r *run) durableMin() uint32 {
	if len(r.cons) == 0 {
		return r.current.Load()
	}
	d := r.durable[0].Load()
	for i := 1; i < len(r.durable); i++ {
		d = min(d, r.durable[i].Load())
	}
	return d
}

func (r *run) notifyCheckpoint() {
	select {
	case r.cpNotify <- struct{}{}:
	default:
	}
}

// checkpointLoop writes the checkpoint when it advanced, at most once per CheckpointInterval.
func (r *run) checkpointLoop() {
	defer close(r.cpDone)
	if r.h.cps == nil {
		<-r.cpStop
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		select {
		case <-r.cpNotify:
		case <-r.cpStop:
			return
		}
		r.saveCheckpoint()
		t.Reset(r.h.opts.CheckpointInterval)
		select {
		case <-t.C:
		case <-r.cpStop:
			return
		}
	}
}

var errNoAdvance = errors.New("checkpoint did not advance")

// saveCheckpoint writes durableMin if it changed. Only checkpointLoop and finish call it, never
// at the same time.
func (r *run) saveCheckpoint() error {
	d := r.durableMin()
	if d == 0 || d == r.checkpointed.Load() {
		return errNoAdvance
	}
	err := r.h.cps.Save(checkpoint.Checkpoint{Pipeline: r.def.Name, Ledger: d, ConfigHash: r.def.Hash, UpdatedAt: r.h.opts.Now().UTC()})
	if err != nil {
		r.log.Error("writing the checkpoint failed", "err", err)
		return err
	}
	r.checkpointed.Store(d)
	return nil
}

// fail records the first failure and stops the incarnation without drain.
func (r *run) fail(c *comp, err error) {
	r.mu.Lock()
	first := r.err == nil
	if first {
		r.err = err
		r.errInStop = r.stopping
		if c != nil {
			c.failed.Store(true)
		}
	}
	r.mu.Unlock()
	if first {
		r.log.Error("pipeline component failed", "component", compName(c), "err", err)
	}
	r.armDeadline()
	r.workStop()
}

func compName(c *comp) string {
	if c == nil {
		return ""
	}
	return c.name
}

// requestStop stops intake (drain) or, with kill, everything at once without flushing.
func (r *run) requestStop(kill bool) {
	r.mu.Lock()
	r.stopping = true
	if kill {
		r.killed = true
	}
	r.mu.Unlock()
	if kill {
		r.hardStop()
		r.abandonAfter(r.grace())
		return
	}
	r.armDeadline()
	r.srcStop()
}

// expedite cuts a drain now (the caller's context ended): like reaching the deadline.
func (r *run) expedite() {
	r.hardDeadline("drain cut short by the caller")
}

func (r *run) grace() time.Duration {
	return min(max(r.h.opts.DrainTimeout/10, 50*time.Millisecond), 2*time.Second)
}

func (r *run) armDeadline() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deadline != nil || !r.launched {
		return
	}
	r.deadline = time.AfterFunc(r.h.opts.DrainTimeout, func() {
		r.hardDeadline(fmt.Sprintf("drain deadline exceeded after %s", r.h.opts.DrainTimeout))
	})
}

// hardDeadline cancels every component's context, records which were still busy and stops
// waiting for them after a short grace.
func (r *run) hardDeadline(why string) {
	r.mu.Lock()
	if r.hardFired {
		r.mu.Unlock()
		return
	}
	r.hardFired = true
	r.mu.Unlock()
	select {
	case <-r.allDone:
		return
	default:
	}
	var busy []string
	for _, c := range r.comps {
		if since := c.busySince.Load(); since != 0 {
			s := fmt.Sprintf("%s busy for %s", c.label(), time.Since(time.Unix(0, since)).Truncate(time.Millisecond))
			if l := c.busyLedger.Load(); l != 0 {
				s += fmt.Sprintf(" on ledger %d", l)
			}
			busy = append(busy, s)
		}
	}
	msg := why
	if len(busy) > 0 {
		msg += ": " + strings.Join(busy, ", ")
	}
	err := errors.New(msg + "; cancelled")
	r.mu.Lock()
	if r.stopping {
		r.errInStop = true
	}
	r.err = errors.Join(r.err, err)
	r.mu.Unlock()
	r.log.Error("pipeline drain cut", "err", err)
	r.hardStop()
	r.abandonAfter(r.grace())
}

func (r *run) abandonAfter(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abandonT != nil {
		return
	}
	r.abandonT = time.AfterFunc(d, func() { r.abandonOnce.Do(func() { close(r.abandon) }) })
}

// outcome of an incarnation.
type outcome int

const (
	outStopped outcome = iota
	outCompleted
	outFailed
)

// wait blocks until the incarnation ended (or was abandoned), writes the final checkpoint and
// says how it ended.
func (r *run) wait(stopReq <-chan struct{}, kill func() bool) (outcome, error) {
	abandoned := false
	for done := false; !done; {
		select {
		case <-stopReq:
			stopReq = nil
			r.requestStop(kill())
		case <-r.allDone:
			done = true
		case <-r.abandon:
			done, abandoned = true, true
		}
	}
	r.mu.Lock()
	if r.deadline != nil {
		r.deadline.Stop()
	}
	if r.abandonT != nil {
		r.abandonT.Stop()
	}
	killed, stopping, err, ended, inStop := r.killed, r.stopping, r.err, r.srcEnded, r.errInStop
	r.mu.Unlock()
	r.startStop()
	close(r.cpStop)
	<-r.cpDone
	if !killed && r.h.cps != nil {
		_ = r.saveCheckpoint()
	}
	r.hardStop()
	if abandoned {
		r.log.Warn("pipeline goroutines abandoned after the drain deadline: they end when the stuck component returns")
	}
	switch {
	case killed:
		return outStopped, nil
	case stopping && (err == nil || inStop):
		return outStopped, err
	case stopping: // it had failed before the stop came: not the stop's error
		return outStopped, nil
	case err != nil:
		return outFailed, err
	case ended:
		return outCompleted, nil
	}
	return outFailed, errors.New("pipeline ended without reason")
}

// closeAll closes the components of an incarnation that never launched.
func (r *run) closeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), r.h.opts.DrainTimeout)
	defer cancel()
	for _, c := range r.comps {
		var err error
		switch v := c.impl.(type) {
		case component.Source:
			err = r.call(ctx, c, "Close", v.Close)
		case component.Consumer:
			err = r.call(ctx, c, "Close", func() error { return v.Close(ctx) })
		case component.Closer:
			err = r.call(ctx, c, "Close", v.Close)
		}
		if err != nil {
			r.log.Warn("closing a component failed", "component", c.name, "err", err)
		}
	}
	if r.hardStop != nil {
		r.startStop()
		r.hardStop()
	}
}

// guard calls fn, turning a panic into an error (its stack is logged) and marking the
// component busy meanwhile.
func (r *run) guard(c *comp, what string, seq uint32, fn func() error) (err error) {
	c.busyLedger.Store(seq)
	c.busyCall.Store(what)
	c.busySince.Store(time.Now().UnixNano())
	defer c.busySince.Store(0)
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("panic in pipeline component", "component", c.name, "call", what, "ledger", seq,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in %s: %v", what, v)
		}
	}()
	return fn()
}

// call runs fn under guard in its own goroutine and stops waiting for it when ctx ends (plus a
// grace period): used for Start, Position and closing, which must not hang an Apply.
func (r *run) call(ctx context.Context, c *comp, what string, fn func() error) error {
	res := make(chan error, 1)
	go func() { res <- r.guard(c, what, 0, fn) }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(r.grace())
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		return fmt.Errorf("%s did not return after cancellation (%w): abandoned", what, ctx.Err())
	}
}

func safeConstruct[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in constructor: %v", p)
		}
	}()
	return f()
}

func safeStats(sr component.StatsReporter) (m map[string]float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Stats: %v", p)
		}
	}()
	return sr.Stats(), nil
}

func safeHealth(hr component.HealthReporter) (s string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Health: %v", p)
		}
	}()
	return hr.Health(), nil
}
