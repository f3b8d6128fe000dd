package component

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Constructors are side-effect free: they decode and validate config and open nothing;
// resources are opened in Start (see Starter).
//
// The catalogue's constructors are typed (SourceSpec, ProcessorSpec, ConsumerSpec): the
// registry decodes a component's YAML config into the constructor's config struct, so that
// every component accepts the same value forms (see Decode), reports unknown keys the same way
// and is listed with its keys and defaults by `cdpd components`. The untyped factories below
// (a constructor that decodes the map itself) are for test and fault-injection components.
type (
	SourceFactory    func(cfg map[string]any, env Env) (Source, error)
	ProcessorFactory func(cfg map[string]any, env Env) (Processor, error)
	ConsumerFactory  func(cfg map[string]any, env Env) (Consumer, error)
)

// Registry maps CDP type names (and their aliases) to component specs. It is built once, in
// one place (host/builtin's table), and read-only afterwards.
type Registry struct {
	specs    map[Kind]map[string]*Spec // type name or alias -> spec
	upstream map[Kind]map[string]bool  // upstream CDP type names (AddUpstream)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{specs: map[Kind]map[string]*Spec{}, upstream: map[Kind]map[string]bool{}}
	for _, k := range Kinds {
		r.specs[k] = map[string]*Spec{}
		r.upstream[k] = map[string]bool{}
	}
	return r
}

// Kinds lists the component kinds in pipeline order.
var Kinds = []Kind{KindSource, KindProcessor, KindConsumer}

// Add registers specs under their type names and aliases. A name registered twice (within a
// kind) is an error.
func (r *Registry) Add(specs ...Spec) error {
	for i := range specs {
		s := specs[i]
		m, ok := r.specs[s.Kind]
		if !ok {
			return fmt.Errorf("registering %q: unknown component kind %q", s.Type, s.Kind)
		}
		if s.build == nil {
			return fmt.Errorf("registering %s %q: no constructor", s.Kind, s.Type)
		}
		names := s.Names()
		for _, n := range names {
			if n == "" {
				return fmt.Errorf("registering a %s: empty type name", s.Kind)
			}
			if _, dup := m[n]; dup {
				return fmt.Errorf("registering %s type %q: already registered", s.Kind, n)
			}
		}
		for _, n := range names {
			m[n] = &s
		}
	}
	return nil
}

// AddUpstream records type names that upstream CDP (withObsrvr/cdp-pipeline-workflow) knows.
// A config naming one that cdpd does not provide gets an error that says so, instead of
// "unknown type"; Coverage reports how many cdpd provides.
func (r *Registry) AddUpstream(kind Kind, names ...string) {
	for _, n := range names {
		r.upstream[kind][n] = true
	}
}

func untyped[T any](kind Kind, f func(map[string]any, Env) (T, error), names []string) Spec {
	s := Spec{Kind: kind, build: func(cfg map[string]any, env Env, _ bool) (any, []UnknownKey, error) {
		v, err := f(cfg, env)
		return v, nil, err
	}}
	if len(names) > 0 {
		s.Type, s.Aliases = names[0], names[1:]
	}
	return s
}

// AddSource registers an untyped source factory under its type name and aliases.
func (r *Registry) AddSource(f SourceFactory, names ...string) error {
	return r.Add(untyped(KindSource, f, names))
}

// AddProcessor registers an untyped processor factory under its type name and aliases.
func (r *Registry) AddProcessor(f ProcessorFactory, names ...string) error {
	return r.Add(untyped(KindProcessor, f, names))
}

// AddConsumer registers an untyped consumer factory under its type name and aliases.
func (r *Registry) AddConsumer(f ConsumerFactory, names ...string) error {
	return r.Add(untyped(KindConsumer, f, names))
}

// Lookup finds the spec of a type name or alias.
func (r *Registry) Lookup(kind Kind, typeName string) (*Spec, bool) {
	s, ok := r.specs[kind][typeName]
	return s, ok
}

// Known reports whether a type name (or alias) is registered for a kind.
func (r *Registry) Known(kind Kind, typeName string) bool {
	_, ok := r.Lookup(kind, typeName)
	return ok
}

// Names lists the registered type names and aliases of a kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	out := make([]string, 0, len(r.specs[kind]))
	for n := range r.specs[kind] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Specs lists every registered spec once (not per alias), by kind in pipeline order, then
// by type name.
func (r *Registry) Specs() []*Spec {
	var out []*Spec
	for _, k := range Kinds {
		var ks []*Spec
		for n, s := range r.specs[k] {
			if n == s.Type {
				ks = append(ks, s)
			}
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i].Type < ks[j].Type })
		out = append(out, ks...)
	}
	return out
}

// Upstream lists the upstream type names of a kind (AddUpstream), sorted, each with whether
// cdpd provides it (under that name or as an alias).
func (r *Registry) Upstream(kind Kind) (names []string, provided map[string]bool) {
	provided = map[string]bool{}
	for n := range r.upstream[kind] {
		names = append(names, n)
		provided[n] = r.Known(kind, n)
	}
	sort.Strings(names)
	return names, provided
}

// ErrUnknownType is returned for a type name that is not registered.
var ErrUnknownType = errors.New("unknown component type")

// unknownType is the error for a type name that is not registered: an upstream-only type says
// so; anything else names the nearest registered types.
func (r *Registry) unknownType(kind Kind, typeName string) error {
	if r.upstream[kind][typeName] {
		return fmt.Errorf("%w: %s %q is an upstream CDP %s type that cdpd does not provide (yet); `cdpd components` lists what it does",
			ErrUnknownType, kind, typeName, kind)
	}
	near := Nearest(typeName, r.Names(kind), 3)
	if len(near) == 0 {
		return fmt.Errorf("%w: %s %q; `cdpd components` lists the known types", ErrUnknownType, kind, typeName)
	}
	return fmt.Errorf("%w: %s %q (did you mean %s?); `cdpd components` lists the known types",
		ErrUnknownType, kind, typeName, strings.Join(near, ", "))
}

// Check validates one component's config by constructing it with a throwaway environment and
// discarding it (constructors are side-effect free). It is the loader's validation hook: an
// unknown type name is an error naming the nearest known ones; keys the component does not
// know are returned (upstream CDP ignores them, so existing files carry them), not errors.
// network is the pipeline's network (Env.Network).
func (r *Registry) Check(kind Kind, typeName string, cfg map[string]any, network string) ([]UnknownKey, error) {
	s, ok := r.Lookup(kind, typeName)
	if !ok {
		return nil, r.unknownType(kind, typeName)
	}
	env := Env{Pipeline: "check", Name: typeName, Logger: slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(), Now: time.Now, Network: network}
	_, unknown, err := s.build(cfg, env, true)
	return unknown, err
}

func (r *Registry) construct(kind Kind, typeName string, cfg map[string]any, env Env) (any, error) {
	s, ok := r.Lookup(kind, typeName)
	if !ok {
		return nil, r.unknownType(kind, typeName)
	}
	v, _, err := s.build(cfg, env, true)
	return v, err
}

// NewSource constructs a source (unknown config keys are ignored here: Check reports them).
func (r *Registry) NewSource(typeName string, cfg map[string]any, env Env) (Source, error) {
	return as[Source](r.construct(KindSource, typeName, cfg, env))
}

// NewProcessor constructs a processor.
func (r *Registry) NewProcessor(typeName string, cfg map[string]any, env Env) (Processor, error) {
	return as[Processor](r.construct(KindProcessor, typeName, cfg, env))
}

// NewConsumer constructs a consumer.
func (r *Registry) NewConsumer(typeName string, cfg map[string]any, env Env) (Consumer, error) {
	return as[Consumer](r.construct(KindConsumer, typeName, cfg, env))
}

func as[T any](v any, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("constructor returned %T, not a %T", v, zero)
	}
	return t, nil
}
