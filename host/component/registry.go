package component

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-viper/mapstructure/v2"
)

// Constructors are side-effect free: they decode and validate config (see Decode) and open
// nothing; resources are opened in Start (see Starter).
type (
	SourceFactory    func(cfg map[string]any, env Env) (Source, error)
	ProcessorFactory func(cfg map[string]any, env Env) (Processor, error)
	ConsumerFactory  func(cfg map[string]any, env Env) (Consumer, error)
)

// Registry maps CDP type names (and their aliases) to constructors. It is built once, in one
// place (host/builtin), and read-only afterwards.
type Registry struct {
	sources    map[string]SourceFactory
	processors map[string]ProcessorFactory
	consumers  map[string]ConsumerFactory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		sources:    map[string]SourceFactory{},
		processors: map[string]ProcessorFactory{},
		consumers:  map[string]ConsumerFactory{},
	}
}

func register[F any](m map[string]F, kind Kind, f F, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("registering a %s: no type name", kind)
	}
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("registering a %s: empty type name", kind)
		}
		if _, dup := m[n]; dup {
			return fmt.Errorf("registering %s type %q: already registered", kind, n)
		}
	}
	for _, n := range names {
		m[n] = f
	}
	return nil
}

// AddSource registers a source under its type name and aliases. Duplicates are rejected.
func (r *Registry) AddSource(f SourceFactory, names ...string) error {
	return register(r.sources, KindSource, f, names)
}

// AddProcessor registers a processor under its type name and aliases.
func (r *Registry) AddProcessor(f ProcessorFactory, names ...string) error {
	return register(r.processors, KindProcessor, f, names)
}

// AddConsumer registers a consumer under its type name and aliases.
func (r *Registry) AddConsumer(f ConsumerFactory, names ...string) error {
	return register(r.consumers, KindConsumer, f, names)
}

// Known reports whether a type name is registered for a kind ("source", "processor",
// "consumer"); it is the lookup the loader validates against.
func (r *Registry) Known(kind Kind, typeName string) bool {
	switch kind {
	case KindSource:
		_, ok := r.sources[typeName]
		return ok
	case KindProcessor:
		_, ok := r.processors[typeName]
		return ok
	case KindConsumer:
		_, ok := r.consumers[typeName]
		return ok
	}
	return false
}

// Names lists the registered type names of a kind, sorted (for error messages).
func (r *Registry) Names(kind Kind) []string {
	var out []string
	switch kind {
	case KindSource:
		for n := range r.sources {
			out = append(out, n)
		}
	case KindProcessor:
		for n := range r.processors {
			out = append(out, n)
		}
	case KindConsumer:
		for n := range r.consumers {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Check validates one component's config by constructing it with a throwaway environment and
// discarding it (constructors are side-effect free). It is the loader's validation hook:
// an unknown type name is an error listing the known ones. network is the pipeline's network
// (Env.Network).
func (r *Registry) Check(kind Kind, typeName string, cfg map[string]any, network string) error {
	if !r.Known(kind, typeName) {
		return fmt.Errorf("%w: %s %q (known: %s)", ErrUnknownType, kind, typeName, strings.Join(r.Names(kind), ", "))
	}
	env := Env{Pipeline: "check", Name: typeName, Logger: slog.New(slog.DiscardHandler),
		Metrics: prometheus.NewRegistry(), Now: time.Now, Network: network}
	var err error
	switch kind {
	case KindSource:
		_, err = r.NewSource(typeName, cfg, env)
	case KindProcessor:
		_, err = r.NewProcessor(typeName, cfg, env)
	case KindConsumer:
		_, err = r.NewConsumer(typeName, cfg, env)
	}
	return err
}

// ErrUnknownType is returned by the New* methods for an unregistered type name.
var ErrUnknownType = errors.New("unknown component type")

// NewSource constructs a source.
func (r *Registry) NewSource(typeName string, cfg map[string]any, env Env) (Source, error) {
	f, ok := r.sources[typeName]
	if !ok {
		return nil, fmt.Errorf("%w: source %q", ErrUnknownType, typeName)
	}
	return f(cfg, env)
}

// NewProcessor constructs a processor.
func (r *Registry) NewProcessor(typeName string, cfg map[string]any, env Env) (Processor, error) {
	f, ok := r.processors[typeName]
	if !ok {
		return nil, fmt.Errorf("%w: processor %q", ErrUnknownType, typeName)
	}
	return f(cfg, env)
}

// NewConsumer constructs a consumer.
func (r *Registry) NewConsumer(typeName string, cfg map[string]any, env Env) (Consumer, error) {
	f, ok := r.consumers[typeName]
	if !ok {
		return nil, fmt.Errorf("%w: consumer %q", ErrUnknownType, typeName)
	}
	return f(cfg, env)
}

// Decode decodes a component's config map into out (a pointer to a struct with
// `mapstructure:"key"` tags) strictly: unknown keys are errors, and string values are
// converted to numbers, bools and durations ("30s") where the field needs it, because values
// expanded from ${VAR} arrive as strings. A number that does not fit its field (negative into
// an unsigned field, too large for the field's size, a fraction into an integer) is an error.
func Decode(cfg map[string]any, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			numberFits,
		),
	})
	if err != nil {
		return fmt.Errorf("building config decoder: %w", err)
	}
	if err := d.Decode(cfg); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	return nil
}

// numberFits is a decode hook that rejects YAML numbers that do not fit the integer field they
// decode into. mapstructure's weak typing (needed for ${VAR} strings) would otherwise convert
// them silently: `start_ledger: -58752000` wrapped to 4236215296 and 4294967296 truncated to 0
// in a uint32, 1.5 became 1. (Strings are range-checked by mapstructure itself.)
func numberFits(_ reflect.Type, to reflect.Type, data any) (any, error) {
	v := reflect.ValueOf(data)
	if !v.IsValid() {
		return data, nil
	}
	field := reflect.Zero(to)
	var ok = true
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ok = !field.OverflowInt(v.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			ok = v.Uint() <= math.MaxInt64 && !field.OverflowInt(int64(v.Uint()))
		case reflect.Float32, reflect.Float64:
			f := v.Float()
			ok = f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 && !field.OverflowInt(int64(f))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ok = v.Int() >= 0 && !field.OverflowUint(uint64(v.Int()))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			ok = !field.OverflowUint(v.Uint())
		case reflect.Float32, reflect.Float64:
			f := v.Float()
			ok = f == math.Trunc(f) && f >= 0 && f < math.MaxUint64 && !field.OverflowUint(uint64(f))
		}
	}
	if !ok {
		return nil, fmt.Errorf("%v does not fit a %s (%s)", data, to.Kind(), fitsHint(to.Kind()))
	}
	return data, nil
}

func fitsHint(k reflect.Kind) string {
	switch k {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr:
		return "a whole number from 0"
	default:
		return "a whole number"
	}
}
