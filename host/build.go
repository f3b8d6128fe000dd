package host

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/loader"
)

// build constructs (and so validates) every component of def with a fresh registry. Errors
// are *loader.Error naming the file, the line and the pipeline.
func (h *Host) build(def *loader.Pipeline) (*run, error) {
	reg := prometheus.NewRegistry()
	red := redactorOf(def)
	r := &run{h: h, def: def, reg: reg, red: red, log: h.pipelineLogger(red, def.Name)}
	r.lifecycle = lifecycle{drain: h.opts.DrainTimeout, log: r.log, red: red, busy: r.busyCalls}
	if h.cps != nil {
		r.dir = h.cps.Dir(def.Name)
	}
	used := map[string]int{}
	// A component's name is the entry's `name:` when it has one, else its type (<Type>_2 for a
	// second of the same type): the prefix of its stats and its health detail.
	env := func(kind component.Kind, lc loader.Component) component.Env {
		name := lc.Name
		if name == "" {
			used[lc.Type]++
			name = lc.Type
			if n := used[lc.Type]; n > 1 {
				name = fmt.Sprintf("%s_%d", lc.Type, n)
			}
		}
		return component.Env{
			Pipeline: def.Name, Name: name,
			Logger:  r.log.With("component", name, "kind", string(kind)),
			Metrics: reg, StateDir: r.dir, Now: h.opts.Now, Decodes: &r.decodes, Network: def.Network(),
			Readers: h.readers,
		}
	}
	bad := r.defErr
	add := func(kind component.Kind, lc loader.Component, e component.Env, impl any) *comp {
		c := &comp{kind: kind, typ: lc.Type, name: e.Name, line: lc.Line, impl: impl, red: red}
		r.comps = append(r.comps, c)
		return c
	}
	e := env(component.KindSource, def.Source)
	src, err := safeConstruct(func() (component.Source, error) {
		return h.opts.Registry.NewSource(def.Source.Type, def.Source.Config, e)
	})
	if err != nil {
		return nil, bad(def.Source.Line, fmt.Sprintf("source (%s)", def.Source.Type), err)
	}
	r.src = add(component.KindSource, def.Source, e, src)
	for i, pc := range def.Processors {
		e := env(component.KindProcessor, pc)
		pr, err := safeConstruct(func() (component.Processor, error) {
			return h.opts.Registry.NewProcessor(pc.Type, pc.Config, e)
		})
		if err != nil {
			return nil, bad(pc.Line, fmt.Sprintf("processor %d (%s)", i+1, pc.Type), err)
		}
		r.procs = append(r.procs, add(component.KindProcessor, pc, e, pr))
	}
	for i, cc := range def.Consumers {
		e := env(component.KindConsumer, cc)
		co, err := safeConstruct(func() (component.Consumer, error) {
			return h.opts.Registry.NewConsumer(cc.Type, cc.Config, e)
		})
		if err != nil {
			return nil, bad(cc.Line, fmt.Sprintf("consumer %d (%s)", i+1, cc.Type), err)
		}
		r.cons = append(r.cons, add(component.KindConsumer, cc, e, co))
	}
	r.prog = newProgress(len(r.cons), h.cps, def.Name, def.Hash, h.opts, r.log)
	return r, nil
}

// start opens the components (consumers first, then processors, then the source) and computes
// the start position. On error every component is closed.
func (r *run) start(ctx context.Context) (err error) {
	startCtx := r.contexts()
	stopAfter := context.AfterFunc(ctx, r.startStop)
	defer stopAfter()
	r.startedAt = r.h.opts.Now()
	defer func() {
		if err != nil {
			r.closeAll()
		}
	}()
	if r.dir != "" {
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return r.defErr(0, "creating the state directory", err)
		}
	}
	order := append(append(append([]*comp(nil), r.cons...), r.procs...), r.src)
	for _, c := range order {
		st, ok := c.impl.(component.Starter)
		if !ok {
			continue
		}
		if err := r.call(startCtx, c, "Start", func() error { return st.Start(startCtx) }); err != nil {
			return r.defErr(c.line, fmt.Sprintf("starting %s", c.label()), err)
		}
	}
	from, err := r.position(startCtx)
	if err != nil {
		return err
	}
	r.from = from
	return nil
}

// defErr is an error about the incarnation's definition naming its file, the line (the
// pipeline's when 0) and the pipeline, its secrets redacted.
func (r *run) defErr(line int, what string, err error) error {
	def := r.def
	if line == 0 {
		line = def.Line
	}
	err = r.red.Error(err)
	return &loader.Error{File: def.File, Line: line, Pipeline: def.Name, Msg: fmt.Sprintf("%s: %v", what, err), Err: err}
}

// position is max(start_ledger, min(checkpoint+1, lowest consumer position+1)).
func (r *run) position(ctx context.Context) (uint32, error) {
	start, _ := r.source().Range()
	from := start
	cp, haveCP, err := r.prog.load()
	if err != nil {
		return 0, r.defErr(0, "loading the checkpoint", err)
	}
	// Lowest next ledger any consumer needs; a consumer without its own position needs the
	// ledger after the checkpoint (or start_ledger when there is none).
	var need uint64 = 1<<63 - 1
	for _, c := range r.cons {
		pc, ok := c.impl.(component.Positioned)
		var next uint64
		switch {
		case ok:
			var (
				last uint32
				has  bool
			)
			err := r.call(ctx, c, "Position", func() (err error) {
				last, has, err = pc.Position(ctx)
				return err
			})
			if err != nil {
				return 0, r.defErr(c.line, fmt.Sprintf("reading the position of %s", c.label()), err)
			}
			if has {
				next = uint64(last) + 1
			} else {
				next = uint64(start)
			}
		case haveCP:
			next = uint64(cp) + 1
		default:
			next = uint64(start)
		}
		need = min(need, next)
	}
	if len(r.cons) == 0 && haveCP {
		need = uint64(cp) + 1
	}
	if need != 1<<63-1 && need > uint64(from) {
		from = uint32(min(need, 1<<32-1))
	}
	return from, nil
}

// closeAll closes the components of an incarnation that never launched.
func (r *run) closeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), r.h.opts.DrainTimeout)
	defer cancel()
	for _, c := range r.comps {
		var err error
		switch v := c.impl.(type) {
		case component.Source:
			err = r.call(ctx, c, "Close", v.Close)
		case component.Consumer:
			err = r.call(ctx, c, "Close", func() error { return v.Close(ctx) })
		case component.Closer:
			err = r.call(ctx, c, "Close", v.Close)
		}
		if err != nil {
			r.log.Warn("closing a component failed", "component", c.name, "err", err)
		}
	}
	if r.hardStop != nil {
		r.startStop()
		r.hardStop()
	}
}
