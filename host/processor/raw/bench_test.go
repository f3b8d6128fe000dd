package raw

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// benchProcessor runs p on ledger 58752000, wrapping the raw bytes afresh each time so a
// full decode (where the processor needs one) is paid per ledger, as in a pipeline.
func benchProcessor(b *testing.B, p component.Processor) {
	raw := proctest.RealLedgers(b)[0].Raw
	b.ReportAllocs()
	for b.Loop() {
		l, _ := proctest.Wrap(b, raw)
		if _, err := p.Process(proctest.BG, l, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/ledger")
}

var pubnet = map[string]any{"network": "pubnet"}

// BenchmarkLatestLedger runs the LatestLedger processor (view path).
func BenchmarkLatestLedger(b *testing.B) { benchProcessor(b, proctest.New(b, NewLatestLedger, pubnet)) }

// BenchmarkLedgerReader runs LedgerReader (view path).
func BenchmarkLedgerReader(b *testing.B) { benchProcessor(b, proctest.New(b, NewLedgerReader, pubnet)) }

// BenchmarkTransformToAppMetrics runs TransformToAppMetrics (view path).
func BenchmarkTransformToAppMetrics(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewTransformToAppMetrics, pubnet))
}

// BenchmarkPassthrough runs Passthrough with its full XDR (view path).
func BenchmarkPassthrough(b *testing.B) { benchProcessor(b, proctest.New(b, NewPassthrough, pubnet)) }

// BenchmarkLedgerChanges runs LedgerChanges (full decode and the SDK's change reader).
func BenchmarkLedgerChanges(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewLedgerChanges, pubnet))
}

// BenchmarkLedgerToJSON runs LedgerToJSON (full decode and the SDK's transaction reader).
func BenchmarkLedgerToJSON(b *testing.B) { benchProcessor(b, proctest.New(b, NewLedgerToJSON, pubnet)) }

// BenchmarkBronzeExtractors runs BronzeExtractors (full decode, transaction and change readers).
func BenchmarkBronzeExtractors(b *testing.B) {
	benchProcessor(b, proctest.New(b, NewBronzeExtractors, pubnet))
}
