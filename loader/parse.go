package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Limits that keep hostile or broken files from hurting the daemon: each gives an *Error.
const (
	// MaxFileSize is the largest pipeline file read (1 MiB).
	MaxFileSize = 1 << 20
	// MaxDepth is the deepest nesting of maps and lists allowed inside a pipeline file.
	MaxDepth = 64
	// maxAliasNodes is how many nodes alias expansion may add to a file beyond the nodes it
	// holds (a "billion laughs" file stops here with an error).
	maxAliasNodes = 100_000
)

// Options configure ParseFile, Load and NewWatcher.
type Options struct {
	// Dir is the config directory (Load, NewWatcher).
	Dir string
	// Check validates one component: kind is "source", "processor" or "consumer"; network is
	// the pipeline's network (see Pipeline.Network), which processors that name none follow.
	// It returns an error for an unknown type or a bad config, and the config keys the
	// component does not know (the daemon passes component.Registry.Check). nil = accept
	// everything. It must not modify config.
	Check func(kind, typeName string, config map[string]any, network string) ([]UnknownKey, error)
	// Strict turns warnings (unknown config keys, a pipeline without consumers) into errors:
	// `cdpd validate --strict` and `cdpd --strict`, for config repositories' CI.
	Strict bool
	// LookupEnv resolves ${VAR} references; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// NameOverride (CDP_PIPELINE_NAME) renames the pipeline of a file that defines exactly one;
	// files that define several keep their names.
	NameOverride string
	// Debounce is how long the watcher waits after the last event of a burst before it
	// rescans (default 100ms). A burst that keeps going is cut after 10 × Debounce.
	Debounce time.Duration
	// Logger receives one line per pipeline event and per new config error (default
	// slog.Default()). Config values are never logged.
	Logger *slog.Logger
}

func (o Options) lookupEnv() func(string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv
	}
	return os.LookupEnv
}

func (o Options) debounce() time.Duration {
	if o.Debounce > 0 {
		return o.Debounce
	}
	return 100 * time.Millisecond
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Component kinds passed to Options.Check.
const (
	KindSource    = "source"
	KindProcessor = "processor"
	KindConsumer  = "consumer"
)

// NamePattern is what a pipeline name must match: it becomes part of the flowctl service id,
// metric labels and file names under the state dir.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// componentNameRE is what a component's optional `name:` must match: it becomes part of metric
// names and health details.
var componentNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of go.yaml.in/yaml/v3's parser (as opposed to its
// scanner) errors.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// ParseFile parses one file's content: every valid pipeline it defines, and an *Error for
// each problem. A pipeline with an error is not returned; the others of the file are. An
// error that concerns the whole file (size, YAML syntax, top-level shape) returns no pipeline.
// path is used in the messages only.
func ParseFile(path string, data []byte, opts Options) (pipelines []*Pipeline, errs []*Error) {
	if len(data) > MaxFileSize {
		return nil, []*Error{{File: path, Msg: fmt.Sprintf("file is %d bytes; the limit is %d", len(data), MaxFileSize)}}
	}
	defer func() {
		// The YAML library is fuzzed upstream and here; a panic is still a bug, but it must
		// not take the daemon down: report it as an error of this file.
		if r := recover(); r != nil {
			pipelines = nil
			errs = []*Error{{File: path, Msg: fmt.Sprintf("internal error parsing the file: %v", r)}}
		}
	}()
	lookup := opts.lookupEnv()
	expanded := map[string]string{} // variable name -> the value it expanded to
	p := &fileParser{file: path, opts: opts, lookup: func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok {
			expanded[name] = v
		}
		return v, ok
	}}
	pipelines, errs = p.parse(data)
	redactErrors(errs, expanded)
	return pipelines, errs
}

// minRedactLen is the shortest expanded value redactErrors hides: shorter ones ("1", "on")
// would mangle messages and are no secrets.
const minRedactLen = 4

// redactErrors replaces, in every error's text, each value a ${VAR} expanded to with
// "${VAR}". Values from the environment are often secrets (passwords, keys) and a component's
// validation error may quote the value it rejected (`unknown network "..."`); these errors are
// logged, served by the API and sent in heartbeats. The cause stays reachable for errors.Is /
// errors.As, behind a wrapper whose text is redacted too.
func redactErrors(errs []*Error, expanded map[string]string) {
	var pairs []string
	names := make([]string, 0, len(expanded))
	for n := range expanded {
		names = append(names, n)
	}
	// longest values first, so that a value containing another is replaced whole
	sort.Slice(names, func(i, j int) bool { return len(expanded[names[i]]) > len(expanded[names[j]]) })
	for _, n := range names {
		if v := expanded[n]; len(v) >= minRedactLen {
			pairs = append(pairs, v, "${"+n+"}")
		}
	}
	if len(pairs) == 0 {
		return
	}
	r := strings.NewReplacer(pairs...)
	for _, e := range errs {
		e.Msg = r.Replace(e.Msg)
		if e.Err != nil {
			e.Err = &redactedError{msg: r.Replace(e.Err.Error()), err: e.Err}
		}
	}
}

// redactedError is a cause whose text had expanded values replaced (see redactErrors).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

type fileParser struct {
	file   string
	opts   Options
	lookup func(string) (string, bool)
	errs   []*Error
	budget int  // nodes the walk may still visit
	over   bool // budget exhausted: the whole file is rejected
	// inside holds the anchored collections value is walking, so that an alias to one of
	// them (`x: &a [1, *a]`, a cycle) is reported once as such instead of as one "nested
	// too deep" error per item at the depth limit.
	inside map[*yaml.Node]bool
	// configs are the config mappings of the components read, by the component's line and
	// column: where check finds the keys a component does not know.
	configs map[[2]int]*yaml.Node
}

// entry is one pipeline definition found in a document, before it is parsed.
type entry struct {
	name    string
	key     *yaml.Node // position of the definition
	body    *yaml.Node // the mapping of the pipeline
	single  bool       // from the `pipeline:` shape (name given by a `name:` key)
	flat    bool       // the flat shape: source, processors, consumers at the top level
	nameErr *Error     // no usable name: reported unless NameOverride supplies one
}

func (p *fileParser) errorf(n *yaml.Node, pipeline, format string, args ...any) *Error {
	e := &Error{File: p.file, Pipeline: pipeline, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
	return e
}

func (p *fileParser) parse(data []byte) ([]*Pipeline, []*Error) {
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, []*Error{p.yamlError(err)}
		}
		docs = append(docs, &doc)
	}
	size := 0
	for _, d := range docs {
		size += countNodes(d)
	}
	p.budget = size + maxAliasNodes

	var entries []entry
	for _, doc := range docs {
		entries = append(entries, p.documentEntries(doc)...)
	}
	if p.over || hasFileErrors(p.errs) {
		return nil, p.errs
	}
	if p.opts.NameOverride != "" && len(entries) == 1 {
		entries[0].name = p.opts.NameOverride
		entries[0].nameErr = nil
	}
	seen := map[string]*yaml.Node{}
	var out []*Pipeline
	for _, e := range entries {
		if e.nameErr != nil {
			p.errs = append(p.errs, e.nameErr)
			continue
		}
		if prev, dup := seen[e.name]; dup {
			p.errorf(e.key, e.name, "pipeline defined twice in this file (first at line %d)", prev.Line)
			continue
		}
		seen[e.name] = e.key
		if pl := p.pipeline(e); pl != nil {
			out = append(out, pl)
		}
		if p.over {
			return nil, p.errs
		}
	}
	return out, p.errs
}

// hasFileErrors reports whether any error so far is not about one pipeline.
func hasFileErrors(errs []*Error) bool {
	for _, e := range errs {
		if e.Pipeline == "" {
			return true
		}
	}
	return false
}

func (p *fileParser) yamlError(err error) *Error {
	msg := err.Error()
	e := &Error{File: p.file, Err: err}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserProblems[msg] {
			// The YAML library prints a parser error's line 0-based (scanner errors are
			// 1-based); it is the line where the unfinished block or bracket starts.
			e.Line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if yamlParserProblems[msg] {
			e.Line = 1 // the library omits line 0, which is the first line
		}
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

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

// pipeline parses and validates one definition; nil when it has errors (recorded).
func (p *fileParser) pipeline(e entry) *Pipeline {
	before := len(p.errs)
	name := e.name
	if !NamePattern.MatchString(name) {
		// Every error of this definition names it: shown clipped, or a hostile file (a name
		// of up to 1 MiB) would put it twice into each error, log line and API answer.
		name = clipName(name)
		p.errorf(e.key, name, "invalid pipeline name %q: use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	pl := &Pipeline{Name: name, File: p.file, Line: e.key.Line, Column: e.key.Column, Restart: RestartOnFailure}
	if e.body.Kind != yaml.MappingNode {
		p.errorf(e.key, name, "a pipeline must be a map with source, processors and consumers, not %s", kindName(e.body))
		return nil
	}
	kvs, ok := p.pairs(e.body, name, "", 2)
	if !ok {
		return nil
	}
	var haveSource bool
	var consumersAt *yaml.Node
	for _, kv := range kvs {
		v := p.deref(kv.value)
		if v == nil {
			return nil
		}
		switch kv.key {
		case "name":
			if !e.single {
				p.errorf(kv.kn, name, "unknown key \"name\": under pipelines: the key above gives the name")
			}
		case "pipeline", "pipelines":
			if !e.flat {
				p.errorf(kv.kn, name, "unknown key %q (want source, processors, consumers, restart or description)", kv.key)
			}
		case "source":
			haveSource = true
			if c, ok := p.component(name, KindSource, "source", kv.kn, v); ok {
				pl.Source = c
			}
		case "processors":
			pl.Processors = p.components(name, KindProcessor, kv.kn, v)
		case "consumers":
			consumersAt = kv.kn
			pl.Consumers = p.components(name, KindConsumer, kv.kn, v)
		case "restart":
			s, ok := p.stringValue(name, "restart: ", v)
			if !ok {
				break
			}
			switch s {
			case RestartAlways, RestartOnFailure, RestartNever:
				pl.Restart = s
			default:
				p.errorf(v, name, "restart must be one of %s, %s or %s", RestartAlways, RestartOnFailure, RestartNever)
			}
		case "description":
			if isNull(v) {
				break
			}
			if s, ok := p.stringValue(name, "description: ", v); ok {
				pl.Description = s
			}
		default:
			if e.flat && strings.HasPrefix(kv.key, "x-") {
				break // an extension key of a flat file, free for YAML anchors
			}
			p.errorf(kv.kn, name, "unknown key %q (want source, processors, consumers, restart or description)", kv.key)
		}
		if p.over {
			return nil
		}
	}
	if !haveSource {
		p.errorf(e.key, name, "source is required")
	}
	if len(p.errs) > before {
		return nil
	}
	p.uniqueNames(pl)
	if len(p.errs) > before {
		return nil
	}
	if len(pl.Consumers) == 0 {
		at := consumersAt
		if at == nil {
			at = e.key
		}
		p.warn(pl, at, "no consumers: the pipeline runs and counts its records (events_out of its last processor), then drops them; its checkpoint follows the ledgers processed")
	}
	if p.check(pl); len(p.errs) > before {
		return nil
	}
	pl.Hash = hashPipeline(pl)
	return pl
}

// stringValue expands a scalar that must be a single value.
func (p *fileParser) stringValue(pipeline, where string, v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		p.errorf(v, pipeline, "%smust be a single value, not %s", where, kindName(v))
		return "", false
	}
	s, err := expandEnv(v.Value, p.lookup)
	if err != nil {
		p.errorf(v, pipeline, "%s%v", where, err)
		return "", false
	}
	return s, true
}

func (p *fileParser) components(pipeline, kind string, at, v *yaml.Node) []Component {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(at, pipeline, "%ss must be a list of {type, config}, not %s", kind, kindName(v))
		return nil
	}
	var out []Component
	for i, item := range v.Content {
		n := p.deref(item)
		if n == nil {
			return nil
		}
		label := fmt.Sprintf("%s %d", kind, i+1)
		if c, ok := p.component(pipeline, kind, label, item, n); ok {
			out = append(out, c)
		}
	}
	return out
}

// component parses one {type, config} entry. at is where the entry starts in the file.
func (p *fileParser) component(pipeline, kind, label string, at, n *yaml.Node) (Component, bool) {
	c := Component{Line: at.Line, Column: at.Column}
	if n.Kind != yaml.MappingNode {
		p.errorf(at, pipeline, "%s must be a map with type and config, not %s", label, kindName(n))
		return c, false
	}
	kvs, ok := p.pairs(n, pipeline, label+": ", 3)
	if !ok {
		return c, false
	}
	before := len(p.errs)
	var typeNode *yaml.Node
	for _, kv := range kvs {
		switch kv.key {
		case "type":
			v := p.deref(kv.value)
			if v == nil {
				return c, false
			}
			typeNode = kv.kn
			if s, ok := p.stringValue(pipeline, label+": type ", v); ok {
				c.Type = s
			}
		case "config":
			v := p.deref(kv.value)
			if v == nil {
				return c, false
			}
			switch {
			case isNull(v):
			case v.Kind != yaml.MappingNode:
				p.errorf(v, pipeline, "%s: config must be a map, not %s", label, kindName(v))
			default:
				m, ok := p.value(v, pipeline, &vpath{key: label + ": config", index: -1}, 4)
				if ok {
					c.Config = m.(map[string]any)
					if p.configs == nil {
						p.configs = map[[2]int]*yaml.Node{}
					}
					p.configs[[2]int{c.Line, c.Column}] = v
				}
			}
		case "name":
			v := p.deref(kv.value)
			if v == nil {
				return c, false
			}
			if s, ok := p.stringValue(pipeline, label+": name ", v); ok {
				if !componentNameRE.MatchString(s) {
					p.errorf(v, pipeline, "%s: name %q: use 1 to 63 letters, digits, '-' or '_'", label, clipName(s))
				}
				c.Name = s
			}
		default:
			p.errorf(kv.kn, pipeline, "%s: unknown key %q (want type, config and an optional name)", label, kv.key)
		}
		if p.over {
			return c, false
		}
	}
	if typeNode == nil {
		p.errorf(at, pipeline, "%s: type is required", label)
	} else if c.Type == "" && len(p.errs) == before {
		p.errorf(typeNode, pipeline, "%s: type must not be empty", label)
	}
	if len(p.errs) > before {
		return c, false
	}
	if c.Config == nil {
		c.Config = map[string]any{}
	}
	return c, true
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

// sortErrors orders errors by file, line, column, then message.
func sortErrors(errs []*Error) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if a.Column != b.Column {
			return a.Column - b.Column
		}
		return strings.Compare(a.Error(), b.Error())
	})
}
