package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/loader"
)

// version is one applied definition of a pipeline and the supervisor goroutine running it.
type version struct {
	p   *Pipeline
	def *loader.Pipeline
	gen int64

	ctx      context.Context // cancelled when the version is stopped (aborts a Start)
	cancel   context.CancelFunc
	stopCh   chan struct{} // closed to stop the version
	stopOnce sync.Once
	kill     atomic.Bool
	done     chan struct{} // closed when the supervisor returned

	mu      sync.Mutex
	run     *run
	stopErr error // written before done is closed
}

func (p *Pipeline) newVersion(def *loader.Pipeline, gen int64) *version {
	ctx, cancel := context.WithCancel(context.Background())
	return &version{p: p, def: def, gen: gen, ctx: ctx, cancel: cancel, stopCh: make(chan struct{}), done: make(chan struct{})}
}

// stop stops the version: a drain bounded by DrainTimeout, cut earlier when ctx ends; with
// kill, at once and without flushing. It returns what went wrong during the drain.
func (v *version) stop(ctx context.Context, kill bool) error {
	if v.stopCh == nil {
		return nil
	}
	if kill {
		v.kill.Store(true)
	}
	if v.p != nil {
		v.p.mu.Lock()
		if v.p.ver == v && v.p.status != StatusStopped {
			v.p.status = StatusStopping
		}
		v.p.mu.Unlock()
	}
	v.stopOnce.Do(func() {
		close(v.stopCh)
		v.cancel()
	})
	select {
	case <-v.done:
	case <-ctx.Done():
		v.mu.Lock()
		r := v.run
		v.mu.Unlock()
		if r != nil {
			r.expedite()
		}
		<-v.done
	}
	return v.stopErr
}

func (v *version) stopped() bool {
	select {
	case <-v.stopCh:
		return true
	default:
		return false
	}
}

func (v *version) policy() string {
	switch v.def.Restart {
	case loader.RestartAlways, loader.RestartNever:
		return v.def.Restart
	}
	return loader.RestartOnFailure
}

// launch makes v the pipeline's current version and starts its supervisor. first is its
// already started first incarnation, or nil with the error that kept it from starting.
func (p *Pipeline) launch(v *version, first *run, firstErr error) {
	p.mu.Lock()
	p.ver = v
	p.backoff = 0
	p.status = StatusStarting
	p.removed = false
	p.mu.Unlock()
	go p.supervise(v, first, firstErr)
}

func (p *Pipeline) supervise(v *version, r *run, err error) {
	defer close(v.done)
	h := p.h
	log := h.pipelineLogger(redactorOf(v.def), p.name)
	if h.opts.OnRunning != nil {
		h.opts.OnRunning(p)
	}
	failures := 0
	for {
		if r == nil && err == nil {
			p.setStatus(StatusStarting)
			r, err = h.build(v.def)
			if err == nil {
				if err = r.start(v.ctx); err != nil {
					r = nil
				}
			}
		}
		if err == nil {
			if v.stopped() {
				r.closeAll()
				p.setStatus(StatusStopped)
				return
			}
			r.p = p
			r.prog.saved = p.checkpointSaved
			r.prog.first = func() { p.progressed(r) }
			p.running(r)
			log.Info("pipeline running", "generation", v.gen, "from_ledger", r.from)
			r.launch()
			v.mu.Lock()
			v.run = r // only launched runs: stop may cut their drain
			v.mu.Unlock()
			out, rerr := r.wait(v.stopCh, v.kill.Load)
			p.ended(r)
			switch out {
			case outStopped:
				v.stopErr = rerr
				if rerr != nil {
					p.setLastError(rerr.Error())
				}
				p.setStatus(StatusStopped)
				log.Info("pipeline stopped", "current_ledger", r.prog.current.Load(), "checkpoint", r.prog.checkpointed.Load())
				return
			case outCompleted:
				if _, end := r.source().Range(); end != 0 || v.policy() != loader.RestartAlways {
					p.setStatus(StatusCompleted)
					log.Info("pipeline completed", "current_ledger", r.prog.current.Load(), "ledgers", r.prog.processed.Load())
					<-v.stopCh
					p.setStatus(StatusStopped)
					return
				}
				failures = 0 // restart: always, after an unbounded source ended
			case outFailed:
				err = rerr
				if h.opts.Now().Sub(r.startedAt) >= h.opts.StableAfter {
					failures = 0
				}
			}
			r = nil
		}
		if v.stopped() { // a restart aborted by the stop: not a failure
			p.setStatus(StatusStopped)
			return
		}
		failures++
		if err != nil {
			p.setLastError(err.Error())
			if v.policy() == loader.RestartNever {
				p.setStatus(StatusFailed)
				log.Error("pipeline failed; restart: never", "err", err)
				<-v.stopCh
				p.setStatus(StatusStopped)
				return
			}
		}
		delay := h.restartBackoff.Delay(failures)
		p.mu.Lock()
		p.status = StatusRestarting
		p.backoff = delay
		p.mu.Unlock()
		log.Warn("pipeline restarting", "in", delay, "consecutive_failures", failures, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-v.stopCh:
			t.Stop()
			p.setStatus(StatusStopped)
			return
		}
		p.restarted(delay, err)
		err = nil
	}
}

func (p *Pipeline) running(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applyErrVer != nil && p.applyErrVer == p.ver {
		p.applyError, p.applyErrVer = "", nil // the retried first version runs: applied after all
	}
	p.run = r
	p.status = StatusRunning
	p.startedAt = r.startedAt
	p.backoff = 0
	if c := r.prog.checkpointed.Load(); c != 0 {
		p.checkpoint = c
	}
}

func (p *Pipeline) ended(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := r.prog.current.Load(); c != 0 {
		p.current = c
	}
	if c := r.prog.checkpointed.Load(); c != 0 {
		p.checkpoint = c
	}
}

func (p *Pipeline) restarted(delay time.Duration, cause error) {
	ev := RestartEvent{At: p.h.opts.Now(), Delay: delay}
	if cause != nil {
		ev.Err = cause.Error()
	}
	p.restartsTotal.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restarts++
	p.backoff = 0
	p.restartLog = append(p.restartLog, ev)
	if len(p.restartLog) > keepRestartEvents {
		p.restartLog = p.restartLog[len(p.restartLog)-keepRestartEvents:]
	}
}
