package kv

import (
	"testing"
	"time"
)

// BenchmarkSaveToRedis: ledgers of 500 records (a busy ledger's contract events) through
// SaveToRedis into the test redis-server: one pipelined MULTI/EXEC per ledger. Reports
// records/s.
func BenchmarkSaveToRedis(b *testing.B) {
	srv := sharedRedis(b) // empty: no cursor from an earlier run skips the ledgers
	s, err := NewSaveToRedis(&RedisConfig{ConnConfig: ConnConfig{Address: srv.Addr(), CursorKey: "bench_cursors", MaxRetryWait: time.Second},
		KeyPrefix: "bench:", TTLHours: 1}, env("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(bg)
	if err := s.(*Sink).Start(bg); err != nil {
		b.Fatal(err)
	}
	const perLedger = 500
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		seq := uint32(1_000_000 + i)
		if err := s.Consume(bg, testLedger(b, seq), recs(seq, perLedger, "bench")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perLedger)/time.Since(start).Seconds(), "records/s")
}
