package readers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/withobsrvr/cdpd/host/ledger"
)

// Sub is one source's subscription: the ledgers of its datastore from its first ledger on, in
// order, whichever reader they come from. Next and Close are called by the source's goroutine;
// State and Tip by anyone.
type Sub struct {
	g       *group
	spec    Spec
	name    string          // the pipeline, for logs
	end     uint32          // last ledger the source wants (0: unbounded)
	decodes *ledger.Decodes // the pipeline's counters

	q     chan *ledger.Ledger // the queue the readers fill
	space chan struct{}       // a ledger was taken from q
	kick  chan struct{}       // the subscription was detached (cut, or its reader failed)

	mu     sync.Mutex // guards closed and the sends on q
	closed bool
	done   chan struct{}

	want uint32 // next ledger Next returns (the source's goroutine only; read under g.mu via wantLocked)

	// guarded by g.mu
	reader   *reader
	err      error  // the reader failed
	wantSeen uint32 // want as last published to the group (for cut logs and re-attachment)
}

// Subscribe returns a subscription of spec's datastore from ledger from (to end; 0:
// unbounded), counting the pipeline's decodes on decodes. name is the pipeline (for logs).
func (reg *Registry) Subscribe(spec Spec, from, end uint32, name string, decodes *ledger.Decodes) (*Sub, error) {
	if from == 0 {
		return nil, errors.New("subscribing from ledger 0")
	}
	g, err := reg.groupFor(spec)
	if err != nil {
		return nil, err
	}
	s := &Sub{
		g: g, spec: spec, name: name, end: end, decodes: decodes,
		q: make(chan *ledger.Ledger, reg.opts.Window), space: make(chan struct{}, 1),
		kick: make(chan struct{}, 1), done: make(chan struct{}), want: from,
	}
	s.wantSeen = from
	if err := s.reattach(); err != nil {
		g.release()
		return nil, err
	}
	return s, nil
}

// attachLocked joins a reader that can serve s from its next ledger, or starts one.
func (s *Sub) attachLocked() error {
	g := s.g
	if g.reg.ctx.Err() != nil {
		return errors.New("the shared readers are stopped")
	}
	want := s.wantSeen
	var best *reader
	for _, r := range g.readers {
		if r.closing || r.next > want || want-r.next > g.reg.opts.JoinAhead {
			continue
		}
		if best == nil || r.next > best.next {
			best = r
		}
	}
	if best == nil {
		best = g.startReaderLocked(s.spec, want)
	}
	s.reader = best
	s.err = nil
	best.subs = append(best.subs, s)
	best.subsChangedLocked()
	best.signal()
	return nil
}

// detachLocked takes s off its reader; err (nil: cut off) is what Next reports.
func (s *Sub) detachLocked(err error) {
	if r := s.reader; r != nil {
		for i, o := range r.subs {
			if o == s {
				r.subs = append(r.subs[:i], r.subs[i+1:]...)
				break
			}
		}
		r.subsChangedLocked()
	}
	s.reader = nil
	s.err = err
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Sub) wantLocked() uint32 { return s.wantSeen }

// push hands l (one reference, taken over) to the subscriber for reader r. It waits while the
// queue is full; false means the subscriber took no ledger for LeaveAfter and should be cut.
func (s *Sub) push(r *reader, l *ledger.Ledger) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			l.Release()
			return true
		}
		select {
		case s.q <- l:
			s.mu.Unlock()
			return true
		default:
		}
		s.mu.Unlock()
		if !s.attachedTo(r) { // moved to another reader meanwhile: this one no longer serves it
			l.Release()
			return true
		}
		if timer == nil {
			timer = time.NewTimer(s.g.reg.opts.LeaveAfter)
		}
		select {
		case <-s.space: // it took a ledger: the leave timeout starts over
			timer.Reset(s.g.reg.opts.LeaveAfter)
		case <-timer.C:
			l.Release()
			return false
		case <-s.done:
		case <-r.ctx.Done():
			l.Release()
			return true
		}
	}
}

func (s *Sub) attachedTo(r *reader) bool {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.reader == r
}

// Next returns the next ledger (one reference, the caller's) or an error: ctx's, or the
// failure of the reader that served it.
func (s *Sub) Next(ctx context.Context) (*ledger.Ledger, error) {
	for {
		select {
		case l := <-s.q:
			select {
			case s.space <- struct{}{}:
			default:
			}
			switch seq := l.Sequence(); {
			case seq < s.want: // a reader it joined ahead of, or a stale hand-off: already had it
				l.Release()
				continue
			case seq > s.want:
				l.Release()
				return nil, fmt.Errorf("shared reader handed out ledger %d where %d was next", seq, s.want)
			}
			s.want++
			s.publishWant()
			return l, nil
		case <-s.kick:
			if len(s.q) > 0 { // take what was queued first: it continues from there
				s.rekick()
				continue
			}
			if err := s.reattach(); err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Sub) rekick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// publishWant tells the group where the subscription is (for re-attachment and logs). Cheap
// enough per ledger: the group's lock is held for a store.
func (s *Sub) publishWant() {
	s.g.mu.Lock()
	s.wantSeen = s.want
	s.g.mu.Unlock()
}

// reattach continues a detached subscription on a reader from its next ledger, or returns the
// error its reader failed with.
func (s *Sub) reattach() error {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case s.reader != nil:
		return nil
	case s.err != nil:
		return s.err
	}
	return s.attachLocked()
}

// Close ends the subscription: it leaves its reader (which goes on for the others) and
// releases what was queued.
func (s *Sub) Close() {
	g := s.g
	g.mu.Lock()
	if s.reader != nil {
		s.detachLocked(errors.New("closed"))
	}
	g.mu.Unlock()
	s.mu.Lock()
	first := !s.closed
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	for {
		select {
		case l := <-s.q:
			l.Release()
			continue
		default:
		}
		break
	}
	s.mu.Unlock()
	if first {
		g.release()
	}
}

// State says which reader serves the subscription and how: Mode is "shared" on the most
// advanced reader of its datastore, "catching_up" on a reader behind another one (it merges
// when it reaches it), "detached" between two readers.
type State struct {
	Reader      string
	Datastore   string
	Mode        string
	Subscribers int
	Stats       ReaderStats
}

// Modes of State.
const (
	ModeShared     = "shared"
	ModeCatchingUp = "catching_up"
	ModeDetached   = "detached"
	ModeOwn        = "own" // share: false (set by the source, not by a subscription)
)

// State returns the subscription's state.
func (s *Sub) State() State {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	st := State{Datastore: s.g.id, Mode: ModeDetached}
	if r := s.reader; r != nil {
		st.Stats = r.statsLocked()
		st.Reader, st.Subscribers, st.Mode = r.id, len(r.subs), ModeShared
		if st.Stats.CatchingUp {
			st.Mode = ModeCatchingUp
		}
	}
	return st
}

// Tip is the newest ledger of the datastore as its poller last saw it (0: not yet), and the
// poller's last error ("" after a success).
func (s *Sub) Tip() (uint32, string) { return s.g.tip.get() }
