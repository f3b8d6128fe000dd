package loader

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// countNodes counts the nodes of a parsed document without following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

// spend takes one node from the budget; false once it is exhausted (reported once).
func (p *fileParser) spend(n *yaml.Node) bool {
	if p.over {
		return false
	}
	p.budget--
	if p.budget < 0 {
		p.over = true
		p.errorf(n, "", "file too large after expanding YAML aliases (more than %d extra nodes)", maxAliasNodes)
		return false
	}
	return true
}

// deref follows aliases.
func (p *fileParser) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > MaxDepth || !p.spend(n) {
			return nil
		}
		n = n.Alias
	}
	return n
}

type pair struct {
	key   string
	kn    *yaml.Node
	value *yaml.Node
}

// pairs returns the entries of a mapping in file order, with YAML merge keys (`<<: *x`)
// applied (explicit keys win, then earlier merged maps). Duplicate keys are errors.
func (p *fileParser) pairs(n *yaml.Node, pipeline, where string, depth int) ([]pair, bool) {
	where = shortPath(where)
	if depth > MaxDepth {
		p.errorf(n, pipeline, "%snested deeper than %d levels", where, MaxDepth)
		return nil, false
	}
	var out []pair
	var merged []pair
	index := map[string]*yaml.Node{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := p.deref(n.Content[i])
		vn := n.Content[i+1]
		if kn == nil {
			return nil, false
		}
		if !p.spend(kn) {
			return nil, false
		}
		if kn.Kind != yaml.ScalarNode {
			p.errorf(kn, pipeline, "%smap keys must be plain values", where)
			ok = false
			continue
		}
		if kn.Value == "<<" && kn.ShortTag() == "!!merge" {
			m, mok := p.mergeSources(vn, pipeline, where, depth)
			ok = ok && mok
			merged = append(merged, m...)
			continue
		}
		if prev, dup := index[kn.Value]; dup {
			p.errorf(kn, pipeline, "%skey %q already defined at line %d", where, kn.Value, prev.Line)
			ok = false
			continue
		}
		index[kn.Value] = kn
		out = append(out, pair{kn.Value, kn, vn})
	}
	for _, m := range merged {
		if _, dup := index[m.key]; dup {
			continue
		}
		index[m.key] = m.kn
		out = append(out, m)
	}
	return out, ok
}

func (p *fileParser) mergeSources(vn *yaml.Node, pipeline, where string, depth int) ([]pair, bool) {
	v := p.deref(vn)
	if v == nil {
		return nil, false
	}
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, s := range v.Content {
			s = p.deref(s)
			if s == nil {
				return nil, false
			}
			srcs = append(srcs, s)
		}
	}
	var out []pair
	for _, s := range srcs {
		if s.Kind != yaml.MappingNode {
			p.errorf(vn, pipeline, "%s<< must merge a map or a list of maps", where)
			return nil, false
		}
		ps, ok := p.pairs(s, pipeline, where, depth+1)
		if !ok {
			return nil, false
		}
		out = append(out, ps...)
	}
	return out, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "empty"
		}
		return "a single value"
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// clipName shortens an (invalid) pipeline name longer than 64 bytes for error messages.
func clipName(name string) string {
	const keep = 64
	if len(name) <= keep {
		return name
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", name[:cut], len(name))
}

// vpath names a value inside a component (e.g. "config.buckets[2].name"); built into a string
// only for an error message.
type vpath struct {
	parent *vpath
	key    string // map key, when index < 0
	index  int    // list index
}

func (v *vpath) String() string {
	if v == nil {
		return ""
	}
	if v.index >= 0 {
		return v.parent.String() + "[" + strconv.Itoa(v.index) + "]"
	}
	if v.parent == nil {
		return v.key
	}
	return v.parent.String() + "." + v.key
}

// value turns a YAML node into plain Go values (map[string]any, []any, string, int, uint64,
// float64, bool, nil), expanding ${VAR} in string scalars. path names the value in errors.
func (p *fileParser) value(n *yaml.Node, pipeline string, path *vpath, depth int) (any, bool) {
	if !p.spend(n) {
		return nil, false
	}
	if depth > MaxDepth {
		p.errorf(n, pipeline, "%s: nested deeper than %d levels", shortPath(path.String()), MaxDepth)
		return nil, false
	}
	if n.Anchor != "" && (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) {
		if p.inside == nil {
			p.inside = map[*yaml.Node]bool{}
		}
		p.inside[n] = true
		defer delete(p.inside, n)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, false
		}
		if p.inside[n.Alias] {
			p.errorf(n, pipeline, "%s: alias *%s refers to a value that contains it (a cycle)", shortPath(path.String()), n.Value)
			return nil, false
		}
		return p.value(n.Alias, pipeline, path, depth+1)
	case yaml.ScalarNode:
		return p.scalar(n, pipeline, path)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			v, vok := p.value(item, pipeline, &vpath{parent: path, index: i}, depth+1)
			if p.over {
				return nil, false
			}
			ok = ok && vok
			out = append(out, v)
		}
		return out, ok
	case yaml.MappingNode:
		kvs, ok := p.pairs(n, pipeline, path.String()+": ", depth)
		if !ok {
			return nil, false
		}
		out := make(map[string]any, len(kvs))
		for _, kv := range kvs {
			v, vok := p.value(kv.value, pipeline, &vpath{parent: path, key: kv.key, index: -1}, depth+1)
			if p.over {
				return nil, false
			}
			ok = ok && vok
			out[kv.key] = v
		}
		return out, ok
	}
	p.errorf(n, pipeline, "%s: unsupported YAML node", path)
	return nil, false
}

func (p *fileParser) scalar(n *yaml.Node, pipeline string, path *vpath) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			p.errorf(n, pipeline, "%s: invalid boolean", path)
			return nil, false
		}
		return b, true
	case "!!int":
		var i int
		if err := n.Decode(&i); err == nil {
			return i, true
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return u, true
		}
		p.errorf(n, pipeline, "%s: integer out of range", path)
		return nil, false
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			p.errorf(n, pipeline, "%s: invalid number", path)
			return nil, false
		}
		return f, true
	case "!!timestamp", "!!binary":
		// Kept as written: components parse the text they expect.
		return n.Value, true
	default:
		// !!str and any custom tag: the text, with ${VAR} expanded.
		s, err := expandEnv(n.Value, p.lookup)
		if err != nil {
			p.errorf(n, pipeline, "%s: %v", path, err)
			return nil, false
		}
		return s, true
	}
}

// shortPath keeps the end of a long value path for messages.
func shortPath(path string) string {
	const max = 80
	if len(path) <= max {
		return path
	}
	return "..." + path[len(path)-max:]
}
