package loader

import (
	"fmt"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The shapes of a pipeline file: `pipelines:` (a map of name to pipeline), `pipeline:` (one
// pipeline with a name: key) and the flat shape (one pipeline whose source, processors and
// consumers are the file's top-level keys).

// documentEntries finds the pipeline definitions of one YAML document.
func (p *fileParser) documentEntries(doc *yaml.Node) []entry {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := p.deref(doc.Content[0])
	if root == nil {
		return nil
	}
	if isNull(root) {
		return nil // an empty document defines nothing
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "the file must be a map with a pipeline: or pipelines: key, not %s", kindName(root))
		return nil
	}
	top, ok := p.pairs(root, "", "", 1)
	if !ok {
		return nil
	}
	if e, isFlat := p.flatEntry(root, top); isFlat {
		if e == nil {
			return nil
		}
		return []entry{*e}
	}
	var out []entry
	found := false
	before := len(p.errs)
	for _, kv := range top {
		switch kv.key {
		case "pipeline":
			found = true
			v := p.deref(kv.value)
			if v == nil {
				return nil
			}
			if v.Kind != yaml.MappingNode {
				p.errorf(kv.kn, "", "pipeline: must be a map with name, source, processors and consumers, not %s", kindName(v))
				continue
			}
			e := entry{key: kv.kn, body: v, single: true}
			e.name, e.nameErr = p.singleName(kv.kn, v)
			out = append(out, e)
		case "pipelines":
			found = true
			v := p.deref(kv.value)
			if v == nil {
				return nil
			}
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				p.errorf(kv.kn, "", "pipelines: must be a map of pipeline name to pipeline, not %s", kindName(v))
				continue
			}
			ps, ok := p.pairs(v, "", "pipelines: ", 2)
			if !ok {
				continue
			}
			for _, pp := range ps {
				body := p.deref(pp.value)
				if body == nil {
					return nil
				}
				out = append(out, entry{name: pp.key, key: pp.kn, body: body})
			}
		default:
			if strings.HasPrefix(kv.key, "x-") {
				continue // an extension key, e.g. `x-defaults: &defaults {...}` for anchors
			}
			p.errorf(kv.kn, "", "unknown top-level key %q (want pipeline, pipelines, or source/processors/consumers of a flat file; x-... keys are free for YAML anchors)", kv.key)
		}
	}
	if !found && len(p.errs) == before {
		p.errorf(root, "", "the file defines no pipeline (want a pipeline: or pipelines: key)")
	}
	return out
}

// flatEntry recognises the flat shape: a document whose top level holds source, processors or
// consumers instead of pipeline: or pipelines:. Its name is its `name:`, else the file's name
// without the extension. isFlat with a nil entry: the document mixes both shapes (reported).
func (p *fileParser) flatEntry(root *yaml.Node, top []pair) (e *entry, isFlat bool) {
	var wrapped, flat *yaml.Node
	for _, kv := range top {
		switch {
		case kv.key == "pipeline" || kv.key == "pipelines":
			wrapped = kv.kn
		case kv.key == "source" || kv.key == "processors" || kv.key == "consumers":
			if flat == nil {
				flat = kv.kn
			}
		}
	}
	if flat == nil {
		return nil, false
	}
	if wrapped != nil {
		p.errorf(flat, "", "top-level %s next to %s: (a file is either flat, with source, processors and consumers at the top, or holds pipeline: / pipelines:)",
			flat.Value, wrapped.Value)
		return nil, true
	}
	e = &entry{key: root, body: root, single: true, flat: true}
	e.name, e.nameErr = p.singleName(root, root)
	if e.nameErr != nil && !hasKey(root, "name") {
		base := filepath.Base(p.file)
		e.name, e.nameErr = strings.TrimSuffix(base, filepath.Ext(base)), nil
	}
	return e, true
}

// hasKey reports whether mapping n has the key k (not following merges).
func hasKey(n *yaml.Node, k string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == k {
			return true
		}
	}
	return false
}

// singleName reads the `name:` of the `pipeline:` shape. Without a usable name it returns an
// error, not yet recorded: NameOverride may still supply the name.
func (p *fileParser) singleName(at *yaml.Node, body *yaml.Node) (string, *Error) {
	pending := func(n *yaml.Node, format string, args ...any) *Error {
		return &Error{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k := body.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value == "name" {
			v := p.deref(body.Content[i+1])
			if v == nil {
				return "", pending(k, "pipeline: name: invalid alias")
			}
			if v.Kind != yaml.ScalarNode || isNull(v) {
				return "", pending(k, "pipeline: name must be a single value, not %s", kindName(v))
			}
			s, err := expandEnv(v.Value, p.lookup)
			if err != nil {
				return "", pending(v, "pipeline: name: %v", err)
			}
			return s, nil
		}
	}
	return "", pending(at, "pipeline: name is required")
}
