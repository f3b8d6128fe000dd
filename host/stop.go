package host

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

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
