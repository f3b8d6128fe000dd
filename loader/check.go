package loader

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// check runs the caller's Check on every component of an assembled pipeline (after the whole
// pipeline is read, so that processors see the source's network).
func (p *fileParser) check(pl *Pipeline) {
	if p.opts.Check == nil {
		return
	}
	network := pl.Network()
	try := func(kind, label string, c Component) {
		unknown, err := safeCheck(p.opts.Check, kind, c.Type, c.Config, network)
		if err != nil {
			p.errs = append(p.errs, &Error{File: p.file, Line: c.Line, Column: c.Column, Pipeline: pl.Name,
				Msg: fmt.Sprintf("%s (%s): %v", label, c.Type, err), Err: err})
			return
		}
		for _, u := range unknown {
			at := keyNode(p.configs[[2]int{c.Line, c.Column}], u.Key)
			if at == nil {
				at = &yaml.Node{Line: c.Line, Column: c.Column}
			}
			if u.Ignored != "" {
				p.warn(pl, at, "%s (%s): config key %q has no effect in cdpd (%s)", label, c.Type, u.Key, u.Ignored)
				continue
			}
			p.warn(pl, at, "%s (%s): unknown config key %q, ignored (known: %s)", label, c.Type, u.Key, knownList(u.Known))
		}
	}
	try(KindSource, "source", pl.Source)
	for i, c := range pl.Processors {
		try(KindProcessor, fmt.Sprintf("%s %d", KindProcessor, i+1), c)
	}
	for i, c := range pl.Consumers {
		try(KindConsumer, fmt.Sprintf("%s %d", KindConsumer, i+1), c)
	}
}

// safeCheck calls the caller's Check; a panic in it (a component constructor) is an error of
// that component.
func safeCheck(check func(string, string, map[string]any, string) ([]UnknownKey, error), kind, typeName string, cfg map[string]any, network string) (unknown []UnknownKey, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("config check panicked: %v", r)
		}
	}()
	return check(kind, typeName, cfg, network)
}

// warn records a warning of pipeline pl at node n: an error under Options.Strict.
func (p *fileParser) warn(pl *Pipeline, n *yaml.Node, format string, args ...any) {
	if p.opts.Strict {
		p.errorf(n, pl.Name, format+" (an error under --strict)", args...)
		return
	}
	pl.Warnings = append(pl.Warnings, &Error{File: p.file, Line: n.Line, Column: n.Column, Pipeline: pl.Name,
		Msg: fmt.Sprintf(format, args...)})
}

// maxKnownListed bounds the known keys a warning lists (nearest first).
const maxKnownListed = 8

func knownList(known []string) string {
	if len(known) == 0 {
		return "none"
	}
	if len(known) > maxKnownListed {
		return strings.Join(known[:maxKnownListed], ", ") + fmt.Sprintf(", and %d more", len(known)-maxKnownListed)
	}
	return strings.Join(known, ", ")
}

// keyNode finds the key node of a dotted config path ("gcs_options.project") in a config
// mapping, following aliases and merge keys; nil when it is not found.
func keyNode(m *yaml.Node, path string) *yaml.Node {
	parts := strings.Split(path, ".")
	for depth := 0; m != nil && depth <= MaxDepth; depth++ {
		for m != nil && m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		var found, val *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if k.Value == parts[0] {
				found, val = k, m.Content[i+1]
				break
			}
			if k.Value == "<<" && found == nil {
				if n := keyNode(m.Content[i+1], parts[0]); n != nil {
					found = n
				}
			}
		}
		if found == nil {
			return nil
		}
		if len(parts) == 1 || val == nil {
			return found
		}
		parts, m = parts[1:], val
	}
	return nil
}

// uniqueNames checks that the components' optional names are unique in the pipeline and do not
// take the name another component has by default (its type): the host prefixes each
// component's stats with its name.
func (p *fileParser) uniqueNames(pl *Pipeline) {
	all := append(append([]Component{pl.Source}, pl.Processors...), pl.Consumers...)
	types := map[string]bool{}
	for _, c := range all {
		if c.Name == "" {
			types[c.Type] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range all {
		switch {
		case c.Name == "":
		case seen[c.Name]:
			p.errs = append(p.errs, &Error{File: p.file, Line: c.Line, Column: c.Column, Pipeline: pl.Name,
				Msg: fmt.Sprintf("component name %q is used twice in the pipeline", c.Name)})
		case types[c.Name]:
			p.errs = append(p.errs, &Error{File: p.file, Line: c.Line, Column: c.Column, Pipeline: pl.Name,
				Msg: fmt.Sprintf("component name %q is the name of another component of the pipeline (its type); choose another", c.Name)})
		}
		seen[c.Name] = true
	}
}
