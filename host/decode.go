package host

import (
	"context"
	"sync"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// needsDecode reports whether a processor of the incarnation reads the full decode of every
// ledger (component.NeedsDecode).
func (r *run) needsDecode() bool {
	if r.h.opts.DecodeWorkers < 0 {
		return false
	}
	for _, c := range r.procs {
		if nd, ok := c.impl.(component.NeedsDecode); ok && nd.NeedsDecode() {
			return true
		}
	}
	return false
}

// preparers are the incarnation's processors that prepare ahead (component.Preparer).
func (r *run) preparers() []component.Preparer {
	var ps []component.Preparer
	for _, c := range r.procs {
		if p, ok := c.impl.(component.Preparer); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// prepare runs p.Prepare; a panic in it is left to Process, which meets it again under the
// pipeline's guard.
func prepare(p component.Preparer, l *ledger.Ledger) {
	defer func() { _ = recover() }()
	p.Prepare(l)
}

// decodeLoop is the decode-ahead stage of a pipeline whose processors need the full decode: it
// hands each ledger to one of Options.DecodeWorkers workers, which decode it (ledger.Decoded:
// at most once per ledger, shared with every other pipeline holding it) and run the
// processors' Prepare on it (component.Preparer: what they derive from the decode, such as
// the token transfer events, also at most once per ledger), and forwards the
// ledgers in their order to the first processor, so one full-decode pipeline decodes on every
// core. At most workers+1 ledgers are in the stage, and one waits for the first processor: a
// decoded ledger is read soon after its decode (while its 5-7 MB are still in the CPU's
// caches), and the budget's decoded estimates stay small. A decode error is not handled here:
// the processor's own Decoded call returns it.
func (r *run) decodeLoop(in <-chan item, send func(context.Context, item) bool, closeNext func()) {
	defer r.stageDone()
	defer closeNext()
	ctx := r.workCtx
	workers := r.h.opts.DecodeWorkers
	preparers := r.preparers()
	type job struct {
		it   item
		done chan struct{}
	}
	order := make(chan job, workers) // in ledger order, to the forwarder
	jobs := make(chan job, workers)  // to the workers
	var wg sync.WaitGroup
	wg.Go(func() { // dispatcher
		defer close(jobs)
		defer close(order)
		for {
			var it item
			select {
			case v, ok := <-in:
				if !ok {
					return
				}
				it = v
			case <-ctx.Done():
				return
			}
			j := job{it: it, done: make(chan struct{})}
			select {
			case order <- j:
			case <-ctx.Done():
				it.l.Release()
				return
			}
			jobs <- j // never full for long: it holds no more jobs than order does
		}
	})
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() == nil {
					if _, err := j.it.l.Decoded(); err == nil {
						for _, p := range preparers {
							prepare(p, j.it.l)
						}
					}
				}
				close(j.done)
			}
		})
	}
	// Forwarder: in order; after a cancellation it only releases what is left.
	cut := false
	for j := range order {
		if !cut {
			select {
			case <-j.done:
			case <-ctx.Done():
			}
		}
		if cut || ctx.Err() != nil {
			cut = true
			<-j.done // a worker may still read the ledger
			j.it.l.Release()
			continue
		}
		if !send(ctx, j.it) { // released by send
			cut = true
		}
	}
	wg.Wait()
}
