package host

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/withobsrvr/cdpd/loader"
)

type nameLock struct {
	mu   sync.Mutex
	refs int
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("host is closed")

// lockName serializes changes of one pipeline name; changes of other names proceed.
func (h *Host) lockName(name string) (unlock func()) {
	h.mu.Lock()
	l := h.locks[name]
	if l == nil {
		l = &nameLock{}
		h.locks[name] = l
	}
	l.refs++
	h.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		h.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(h.locks, name)
		}
		h.mu.Unlock()
	}
}

// Apply applies one loader event synchronously (see the package doc). Errors about a
// definition name its file, line and pipeline. An Update of an unknown pipeline is an Add; a
// Remove of an unknown pipeline is a no-op.
func (h *Host) Apply(ctx context.Context, ev loader.Event) error {
	if ev.Pipeline == nil || ev.Pipeline.Name == "" {
		return fmt.Errorf("applying %s event: no pipeline", ev.Kind)
	}
	name := ev.Pipeline.Name
	unlock := h.lockName(name)
	defer unlock()
	h.mu.Lock()
	closed, p := h.closed, h.pipes[name]
	h.mu.Unlock()
	if closed {
		return fmt.Errorf("applying %s of pipeline %s: %w", ev.Kind, name, ErrClosed)
	}
	switch ev.Kind {
	case loader.Add, loader.Update:
		if p == nil {
			return h.add(ctx, ev.Pipeline)
		}
		return h.update(ctx, p, ev.Pipeline)
	case loader.Remove:
		if p == nil {
			return nil
		}
		return h.remove(ctx, p)
	}
	return fmt.Errorf("applying event to pipeline %s: unknown event kind %s", name, ev.Kind)
}

func (h *Host) add(ctx context.Context, def *loader.Pipeline) error {
	r, err := h.build(def)
	if err != nil {
		return err
	}
	p := newPipeline(h, def)
	h.mu.Lock()
	h.pipes[def.Name] = p
	h.mu.Unlock()
	v := p.newVersion(def, 1)
	err = r.start(ctx)
	if err != nil {
		// Kept under supervision: a sink that is down at boot is retried per policy.
		p.launch(v, nil, err)
		return fmt.Errorf("%w (the pipeline is retried per its restart policy)", err)
	}
	p.launch(v, r, nil)
	h.log.Info("pipeline added", "pipeline", def.Name, "file", def.File, "hash", shortHash(def.Hash))
	return nil
}

func (h *Host) update(ctx context.Context, p *Pipeline, def *loader.Pipeline) error {
	old := p.version()
	if old.def.Hash != "" && old.def.Hash == def.Hash {
		return nil // same content: nothing to do
	}
	r, err := h.build(def)
	if err != nil {
		p.setLastError("update rejected: " + err.Error())
		h.log.Warn("pipeline update rejected, old version kept", "pipeline", def.Name, "file", def.File, "err", err)
		return err
	}
	var errs []error
	if err := old.stop(ctx, false); err != nil {
		errs = append(errs, fmt.Errorf("stopping the old version of pipeline %s: %w", def.Name, err))
	}
	if err := r.start(ctx); err != nil {
		h.log.Warn("new pipeline version failed to start, restoring the old one", "pipeline", def.Name, "err", err)
		errs = append(errs, err)
		back := p.newVersion(old.def, old.gen)
		or, oerr := h.build(old.def)
		if oerr == nil {
			oerr = or.start(ctx)
		}
		if oerr != nil {
			p.launch(back, nil, oerr)
			errs = append(errs, fmt.Errorf("restoring the old version of pipeline %s: %w", def.Name, oerr))
		} else {
			p.launch(back, or, nil)
		}
		p.setLastError("update rejected: " + err.Error())
		return errors.Join(errs...)
	}
	v := p.newVersion(def, old.gen+1)
	p.launch(v, r, nil)
	h.log.Info("pipeline updated", "pipeline", def.Name, "file", def.File, "generation", v.gen, "hash", shortHash(def.Hash))
	return errors.Join(errs...)
}

func (h *Host) remove(ctx context.Context, p *Pipeline) error {
	err := p.version().stop(ctx, false)
	h.mu.Lock()
	if h.pipes[p.name] == p {
		delete(h.pipes, p.name)
	}
	h.mu.Unlock()
	p.setRemoved()
	h.log.Info("pipeline removed", "pipeline", p.name)
	if h.opts.OnRemoved != nil {
		h.opts.OnRemoved(p.name)
	}
	if err != nil {
		return fmt.Errorf("removing pipeline %s: %w", p.name, err)
	}
	return nil
}
