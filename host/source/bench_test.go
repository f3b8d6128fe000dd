package source

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// BenchmarkFSSource reads a 64-ledger fixture datastore through the FS source (zstd
// decompression, copy, no decode) and reports ledgers/s and MB/s of raw XDR.
func BenchmarkFSSource(b *testing.B) {
	for _, k := range []uint32{1, 8} {
		b.Run("ledgers_per_file="+map[uint32]string{1: "1", 8: "8"}[k], func(b *testing.B) {
			const n = 64
			ds, err := fixture.Build(filepath.Join(b.TempDir(), "ds"), fixture.Options{Count: n, LedgersPerFile: k})
			if err != nil {
				b.Fatal(err)
			}
			var bytes int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				env, _, _ := testEnv(b)
				r := newSourceB(b, map[string]any{"path": ds.Dir, "network": "pubnet",
					"start_ledger": 58752000, "end_ledger": 58752000 + n - 1}, env)
				if err := r.Run(context.Background(), 0, func(l *ledger.Ledger) error {
					bytes += int64(l.Size())
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				_ = r.Close()
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(n*b.N)/sec, "ledgers/s")
			b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
		})
	}
}

func newSourceB(b *testing.B, cfg map[string]any, env component.Env) interface {
	Run(context.Context, uint32, func(*ledger.Ledger) error) error
	Close() error
} {
	s, err := component.Construct(NewFS, cfg, env)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
