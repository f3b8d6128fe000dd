package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/internal/redact"
)

// lifecycle is how one incarnation ends: its nested contexts, its first failure, the stop
// request (drain or kill), the drain deadline that cuts a drain short, and the abandon timer
// after which goroutines stuck in a component are no longer waited for. run embeds it.
type lifecycle struct {
	drain time.Duration // Options.DrainTimeout
	log   *slog.Logger
	red   *redact.Redactor // applied to every failure recorded
	busy  func() []string  // the component calls still running, for the deadline's report

	// Contexts: hard (cancelled at the drain deadline or on kill) > work (cancelled on
	// failure) > source (cancelled to stop intake). startStop cancels work's child for Start.
	hardCtx   context.Context
	hardStop  context.CancelFunc
	workCtx   context.Context
	workStop  context.CancelFunc
	srcCtx    context.Context
	srcStop   context.CancelFunc
	startStop context.CancelFunc

	stages      atomic.Int64  // stage goroutines still running (run.stageDone)
	stageChans  []chan item   // their channels, released by the last of them to return
	allDone     chan struct{} // closed once they all returned and their channels are empty
	abandon     chan struct{} // closed when the stuck ones are no longer waited for
	abandonOnce sync.Once
	launched    bool

	mu        sync.Mutex
	err       error // first failure
	errInStop bool  // err happened after the stop was requested (a drain error)
	stopping  bool  // stop was requested (intake stopped)
	killed    bool
	deadline  *time.Timer
	abandonT  *time.Timer
	hardFired bool
	srcEnded  bool // the source's Run returned nil (end of range)
}

// contexts makes the incarnation's contexts and returns work's child for Start.
func (lc *lifecycle) contexts() (start context.Context) {
	lc.hardCtx, lc.hardStop = context.WithCancel(context.Background())
	lc.workCtx, lc.workStop = context.WithCancel(lc.hardCtx)
	lc.srcCtx, lc.srcStop = context.WithCancel(lc.workCtx)
	start, lc.startStop = context.WithCancel(lc.workCtx)
	return start
}

// sourceReturned records how the source's Run returned and says whether a stop was requested
// before.
func (lc *lifecycle) sourceReturned(err error) (stopping bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if err == nil {
		lc.srcEnded = true
	}
	return lc.stopping
}

func (lc *lifecycle) isKilled() bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.killed
}

// fail records the first failure and stops the incarnation without drain.
func (lc *lifecycle) fail(c *comp, err error) {
	err = lc.red.Error(err)
	lc.mu.Lock()
	first := lc.err == nil
	if first {
		lc.err = err
		lc.errInStop = lc.stopping
		if c != nil {
			c.failed.Store(true)
		}
	}
	lc.mu.Unlock()
	if first {
		lc.log.Error("pipeline component failed", "component", compName(c), "err", err)
	}
	lc.armDeadline()
	lc.workStop()
}

func compName(c *comp) string {
	if c == nil {
		return ""
	}
	return c.name
}

// requestStop stops intake (drain) or, with kill, everything at once without flushing.
func (lc *lifecycle) requestStop(kill bool) {
	lc.mu.Lock()
	lc.stopping = true
	if kill {
		lc.killed = true
	}
	lc.mu.Unlock()
	if kill {
		lc.hardStop()
		lc.abandonAfter(lc.grace())
		return
	}
	lc.armDeadline()
	lc.srcStop()
}

// expedite cuts a drain now (the caller's context ended): like reaching the deadline.
func (lc *lifecycle) expedite() {
	lc.hardDeadline("drain cut short by the caller")
}

func (lc *lifecycle) grace() time.Duration {
	return min(max(lc.drain/10, 50*time.Millisecond), 2*time.Second)
}

func (lc *lifecycle) armDeadline() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.deadline != nil || !lc.launched {
		return
	}
	lc.deadline = time.AfterFunc(lc.drain, func() {
		lc.hardDeadline(fmt.Sprintf("drain deadline exceeded after %s", lc.drain))
	})
}

// hardDeadline cancels every component's context, records which were still busy and stops
// waiting for them after a short grace.
func (lc *lifecycle) hardDeadline(why string) {
	lc.mu.Lock()
	if lc.hardFired {
		lc.mu.Unlock()
		return
	}
	lc.hardFired = true
	lc.mu.Unlock()
	select {
	case <-lc.allDone:
		return
	default:
	}
	busy := lc.busy()
	msg := why
	if len(busy) > 0 {
		msg += ": " + strings.Join(busy, ", ")
	}
	err := errors.New(msg + "; cancelled")
	lc.mu.Lock()
	if lc.stopping {
		lc.errInStop = true
	}
	lc.err = errors.Join(lc.err, err)
	lc.mu.Unlock()
	lc.log.Error("pipeline drain cut", "err", err)
	lc.hardStop()
	lc.abandonAfter(lc.grace())
}

func (lc *lifecycle) abandonAfter(d time.Duration) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.abandonT != nil {
		return
	}
	lc.abandonT = time.AfterFunc(d, func() { lc.abandonOnce.Do(func() { close(lc.abandon) }) })
}

// busyCalls describes the component calls still running ("consumer Record busy for 1.5s on
// ledger 58752001").
func (r *run) busyCalls() []string {
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
	return busy
}

// settle stops the timers and returns how the incarnation ended: killed, stopping (a stop was
// requested), ended (the source reached its end), inStop (the error came during the stop) and
// its error.
func (lc *lifecycle) settle() (killed, stopping, ended, inStop bool, err error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.deadline != nil {
		lc.deadline.Stop()
	}
	if lc.abandonT != nil {
		lc.abandonT.Stop()
	}
	return lc.killed, lc.stopping, lc.srcEnded, lc.errInStop, lc.err
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
	killed, stopping, ended, inStop, err := r.settle()
	r.startStop()
	r.prog.finish(!killed)
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
