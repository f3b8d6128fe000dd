//go:build !faultinject

package builtin

import "github.com/withobsrvr/cdpd/host/component"

// tagged is empty without the faultinject build tag (see faults.go).
var tagged []func(*component.Registry) error
