package effects

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkStellarEffects runs StellarEffects on ledger 58752000, the full decode included.
func BenchmarkStellarEffects(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewStellarEffects, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkStellarEffectsDecoded runs StellarEffects on an already decoded ledger: its own cost
// in a chain whose decode is shared.
func BenchmarkStellarEffectsDecoded(b *testing.B) {
	proctest.Bench(b, proctest.New(b, NewStellarEffects, map[string]any{"network": "pubnet"}), proctest.RealLedgers(b)[0].Raw, nil, true)
}
