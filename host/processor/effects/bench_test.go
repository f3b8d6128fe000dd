package effects

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkStellarEffects runs StellarEffects on ledger 58752000, the full decode included
// (a fresh ledger value each time).
func BenchmarkStellarEffects(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewStellarEffects, map[string]any{"network": "pubnet"})
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		if _, err := p.Process(proctest.BG, l, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

// BenchmarkStellarEffectsDecoded runs StellarEffects on an already decoded ledger: its own cost
// in a chain whose decode is shared.
func BenchmarkStellarEffectsDecoded(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewStellarEffects, map[string]any{"network": "pubnet"})
	l := proctest.Shared(b, raw)
	if _, err := l.Decoded(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Process(proctest.BG, l, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
