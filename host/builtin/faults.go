//go:build faultinject

package builtin

import (
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/faults"
)

// tagged: with the build tag faultinject (the reliability suite's cdpd), the fault-injecting
// components FaultInjector and FaultyConsumer are registered too.
var tagged = []func(*component.Registry) error{faults.Register}
