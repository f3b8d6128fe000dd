// Package builtin owns the one place where cdpd's component registry is built: the table of
// every source, processor and consumer type the daemon (and the loader's validation) knows
// (table.go), the upstream CDP type names it is measured against (upstream.go), and the
// components compiled in under a build tag (the fault injectors of the reliability suite).
package builtin

import (
	"fmt"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/loader"
)

// Register adds every built-in component, and the upstream type names, to r.
func Register(r *component.Registry) error {
	if err := r.Add(Table()...); err != nil {
		return fmt.Errorf("registering the built-in components: %w", err)
	}
	for _, f := range tagged {
		if err := f(r); err != nil {
			return fmt.Errorf("registering the build-tagged components: %w", err)
		}
	}
	for kind, names := range upstreamTypes {
		r.AddUpstream(kind, names...)
	}
	return nil
}

// Registry returns a new registry holding every built-in component.
func Registry() (*component.Registry, error) {
	r := component.NewRegistry()
	if err := Register(r); err != nil {
		return nil, err
	}
	return r, nil
}

// LoaderCheck adapts r.Check to the loader's validation hook (loader.Options.Check), which
// knows nothing of the component package.
func LoaderCheck(r *component.Registry) func(kind, typeName string, cfg map[string]any, network string) ([]loader.UnknownKey, error) {
	return func(kind, typeName string, cfg map[string]any, network string) ([]loader.UnknownKey, error) {
		unknown, err := r.Check(component.Kind(kind), typeName, cfg, network)
		out := make([]loader.UnknownKey, len(unknown))
		for i, u := range unknown {
			out[i] = loader.UnknownKey{Key: u.Key, Known: u.Known, Ignored: u.Ignored}
		}
		return out, err
	}
}
