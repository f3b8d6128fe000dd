package proctest

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// Bench runs p on raw (with the records in of the processor before it) once per iteration and
// reports ns/ledger: on a fresh ledger value each time (the full decode, if p needs one,
// included), or with decoded on one ledger decoded beforehand (p's own cost in a chain whose
// decode is shared).
func Bench(b *testing.B, p component.Processor, raw []byte, in []component.Record, decoded bool) {
	b.Helper()
	shared := Shared(b, raw)
	if _, err := shared.Decoded(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l := shared
		if !decoded {
			l, _ = Wrap(b, raw)
		}
		if _, err := p.Process(BG, l, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}
