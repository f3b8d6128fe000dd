package daemon

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/loader"
)

// What keeps a running pipeline from being what its file says, or from being seen by the
// control plane, beyond its own errors (issue 17 items 4 and 4b): a rejected edit of its file
// (it runs the previous version, degraded, with the reason as its config_rejected health
// detail) and a registration that cannot happen (a service id another pipeline holds, a
// control plane that refuses it), which /api/v1/errors lists with the config errors.

// rejections are the loader's standing errors by what they reject: a pipeline of a file
// (key file + "\x00" + name) or a whole file (key file: a YAML syntax error names no pipeline,
// and rejects every pipeline the file defined when it was last good).
type rejections map[string]string

// setRejections recomputes the rejections from the watcher's standing errors (after each scan).
func (d *daemon) setRejections(errs []*loader.Error) {
	r := rejections{}
	for _, e := range errs {
		k := e.File
		if e.Pipeline != "" {
			k += "\x00" + e.Pipeline
		}
		if _, ok := r[k]; !ok { // errs are sorted by file and line: the first one
			r[k] = e.Error()
		}
	}
	d.rejected.Store(&r)
}

// configRejected is host.Options.ConfigRejected: the error about the pipeline in its file,
// else about the whole file.
func (d *daemon) configRejected(name, file string) string {
	r := d.rejected.Load()
	if r == nil {
		return ""
	}
	if msg, ok := (*r)[file+"\x00"+name]; ok {
		return msg
	}
	return (*r)[file]
}

// registrationErrors are the running pipelines that cannot be registered with the control
// plane, as /api/v1/errors lists them: a service id another pipeline holds, or a registration
// the control plane refused.
func (d *daemon) registrationErrors() []ConfigError {
	var out []ConfigError
	for _, p := range d.host.Pipelines() {
		name, def := p.Name(), p.Definition()
		if d.idConflict(name) == "" && !d.client.Registration(d.serviceID(name)).Refused {
			continue // registered, or only waiting for a control plane it cannot reach
		}
		msg := d.registrationError(name)
		out = append(out, configError(&loader.Error{File: def.File, Line: def.Line, Column: def.Column, Pipeline: name, Msg: msg}))
	}
	return out
}

// registrationError says why a pipeline is not registered ("" when it is, or when nothing is
// known yet).
func (d *daemon) registrationError(name string) string {
	id := d.serviceID(name)
	if holder := d.idConflict(name); holder != "" {
		return fmt.Sprintf("service id %s is already used by pipeline %s; rename one of them (this one is not registered with the control plane)", id, holder)
	}
	if st := d.client.Registration(id); st.Error != "" {
		if st.Refused {
			return "the control plane refuses the pipeline: " + st.Error
		}
		return "the control plane cannot be reached: " + st.Error
	}
	return ""
}

// idConflicts counts the running pipelines whose service id another pipeline holds.
func (d *daemon) idConflicts() int {
	n := 0
	for _, p := range d.host.Pipelines() {
		if d.idConflict(p.Name()) != "" {
			n++
		}
	}
	return n
}

// serviceIDConflicts are the errors `cdpd validate` reports for pipeline names that map to one
// service id (MyEvents, my-events and my_events are all cdp-my-events): only one of them could
// register with the control plane. The first by file and line keeps the id; each other one is
// an error naming it.
func serviceIDConflicts(pipelines map[string]*loader.Pipeline) []*loader.Error {
	byID := map[string][]*loader.Pipeline{}
	for _, p := range pipelines {
		id := control.ServiceID("", p.Name)
		byID[id] = append(byID[id], p)
	}
	var out []*loader.Error
	for id, ps := range byID {
		if len(ps) < 2 {
			continue
		}
		slices.SortFunc(ps, func(a, b *loader.Pipeline) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
		})
		keeper := ps[0]
		for _, p := range ps[1:] {
			out = append(out, &loader.Error{File: p.File, Line: p.Line, Column: p.Column, Pipeline: p.Name,
				Msg: fmt.Sprintf("service id %s is also the id of pipeline %s (%s:%d): only one of them can register with the control plane; rename one",
					id, keeper.Name, loader.Printable(keeper.File), keeper.Line)})
		}
	}
	slices.SortFunc(out, func(a, b *loader.Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return out
}
