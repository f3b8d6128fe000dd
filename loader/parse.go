package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/withobsrvr/cdpd/internal/redact"
)

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
	p := &fileParser{file: path, opts: opts}
	p.lookup = func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok {
			expanded[name] = v
			if p.cur != nil {
				p.cur[name] = v
			}
		}
		return v, ok
	}
	pipelines, errs = p.parse(data)
	redactErrors(errs, expanded)
	return pipelines, errs
}

// redactErrors replaces, in every error's text, each value a ${VAR} expanded to with
// "${VAR}" (internal/redact: values under 4 bytes are kept, numbers only where they stand
// alone). Values from the environment are often secrets (passwords, keys) and a component's
// validation error may quote the value it rejected (`unknown network "..."`); these errors are
// logged, served by the API and sent in heartbeats. The cause stays reachable for errors.Is /
// errors.As, behind a wrapper whose text is redacted too.
func redactErrors(errs []*Error, expanded map[string]string) {
	r := redact.New(Expanded(expanded).Secrets()...)
	if r.Empty() {
		return
	}
	for _, e := range errs {
		e.Msg = r.String(e.Msg)
		e.Err = r.Error(e.Err)
	}
}

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
	// cur collects what ${VAR} references expand to while one pipeline is parsed
	// (Pipeline.Expanded).
	cur map[string]string
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
	p.cur = map[string]string{}
	defer func() {
		if len(p.cur) > 0 {
			pl.Expanded = Expanded(p.cur)
		}
		p.cur = nil
	}()
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
