package host

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/withobsrvr/cdpd/loader"
)

// Per-pipeline ordering: every change of a pipeline name (Submit, Apply, and the stop of
// Close) goes through that name's queue and runs after the ones queued before it, one at a
// time; each name with queued changes has one worker goroutine, which ends when its queue is
// empty. Changes of different names run concurrently.

// job is one queued change of a pipeline name: do runs it, done receives its error.
type job struct {
	do   func() error
	done func(error)
}

// Applied is the outcome of Submit: Done is closed once every change was applied.
type Applied struct {
	errs []error
	left atomic.Int64
	done chan struct{}
}

// Done is closed once every submitted change was applied (or refused).
func (a *Applied) Done() <-chan struct{} { return a.done }

// Wait waits for Done and returns each change's error (nil when it was applied), in the order
// the changes were submitted.
func (a *Applied) Wait() []error {
	<-a.done
	return a.errs
}

func (a *Applied) finish(i int, err error) {
	a.errs[i] = err
	if a.left.Add(-1) == 0 {
		close(a.done)
	}
}

// Submit queues changes and returns at once. The changes of one pipeline are applied in the
// order they were submitted, also across calls (an event submitted later never overtakes an
// earlier one of the same name); those of different pipelines concurrently, so that one
// pipeline's slow drain never delays another pipeline's change. Each change is applied as
// Apply applies it, under ctx.
func (h *Host) Submit(ctx context.Context, events ...loader.Event) *Applied {
	a := &Applied{errs: make([]error, len(events)), done: make(chan struct{})}
	a.left.Store(int64(len(events)))
	if len(events) == 0 {
		close(a.done)
		return a
	}
	for i, ev := range events {
		if ev.Pipeline == nil || ev.Pipeline.Name == "" {
			a.finish(i, fmt.Errorf("applying %s event: no pipeline", ev.Kind))
			continue
		}
		h.enqueue(ev.Pipeline.Name, job{
			do:   func() error { return h.apply(ctx, ev) },
			done: func(err error) { a.finish(i, err) },
		})
	}
	return a
}

// Apply applies one loader event and returns its error: it is Submit of one event, waited for
// (see the package doc). Errors about a definition name its file, line and pipeline. An Update
// of an unknown pipeline is an Add; a Remove of an unknown pipeline is a no-op.
func (h *Host) Apply(ctx context.Context, ev loader.Event) error {
	return h.Submit(ctx, ev).Wait()[0]
}

// enqueue appends j to name's queue and starts its worker if none runs.
func (h *Host) enqueue(name string, j job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	q, running := h.queues[name]
	h.queues[name] = append(q, j)
	if !running {
		h.workers.Add(1)
		go h.work(name)
	}
}

// work runs name's queued changes in order until the queue is empty.
func (h *Host) work(name string) {
	defer h.workers.Done()
	for {
		h.mu.Lock()
		q := h.queues[name]
		if len(q) == 0 {
			delete(h.queues, name)
			h.mu.Unlock()
			return
		}
		j := q[0]
		q[0] = job{}
		h.queues[name] = q[1:]
		h.mu.Unlock()
		j.done(j.do())
	}
}
