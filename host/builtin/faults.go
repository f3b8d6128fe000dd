//go:build faultinject

package builtin

import "github.com/withobsrvr/cdpd/test/faults"

// With the build tag faultinject (the reliability suite's cdpd), the fault-injecting
// components FaultInjector and FaultyConsumer are registered too.
func init() { extra = append(extra, faults.Register) }
