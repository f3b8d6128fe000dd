package component

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Spec is one row of the component table (host/builtin): a component type under its CDP type
// name, its aliases, a one-line description, and its constructor with the config struct it
// decodes. Make one with SourceSpec, ProcessorSpec or ConsumerSpec.
type Spec struct {
	Kind    Kind
	Type    string   // CDP type name
	Aliases []string // other names upstream CDP files use for the same component
	Doc     string   // one line: what it does (`cdpd components`)

	config reflect.Type // the config struct (nil for untyped factories)
	// build constructs the component from a YAML config map. lenient: keys the config struct
	// does not know are returned instead of failing the decode.
	build func(cfg map[string]any, env Env, lenient bool) (any, []UnknownKey, error)
}

// Names is the type name followed by the aliases.
func (s *Spec) Names() []string { return append([]string{s.Type}, s.Aliases...) }

// Defaulter is implemented by config structs that have defaults: SetDefaults fills them in
// before the YAML values are decoded over them, so a constructor sees them and `cdpd
// components` lists them. Defaults that depend on other values (e.g. on the datastore's
// manifest) stay in the constructor and its doc.
type Defaulter interface{ SetDefaults() }

// SourceSpec is the spec of a source whose constructor takes its decoded config struct C.
func SourceSpec[C any](typeName, doc string, ctor func(c *C, env Env) (Source, error), aliases ...string) Spec {
	return typedSpec(KindSource, typeName, doc, ctor, aliases)
}

// ProcessorSpec is the spec of a processor whose constructor takes its decoded config C.
func ProcessorSpec[C any](typeName, doc string, ctor func(c *C, env Env) (Processor, error), aliases ...string) Spec {
	return typedSpec(KindProcessor, typeName, doc, ctor, aliases)
}

// ConsumerSpec is the spec of a consumer whose constructor takes its decoded config C.
func ConsumerSpec[C any](typeName, doc string, ctor func(c *C, env Env) (Consumer, error), aliases ...string) Spec {
	return typedSpec(KindConsumer, typeName, doc, ctor, aliases)
}

func typedSpec[C, T any](kind Kind, typeName, doc string, ctor func(*C, Env) (T, error), aliases []string) Spec {
	t := reflect.TypeFor[C]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("component %s: config type %s is not a struct", typeName, t))
	}
	return Spec{Kind: kind, Type: typeName, Aliases: aliases, Doc: doc, config: t,
		build: func(cfg map[string]any, env Env, lenient bool) (any, []UnknownKey, error) {
			c, unknown, err := decodeConfig[C](cfg, lenient)
			if err != nil {
				return nil, nil, err
			}
			v, err := ctor(c, env)
			return v, unknown, err
		}}
}

// decodeConfig makes a C with its defaults and decodes cfg over it.
func decodeConfig[C any](cfg map[string]any, lenient bool) (*C, []UnknownKey, error) {
	c := new(C)
	if d, ok := any(c).(Defaulter); ok {
		d.SetDefaults()
	}
	unused, err := decode(cfg, c, !lenient)
	if err != nil {
		return nil, nil, err
	}
	return c, append(unknownKeys(reflect.TypeFor[C](), unused), ignoredKeys(reflect.TypeFor[C](), cfg)...), nil
}

// ignoredKeys are the keys of cfg whose fields say they have no effect (`cdpd:"ignored: why"`).
func ignoredKeys(t reflect.Type, cfg map[string]any) []UnknownKey {
	var out []UnknownKey
	for _, k := range keysOf(reflect.New(t).Elem()) {
		if _, set := cfg[k.Name]; set && k.Ignored != "" {
			out = append(out, UnknownKey{Key: k.Name, Ignored: k.Ignored})
		}
	}
	return out
}

// Construct decodes cfg strictly (an unknown key is an error) into ctor's config struct and
// calls ctor: how tests build one component from a config map without a registry.
func Construct[C, T any](ctor func(*C, Env) (T, error), cfg map[string]any, env Env) (T, error) {
	c, _, err := decodeConfig[C](cfg, false)
	if err != nil {
		var zero T
		return zero, err
	}
	return ctor(c, env)
}

// UnknownKey is a config key a component does not act on: Key is its path in the config
// ("buffer_size", "gcs_options.project"). Either the component does not know it (Known lists
// the keys it does know at that level, nearest to Key first), or it accepts it for upstream
// compatibility without any effect (Ignored says why: the field's `cdpd:"ignored: why"` tag).
type UnknownKey struct {
	Key     string
	Known   []string
	Ignored string
}

// unknownKeys turns mapstructure's unused keys into UnknownKeys, sorted by key.
func unknownKeys(t reflect.Type, unused []string) []UnknownKey {
	if len(unused) == 0 {
		return nil
	}
	slices.Sort(unused)
	out := make([]UnknownKey, 0, len(unused))
	for _, u := range unused {
		parent, leaf := "", u
		if i := strings.LastIndexByte(u, '.'); i >= 0 {
			parent, leaf = u[:i], u[i+1:]
		}
		var known []string
		for _, k := range keysAt(t, parent) {
			known = append(known, k.Name)
		}
		out = append(out, UnknownKey{Key: u, Known: Nearest(leaf, known, len(known))})
	}
	return out
}

// Key is one config key of a component, as `cdpd components` lists it.
type Key struct {
	Name    string `json:"name"`
	Type    string `json:"type"`              // string, integer, number, boolean, duration, list, map, any
	Default string `json:"default,omitempty"` // set by the config's SetDefaults; "" when none
	Keys    []Key  `json:"keys,omitempty"`    // the keys of a nested map with a fixed shape
	// Ignored: accepted for upstream compatibility, with no effect here (why).
	Ignored string `json:"ignored,omitempty"`
}

// Keys lists the config keys of the spec's component with their types and defaults (nil for
// an untyped factory).
func (s *Spec) Keys() []Key {
	if s.config == nil {
		return nil
	}
	def := reflect.New(s.config)
	if d, ok := def.Interface().(Defaulter); ok {
		d.SetDefaults()
	}
	return keysOf(def.Elem())
}

// Typed reports whether the spec knows its config keys (false for untyped factories).
func (s *Spec) Typed() bool { return s.config != nil }

// keysAt lists the keys of the struct reached through the dotted path (zero values).
func keysAt(t reflect.Type, path string) []Key {
	keys := keysOf(reflect.New(t).Elem())
	if path == "" {
		return keys
	}
	for _, part := range strings.Split(path, ".") {
		var next []Key
		for _, k := range keys {
			if k.Name == part {
				next = k.Keys
			}
		}
		keys = next
	}
	return keys
}

// keysOf reads the mapstructure keys of a struct value (embedded `,squash` structs inline).
func keysOf(v reflect.Value) []Key {
	var out []Key
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		fv := v.Field(i)
		if strings.Contains(opts, "squash") || (f.Anonymous && name == "") {
			if fv.Kind() == reflect.Struct { // embedded (exported or not): its keys inline
				out = append(out, keysOf(fv)...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		k := Key{Name: name, Type: typeName(f.Type)}
		if why, ok := strings.CutPrefix(f.Tag.Get("cdpd"), "ignored"); ok {
			k.Ignored = strings.TrimSpace(strings.TrimPrefix(why, ":"))
			if k.Ignored == "" {
				k.Ignored = "accepted for upstream compatibility"
			}
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			k.Keys = keysOf(reflect.New(ft).Elem())
			if !fv.IsZero() {
				k.Keys = keysOf(reflect.Indirect(fv))
			}
		} else if !fv.IsZero() {
			k.Default = defaultText(fv)
		}
		out = append(out, k)
	}
	return out
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "time" && t.Name() == "Duration" {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "map"
	}
	return "any"
}

// defaultText formats a default value. It never calls Interface, which panics on values read
// through an unexported embedded struct.
func defaultText(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = fmt.Sprint(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}
