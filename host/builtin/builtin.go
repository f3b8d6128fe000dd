// Package builtin owns the one place where cdpd's component registry is built: every source,
// processor and consumer type name the daemon (and the loader's validation) knows, from
// host/source, host/processor and host/consumer.
package builtin

import (
	"fmt"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/source"
)

// extra holds registration hooks of components compiled in only under a build tag (faults.go,
// tag faultinject, adds the test/faults components for the reliability suite).
var extra []func(*component.Registry) error

// Register adds every built-in component to r.
func Register(r *component.Registry) error {
	if err := source.Register(r); err != nil {
		return fmt.Errorf("registering the built-in sources: %w", err)
	}
	if err := processor.Register(r); err != nil {
		return fmt.Errorf("registering the built-in processors: %w", err)
	}
	if err := consumer.Register(r); err != nil {
		return fmt.Errorf("registering the built-in consumers: %w", err)
	}
	for _, f := range extra {
		if err := f(r); err != nil {
			return fmt.Errorf("registering the build-tagged components: %w", err)
		}
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
