package readers

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"

	"github.com/withobsrvr/cdpd/host/ledger"
)

// reader is one stream of a datastore fanned out to its subscribers. Fields under "guarded"
// belong to its group's mu.
type reader struct {
	g     *group
	id    string
	spec  Spec
	start uint32
	born  int64 // order of creation in the registry (older wins a tie when merging)
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	acct   *ledger.Account

	decodes ledger.Decodes
	ledgers atomic.Int64
	objects atomic.Int64
	bytes   atomic.Int64
	cuts    atomic.Int64

	// guarded by g.mu
	subs    []*Sub
	next    uint32 // the next ledger it hands out
	closing bool   // removed from the group: nobody joins it any more
	demand  chan struct{}
	linger  *time.Timer // armed while it has no subscriber: stops it after Options.Linger
}

var readerBorn atomic.Int64

// startReaderLocked starts a reader of g at from (g.mu held).
func (g *group) startReaderLocked(spec Spec, from uint32) *reader {
	reg := g.reg
	ctx, cancel := context.WithCancel(reg.ctx)
	id := reg.nextReaderID(g)
	r := &reader{
		g: g, id: id, spec: spec, start: from, born: readerBorn.Add(1), log: reg.readerLogger(spec).With("reader", id),
		ctx: ctx, cancel: cancel, acct: reg.opts.Budget.Open(spec.CapLedgers),
		next: from, demand: make(chan struct{}, 1),
	}
	// A new reader makes the lingering ones (no subscriber) useless: they cannot go back.
	for _, o := range g.readers {
		if len(o.subs) == 0 && !o.closing {
			o.closeLocked()
		}
	}
	g.readers = append(g.readers, r)
	reg.log.Debug("shared reader starting", "reader", r.id, "from", from)
	reg.wg.Add(1)
	go func() {
		defer reg.wg.Done()
		r.run()
	}()
	return r
}

// closeLocked removes r from its group (nobody joins it any more) and stops its stream.
func (r *reader) closeLocked() {
	if r.closing {
		return
	}
	r.closing = true
	r.subsChangedLocked()
	for i, o := range r.g.readers {
		if o == r {
			r.g.readers = append(r.g.readers[:i], r.g.readers[i+1:]...)
			break
		}
	}
	r.cancel()
	r.g.dropIfEmptyLocked()
}

func (r *reader) stream() iter.Seq2[[]byte, error] {
	if r.spec.Stream != nil {
		return r.spec.Stream(r.ctx, r.start)
	}
	s := ledgerbackend.NewBufferedStorageStream(r.spec.Buffer, r.spec.DataStore, SDKLogger(r.log))
	return s.RawLedgers(r.ctx, ledgerbackend.UnboundedRange(r.start))
}

func (r *reader) run() {
	var err error
	defer func() { r.finish(err) }()
	objects := ObjectCounter{PerFile: r.spec.DataStore.Schema.LedgersPerFile}
	want := r.start
	for raw, serr := range r.stream() {
		if serr != nil {
			err = serr
			return
		}
		if err = r.acct.Acquire(r.ctx, int64(len(raw))); err != nil {
			return
		}
		l, cerr := ledger.CopyCharged(raw, nil, r.acct)
		if cerr != nil {
			err = cerr
			return
		}
		if l.Sequence() != want {
			l.Release()
			err = fmt.Errorf("the datastore yielded ledger %d where %d was next", l.Sequence(), want)
			return
		}
		want++
		l.CountReaderDecodes(&r.decodes)
		r.ledgers.Add(1)
		r.bytes.Add(int64(l.Size()))
		r.objects.Add(objects.Observe(l.Sequence()))
		if !r.deliver(l) || !r.waitDemand() {
			return
		}
	}
	if r.ctx.Err() == nil {
		err = errors.New("the ledger stream of an unbounded range ended")
	}
}

// finish removes the reader and, when it stopped on an error of its own (not because it was
// stopped), hands the error to its subscribers.
func (r *reader) finish(err error) {
	g := r.g
	g.mu.Lock()
	stopped := r.closing || r.ctx.Err() != nil
	subs := r.subs
	r.subs = nil
	r.closeLocked()
	if err == nil || stopped && errors.Is(err, context.Canceled) {
		err = errors.New("the shared reader stopped")
	} else {
		err = fmt.Errorf("shared reader %s: %w", r.id, err)
	}
	for _, s := range subs {
		if s.reader == r {
			s.detachLocked(err)
		}
	}
	g.mu.Unlock()
	r.acct.Close()
	if !stopped {
		g.reg.log.Warn("shared reader failed", "reader", r.id, "err", err)
	}
}

// deliver hands l (one reference, taken over) to every subscriber, waiting while a queue is
// full and cutting off a subscriber that holds the stream for LeaveAfter. false: the reader
// was stopped (merged into another, or the registry closed).
func (r *reader) deliver(l *ledger.Ledger) bool {
	g := r.g
	g.mu.Lock()
	if r.closing {
		g.mu.Unlock()
		l.Release()
		return false
	}
	subs := append([]*Sub(nil), r.subs...)
	r.next = l.Sequence() + 1
	g.mu.Unlock()

	for _, s := range subs {
		if !s.push(r, l.Share(s.decodes)) {
			r.cut(s)
		}
	}
	l.Release()

	g.mu.Lock()
	defer g.mu.Unlock()
	r.mergeLocked()
	return !r.closing
}

// cut detaches a subscriber that held the stream: it continues on a reader of its own.
func (r *reader) cut(s *Sub) {
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	if s.reader != r {
		return
	}
	r.cuts.Add(1)
	s.detachLocked(nil)
	r.g.reg.log.Info("a pipeline left the shared reader: it took no ledger for the leave timeout",
		"reader", r.id, "pipeline", s.name, "leave_after", r.g.reg.opts.LeaveAfter, "next", s.wantLocked())
}

// mergeLocked runs after r handed out a ledger: if another reader of its datastore is at r's
// next ledger, or r is younger (a reader that started behind) and the other is up to
// MergeSlack behind it, r's subscribers move to that reader (they skip what they already have)
// and r stops. Only the reader that just moved does this, and only with its own subscribers,
// so the shared stream is never replaced by a reader catching up with it: at the tip the
// stream waits for the next ledger and the other readers reach it; in history a faster reader
// that started behind overtakes it and moves in.
func (r *reader) mergeLocked() {
	slack := r.g.reg.opts.MergeSlack
	if r.closing {
		return
	}
	var into *reader
	for _, o := range r.g.readers {
		if o == r || o.closing || o.next > r.next || r.next-o.next > slack {
			continue
		}
		if o.next < r.next && r.born < o.born {
			continue // o is a younger reader behind r: it moves into r when it gets here
		}
		if into == nil || o.next > into.next || o.next == into.next && o.born < into.born {
			into = o
		}
	}
	if into == nil {
		return
	}
	moved := len(r.subs)
	for _, s := range r.subs {
		s.reader = into
		into.subs = append(into.subs, s)
	}
	r.subs = nil
	into.subsChangedLocked()
	into.signal()
	r.closeLocked()
	r.g.reg.log.Debug("shared readers merged", "from", r.id, "into", into.id, "at", into.next, "subscribers", moved)
}

func (r *reader) signal() {
	select {
	case r.demand <- struct{}{}:
	default:
	}
}

// hasDemandLocked: a subscriber needs the next ledger.
func (r *reader) hasDemandLocked() bool {
	for _, s := range r.subs {
		if s.end == 0 || s.end >= r.next {
			return true
		}
	}
	return false
}

// waitDemand waits until a subscriber needs the next ledger; false when the reader was
// stopped meanwhile (its linger ran out, see subsChangedLocked).
func (r *reader) waitDemand() bool {
	g := r.g
	for {
		g.mu.Lock()
		if r.closing {
			g.mu.Unlock()
			return false
		}
		if r.hasDemandLocked() {
			g.mu.Unlock()
			return true
		}
		g.mu.Unlock()
		select {
		case <-r.demand:
		case <-r.ctx.Done():
			return false
		}
	}
}

// subsChangedLocked arms the linger when the reader has lost its last subscriber (wherever
// it waits: for demand, or in the stream for the next object at the tip) and disarms it when
// one joins. When the linger runs out without a subscriber the reader stops.
func (r *reader) subsChangedLocked() {
	switch {
	case r.closing || len(r.subs) > 0:
		if r.linger != nil {
			r.linger.Stop()
			r.linger = nil
		}
	case r.linger == nil:
		var t *time.Timer
		t = time.AfterFunc(r.g.reg.opts.Linger, func() {
			r.g.mu.Lock()
			defer r.g.mu.Unlock()
			if r.linger == t && len(r.subs) == 0 {
				r.g.reg.log.Debug("shared reader stops: no subscriber within the linger", "reader", r.id)
				r.closeLocked()
			}
		})
		r.linger = t
	}
}

func (r *reader) statsLocked() ReaderStats {
	behind := false
	for _, o := range r.g.readers {
		if o != r && o.next > r.next {
			behind = true
		}
	}
	return ReaderStats{
		ID: r.id, Datastore: r.g.id, Subscribers: len(r.subs), Next: r.next, CatchingUp: behind,
		Ledgers: r.ledgers.Load(), Objects: r.objects.Load(), Bytes: r.bytes.Load(),
		Performed: r.decodes.Performed.Load(), Shared: r.decodes.Shared.Load(), Cuts: r.cuts.Load(),
	}
}

// ObjectCounter counts the datastore objects a stream of consecutive ledgers came from: one
// per object whose ledgers it saw (a partial first object included).
type ObjectCounter struct {
	PerFile uint32 // ledgers per object (the datastore schema); 0 is 1
	last    uint32
	seen    bool
}

// Observe records ledger seq and returns 1 when it is the first ledger seen of its object.
func (c *ObjectCounter) Observe(seq uint32) int64 {
	per := max(c.PerFile, 1)
	obj := seq / per
	if c.seen && obj == c.last {
		return 0
	}
	c.seen, c.last = true, obj
	return 1
}
