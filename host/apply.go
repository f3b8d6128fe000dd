package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/withobsrvr/cdpd/loader"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("host is closed")

// apply applies one event; name's worker runs it (queue.go). An Add or Update records its
// outcome on the pipeline handle (Info.ApplyError): the error, or none after a success; the
// error of a first version that failed to start and is retried clears once a retry runs.
func (h *Host) apply(ctx context.Context, ev loader.Event) error {
	name := ev.Pipeline.Name
	h.mu.Lock()
	closed, p := h.closed, h.pipes[name]
	h.mu.Unlock()
	if closed {
		return fmt.Errorf("applying %s of pipeline %s: %w", ev.Kind, name, ErrClosed)
	}
	var err error
	switch ev.Kind {
	case loader.Add, loader.Update:
		// add and update record their outcome on the pipeline themselves (Info.ApplyError),
		// before its new version launches: a version retried after a failed start clears it
		// once it runs, which must not be undone here afterwards.
		if p == nil || !p.applied() {
			_, err = h.add(ctx, ev.Pipeline)
		} else {
			err = h.update(ctx, p, ev.Pipeline)
		}
		return err
	case loader.Remove:
		if p == nil {
			return nil
		}
		return h.remove(ctx, p)
	}
	return fmt.Errorf("applying event to pipeline %s: unknown event kind %s", name, ev.Kind)
}

// add builds, starts and launches the first version of a pipeline on a new handle (replacing a
// handle whose first definition did not build). A definition that does not build leaves the
// handle listed, failed, with the error; the next Add or Update of the name tries again.
func (h *Host) add(ctx context.Context, def *loader.Pipeline) (*Pipeline, error) {
	p := newPipeline(h, def)
	h.mu.Lock()
	h.pipes[def.Name] = p
	h.mu.Unlock()
	r, err := h.build(def)
	if err != nil {
		p.refused(def, err)
		h.log.Warn("pipeline not added: its definition does not build", "pipeline", def.Name, "file", def.File, "err", err)
		return p, err
	}
	v := p.newVersion(def, 1)
	err = r.start(ctx)
	if err != nil {
		// Kept under supervision: a sink that is down at boot is retried per policy, and the
		// error stays the pipeline's ApplyError until a retry runs.
		err = fmt.Errorf("%w (the pipeline is retried per its restart policy)", err)
		p.setApplyError(err, v)
		p.launch(v, nil, err)
		return p, err
	}
	p.launch(v, r, nil)
	h.log.Info("pipeline added", "pipeline", def.Name, "file", def.File, "hash", shortHash(def.Hash))
	return p, nil
}

func (h *Host) update(ctx context.Context, p *Pipeline, def *loader.Pipeline) error {
	old := p.version()
	if old.def.Hash != "" && old.def.Hash == def.Hash {
		p.setApplyError(nil, nil) // back to the running content: nothing rejected any more
		return nil
	}
	r, err := h.build(def)
	if err != nil {
		p.setApplyError(err, nil)
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
		err := errors.Join(errs...)
		p.setApplyError(err, nil)
		return err
	}
	v := p.newVersion(def, old.gen+1)
	err = errors.Join(errs...)
	p.setApplyError(err, nil)
	p.launch(v, r, nil)
	h.log.Info("pipeline updated", "pipeline", def.Name, "file", def.File, "generation", v.gen, "hash", shortHash(def.Hash))
	return err
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
