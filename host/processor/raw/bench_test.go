package raw

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

var pubnet = map[string]any{"network": "pubnet"}

// benchRaw runs p on ledger 58752000 with a fresh decode per iteration (proctest.Bench).
func benchRaw(b *testing.B, p component.Processor) {
	proctest.Bench(b, p, proctest.RealLedgers(b)[0].Raw, nil, false)
}

// BenchmarkLatestLedger runs the LatestLedger processor (view path).
func BenchmarkLatestLedger(b *testing.B) { benchRaw(b, proctest.New(b, NewLatestLedger, pubnet)) }

// BenchmarkLedgerReader runs LedgerReader (view path).
func BenchmarkLedgerReader(b *testing.B) { benchRaw(b, proctest.New(b, NewLedgerReader, pubnet)) }

// BenchmarkTransformToAppMetrics runs TransformToAppMetrics (view path).
func BenchmarkTransformToAppMetrics(b *testing.B) {
	benchRaw(b, proctest.New(b, NewTransformToAppMetrics, pubnet))
}

// BenchmarkPassthrough runs Passthrough with its full XDR (view path).
func BenchmarkPassthrough(b *testing.B) { benchRaw(b, proctest.New(b, NewPassthrough, pubnet)) }

// BenchmarkLedgerChanges runs LedgerChanges (full decode and the SDK's change reader).
func BenchmarkLedgerChanges(b *testing.B) {
	benchRaw(b, proctest.New(b, NewLedgerChanges, pubnet))
}

// BenchmarkLedgerToJSON runs LedgerToJSON (full decode and the SDK's transaction reader).
func BenchmarkLedgerToJSON(b *testing.B) { benchRaw(b, proctest.New(b, NewLedgerToJSON, pubnet)) }

// BenchmarkBronzeExtractors runs BronzeExtractors (full decode, transaction and change readers).
func BenchmarkBronzeExtractors(b *testing.B) {
	benchRaw(b, proctest.New(b, NewBronzeExtractors, pubnet))
}
