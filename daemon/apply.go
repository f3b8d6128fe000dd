package daemon

import (
	"context"
	"sync"

	"github.com/withobsrvr/cdpd/loader"
)

// applier applies loader events to the host: in order for one pipeline, concurrently across
// pipelines, so that one pipeline's slow drain never delays another pipeline's reload. It owns
// one goroutine per pipeline with pending events; wait returns when all of them are done.
type applier struct {
	ctx   context.Context
	apply func(context.Context, loader.Event) error

	mu     sync.Mutex
	queues map[string][]job // pending jobs per pipeline; a key exists while its worker runs
	wg     sync.WaitGroup
}

type job struct {
	ev   loader.Event
	done func()
}

func newApplier(ctx context.Context, apply func(context.Context, loader.Event) error) *applier {
	return &applier{ctx: ctx, apply: apply, queues: map[string][]job{}}
}

// submit queues events and returns a function that waits until all of them are applied.
func (a *applier) submit(events []loader.Event) (wait func()) {
	var batch sync.WaitGroup
	batch.Add(len(events))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ev := range events {
		name := ev.Pipeline.Name
		q, running := a.queues[name]
		a.queues[name] = append(q, job{ev: ev, done: batch.Done})
		if !running {
			a.wg.Add(1)
			go a.work(name)
		}
	}
	return batch.Wait
}

func (a *applier) work(name string) {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		q := a.queues[name]
		if len(q) == 0 {
			delete(a.queues, name)
			a.mu.Unlock()
			return
		}
		j := q[0]
		a.queues[name] = q[1:]
		a.mu.Unlock()
		_ = a.apply(a.ctx, j.ev)
		j.done()
	}
}

// wait blocks until every worker has finished.
func (a *applier) wait() { a.wg.Wait() }
