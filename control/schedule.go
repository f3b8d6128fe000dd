package control

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"

	"github.com/withobsrvr/cdpd/internal/backoff"
)

// entry is one attached pipeline. All fields are guarded by Client.mu.
type entry struct {
	id    string
	reg   Registration
	p     Pipeline
	phase time.Duration // offset of its heartbeats inside the interval
	gen   uint64        // bumped when the registration changes

	needRegister   bool // the control plane must be (re)told the registration
	everRegistered bool // registered at least once since Attach
	lost           bool // the control plane answered "not found"; not registered again yet
	confirmed      bool // last exchange confirmed the control plane has it
	removed        bool // detached

	next  time.Time
	index int // position in Client.queue, -1 when not queued

	running bool
	dueNow  bool // exchange again as soon as the running one finishes
	cancel  context.CancelFunc
	done    chan struct{} // closed when the running exchange has finished

	failures int
	haltCode codes.Code // code of the logged rejection (codes.OK: none)
	// regErr is why the pipeline is not registered: the last registration that failed, or a
	// heartbeat the control plane refused ("" once one succeeds); refused says the control
	// plane answered (Client.Registration).
	regErr  string
	refused bool

	hb *hbCache // used by the running exchange only (never two at once)
	// token is the owner token the control plane returned at the last registration ("" =
	// the client's own).
	token string
}

// Run is the client's scheduler: it registers and heartbeats the attached
// pipelines and watches the connection until ctx is done. It owns every
// goroutine of the client and returns (nil) only after all have stopped. Run
// may be called once; a disabled client's Run just waits for ctx.
func (c *Client) Run(ctx context.Context) error {
	if !c.Enabled() {
		<-ctx.Done()
		return nil
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("control: Client.Run called twice")
	}
	c.started = true
	c.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	watcher.Go(func() { c.watchConn(runCtx) })
	defer func() {
		cancel()
		watcher.Wait()
		c.jobs.Wait()
	}()

	// The timer is left armed across pokes that do not change the next due
	// time: stopping and re-arming it on every wake-up costs a scan of the
	// runtime's timer heap, which holds every timer of every pipeline.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var armed time.Time // what the timer fires for (zero: not armed)
	for {
		at, wait, ok := c.dispatch(runCtx)
		switch {
		case !ok:
			if !armed.IsZero() {
				timer.Stop()
				armed = time.Time{}
			}
		case !at.Equal(armed):
			timer.Reset(wait)
			armed = at
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-c.wake:
		case <-timer.C:
			armed = time.Time{}
		}
	}
}

// dispatch starts the exchanges that are due, as far as the concurrency bound
// allows, and returns when the next one is due and how long to wait for it (ok
// false: wait for a poke). Exchanges due within the slack start with the due
// ones, a little early, so that pipelines whose slots are close share one
// wake-up of the scheduler, of the workers and of gRPC's writer and reader:
// per heartbeat, those wake-ups cost more CPU than building and sending it.
func (c *Client) dispatch(ctx context.Context) (at time.Time, wait time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wakeAt, c.starved = time.Time{}, false
	now := c.now()
	horizon := now.Add(c.slack())
	for c.queue.Len() > 0 {
		e := c.queue[0]
		if e.next.After(horizon) {
			c.wakeAt = e.next
			return e.next, e.next.Sub(now), true
		}
		select {
		case c.sem <- struct{}{}:
		default:
			c.starved = true // a finishing exchange pokes
			return time.Time{}, 0, false
		}
		heap.Pop(&c.queue)
		c.start(ctx, e)
	}
	return time.Time{}, 0, false
}

// slack is how early dispatch may start an exchange: a twentieth of the
// interval, at most 100 ms (50 ms at a 1 s interval, 100 ms at the default
// 10 s). Pipelines keep their phase; consecutive heartbeats of one pipeline are
// an interval apart, give or take the slack.
func (c *Client) slack() time.Duration { return min(c.cfg.HeartbeatInterval/20, 100*time.Millisecond) }

// needsDispatch reports whether Run must look at the queue again after an
// exchange of e finished and was queued for e.next; c.mu held.
func (c *Client) needsDispatch(e *entry) bool {
	if c.starved {
		return true // it waits for the token this exchange gives back
	}
	if e.removed || e.index < 0 {
		return false
	}
	return c.wakeAt.IsZero() || e.next.Before(c.wakeAt)
}

// start launches e's exchange; c.mu held and a sem token taken.
func (c *Client) start(ctx context.Context, e *entry) {
	jctx, cancel := context.WithCancel(ctx)
	e.running, e.cancel, e.done = true, cancel, make(chan struct{})
	x := exchange{gen: e.gen, reg: e.reg, p: e.p, needRegister: e.needRegister, hb: e.hb, token: e.token}
	job := func() {
		defer cancel()
		res := c.run(jctx, x)
		c.mu.Lock()
		c.finish(jctx, e, x, res)
		close(e.done)
		wake := c.needsDispatch(e)
		c.mu.Unlock()
		<-c.sem
		if wake {
			c.poke()
		}
	}
	select {
	case c.work <- job:
	default:
		c.jobs.Go(func() { c.worker(ctx, job) })
	}
}

// worker runs job, then the jobs handed to it while it waits idle, until ctx
// (Run's) is done or it has been idle for two heartbeat intervals (so that a
// burst, e.g. many pipelines attached at once, leaves no idle goroutines behind).
// Workers are reused because a new goroutine per exchange grows its stack
// through the gRPC call path every time. There are at most about MaxConcurrent
// of them: a new one starts only when none is idle.
func (c *Client) worker(ctx context.Context, job func()) {
	idle := time.NewTimer(2 * c.cfg.HeartbeatInterval)
	defer idle.Stop()
	for {
		job()
		idle.Reset(2 * c.cfg.HeartbeatInterval)
		select {
		case job = <-c.work:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// dueAt makes e's next exchange happen at t (or right after the running
// one); c.mu held.
func (c *Client) dueAt(e *entry, t time.Time) {
	if e.running {
		e.dueNow = true
		return
	}
	e.next = t
	if e.index >= 0 {
		heap.Fix(&c.queue, e.index)
	}
}

// setConfirmed keeps the registered-pipelines gauge in step; c.mu held.
func (c *Client) setConfirmed(e *entry, v bool) {
	if e.confirmed == v {
		return
	}
	e.confirmed = v
	if v {
		c.confirmed++
	} else {
		c.confirmed--
	}
	c.m.registered.Set(float64(c.confirmed))
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// phaseOf spreads pipelines over the interval by a hash of their id.
func (c *Client) phaseOf(id string) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(c.cfg.HeartbeatInterval))
}

// nextSlot is the next time after now that sits at phase inside the
// interval grid, at least half an interval away.
func (c *Client) nextSlot(now time.Time, phase time.Duration) time.Time {
	iv := c.cfg.HeartbeatInterval
	pos := time.Duration(now.UnixNano() % int64(iv))
	if pos < 0 {
		pos += iv
	}
	off := (phase - pos + iv) % iv
	if off < iv/2 {
		off += iv
	}
	return now.Add(off)
}

// slotAfter schedules the heartbeat after one that was due at `due` and finished at now: the
// next slot of the pipeline's grid after due, so a call that completes late does not push
// the next one back; when even that slot has passed (the call took longer than an
// interval), the first slot after now.
func (c *Client) slotAfter(due, now time.Time, phase time.Duration) time.Time {
	iv := c.cfg.HeartbeatInterval
	grid := func(t time.Time) time.Time { // first grid point at phase strictly after t
		pos := time.Duration(t.UnixNano() % int64(iv))
		if pos < 0 {
			pos += iv
		}
		off := (phase - pos + iv) % iv
		if off == 0 {
			off = iv
		}
		return t.Add(off)
	}
	if next := grid(due); next.After(now) {
		return next
	}
	return grid(now)
}

// retryPolicy is the client's one backoff (see the package doc): base 100 ms,
// factor 1.6, jitter 0.2, capped at max.
func retryPolicy(max time.Duration) backoff.Policy {
	return backoff.Policy{Base: backoffBase, Max: max, Factor: backoffFactor, Jitter: backoffJitter}
}

// reconnectBackoff is p as gRPC's reconnect backoff.
func reconnectBackoff(p backoff.Policy) grpcbackoff.Config {
	return grpcbackoff.Config{BaseDelay: p.Base, Multiplier: p.Factor, Jitter: p.Jitter, MaxDelay: p.Max}
}

// backoff is the delay before retry n (n >= 1) of a failed call.
func (c *Client) backoff(n int) time.Duration { return c.retry.Delay(n) }

// entryQueue is a min-heap of entries by next exchange time.
type entryQueue []*entry

func (q entryQueue) Len() int           { return len(q) }
func (q entryQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q entryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *entryQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *entryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
