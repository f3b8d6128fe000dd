package raw

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// BenchmarkLatestLedger runs the LatestLedger processor (view path) on ledger 58752000.
func BenchmarkLatestLedger(b *testing.B) {
	raw := proctest.RealLedgers(b)[0].Raw
	p := proctest.New(b, NewLatestLedger, map[string]any{"network": "pubnet"})
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		if _, err := p.Process(proctest.BG, l, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
