package loader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchPipeline is a realistic pipeline file of about 20 lines.
func benchPipeline(name, tag string) string {
	return fmt.Sprintf(`pipelines:
  %s:
    description: benchmark pipeline %s
    source:
      type: FSBufferedStorageSourceAdapter
      config:
        path: /data/ledgers/${NETWORK:-pubnet}
        start_ledger: 58752000
        end_ledger: 58753000
    processors:
      - type: ContractEvent
        config:
          network_passphrase: "Public Global Stellar Network ; September 2015"
    consumers:
      - type: SaveToParquet
        config: {local_path: /data/out/%s, buffer_size: 10000, tag: %q}
      - type: StdoutConsumer
`, name, name, name, tag)
}

// BenchmarkEventLatency measures write -> Update event delivered, for the debounce the daemon
// uses by default (100ms) and a short one. ns/op is the latency of one event; the debounce
// wait is part of it by design.
func BenchmarkEventLatency(b *testing.B) {
	for _, debounce := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("debounce="+debounce.String(), func(b *testing.B) {
			dir := b.TempDir()
			for i := range 20 {
				name := fmt.Sprintf("Other%d", i)
				if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(benchPipeline(name, "0")), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			target := filepath.Join(dir, "target.yaml")
			if err := os.WriteFile(target, []byte(benchPipeline("Target", "0")), 0o644); err != nil {
				b.Fatal(err)
			}
			opts := Options{Dir: dir, Debounce: debounce, Check: testCheck, LookupEnv: lookupIn(nil), Logger: testOpts().Logger}
			w, err := NewWatcher(opts)
			if err != nil {
				b.Fatal(err)
			}
			batches := make(chan Batch, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx, func(bt Batch) { batches <- bt }) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			<-batches // initial
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := os.WriteFile(target, []byte(benchPipeline("Target", fmt.Sprint(i+1))), 0o644); err != nil {
					b.Fatal(err)
				}
				select {
				case bt := <-batches:
					if len(bt.Events) != 1 || bt.Events[0].Kind != Update {
						b.Fatalf("batch %+v", bt.Events)
					}
				case <-time.After(waitTimeout):
					b.Fatal("no event")
				}
				total += time.Since(start)
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000-float64(debounce.Milliseconds()), "ms-over-debounce/op")
		})
	}
}

// BenchmarkScan500 measures a scan of a 500-file directory as the watcher does it: "full" is
// the first scan and every forced rescan (read, parse, expand, validate, hash and resolve every
// file); "one-changed" is the scan after a change to one file (every file read, only the
// changed one parsed, all resolved).
func BenchmarkScan500(b *testing.B) {
	dir := b.TempDir()
	for i := range 500 {
		name := fmt.Sprintf("P%03d", i)
		if err := os.WriteFile(filepath.Join(dir, strings.ToLower(name)+".yaml"), []byte(benchPipeline(name, "0")), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	opts := Options{Dir: dir, Check: testCheck, LookupEnv: lookupIn(nil)}
	scan := func(st *state, prev map[string]*fileResult) map[string]*fileResult {
		results, err := scanDir(dir, opts, prev)
		if err != nil {
			b.Fatal(err)
		}
		st.apply(results, nil)
		if len(st.errs) != 0 || len(st.applied) != 500 {
			b.Fatalf("scan: %d pipelines, errors %v", len(st.applied), st.errs)
		}
		return results
	}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			scan(newState(), nil)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/file")
	})
	b.Run("one-changed", func(b *testing.B) {
		st := newState()
		prev := scan(st, nil)
		target := filepath.Join(dir, "p250.yaml")
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			if err := os.WriteFile(target, []byte(benchPipeline("P250", fmt.Sprint(i))), 0o644); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			prev = scan(st, prev)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/file")
	})
}
