package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

const benchServices = 10000

// BenchmarkHeartbeats: 10,000 registered services heartbeating over loopback gRPC to a server
// with persistence on, through 4 client connections. "max" sends as fast as 32 goroutines can
// (closed loop); "paced-1000/s" sends 1,000 heartbeats/s (the goal: p99 under 10 ms at that
// rate). Each heartbeat carries 16 metrics shaped like a cdpd pipeline's, 3 of them changing.
func BenchmarkHeartbeats(b *testing.B) {
	r := start(b, Options{DBPath: benchDB(b), MaxServicesPerClient: benchServices}) // one client registers them all
	conns := []flowctlv1.ControlPlaneServiceClient{r.cp}
	for range 3 {
		conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		conns = append(conns, flowctlv1.NewControlPlaneServiceClient(conn))
	}
	regStart := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := conns[w%len(conns)]
			for i := next.Add(1) - 1; i < benchServices; i = next.Add(1) - 1 {
				id := "cdp-pipeline-" + strconv.Itoa(int(i))
				_, err := cp.RegisterComponent(context.Background(), &flowctlv1.RegisterRequest{ComponentId: id,
					Component: &flowctlv1.ComponentInfo{Id: id, Name: id, Metadata: map[string]string{
						"service_type": "cdp-pipeline", "network": "pubnet", "config_file": "/etc/cdp/" + id + ".yaml"}}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.Logf("registered %d services (write-through) in %v", benchServices, time.Since(regStart).Round(time.Millisecond))

	var seq atomic.Int64
	send := func(cp flowctlv1.ControlPlaneServiceClient) (time.Duration, error) {
		n := seq.Add(1)
		id := "cdp-pipeline-" + strconv.Itoa(int(n%benchServices))
		req := &flowctlv1.HeartbeatRequest{ServiceId: id, Status: flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY, Metrics: pipelineMetrics(n)}
		t0 := time.Now()
		_, err := cp.Heartbeat(context.Background(), req)
		return time.Since(t0), err
	}
	report := func(b *testing.B, lat []time.Duration, elapsed time.Duration) {
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "heartbeats/s")
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(0, "ns/op")
	}

	// drive sends b.N heartbeats from `workers` goroutines; with interval > 0 each worker sends
	// one every interval (staggered), else as fast as it can.
	drive := func(b *testing.B, workers int, interval time.Duration) {
		lat := make([][]time.Duration, workers)
		var todo atomic.Int64
		todo.Store(int64(b.N))
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				due := t0.Add(interval * time.Duration(w) / time.Duration(workers))
				for todo.Add(-1) >= 0 {
					if interval > 0 {
						time.Sleep(time.Until(due))
						due = due.Add(interval)
					}
					d, err := send(conns[w%len(conns)])
					if err != nil {
						b.Error(err)
						return
					}
					lat[w] = append(lat[w], d)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(t0)
		b.StopTimer()
		report(b, slices.Concat(lat...), elapsed)
	}
	b.Run("max", func(b *testing.B) { drive(b, 32, 0) })
	b.Run("paced-1000/s", func(b *testing.B) {
		const workers, rate = 20, 1000
		drive(b, workers, time.Second*workers/rate) // per worker
	})

	n, bytes := 0, 0
	r.srv.mu.RLock()
	for _, h := range r.srv.histories {
		h.mu.Lock()
		for i := range h.n {
			n++
			bytes += len(h.at(i).delta) + 40 // + the sample struct in the ring
		}
		h.mu.Unlock()
	}
	r.srv.mu.RUnlock()
	if n > 0 {
		b.Logf("history: %d samples, %.0f bytes/sample of delta-encoded metrics (maps of base/last not counted)", n, float64(bytes)/float64(n))
	}
}

// pipelineMetrics is a heartbeat like cdpd's: 13 stable values, 3 changing ones.
func pipelineMetrics(n int64) map[string]string {
	m := map[string]string{
		"pipeline.uptime_seconds":                                 strconv.FormatInt(n/10, 10),
		"pipeline.component_count":                                "3",
		"source.FSBufferedStorageSourceAdapter.processed_ledgers": strconv.FormatInt(58752000+n, 10),
		"processor.ContractEvent.events_found":                    strconv.FormatInt(n*7, 10),
		"processor.ContractEvent.ledgers_processed":               "1200",
		"consumer.SaveToParquet.files_written":                    "12",
		"consumer.SaveToParquet.rows_written":                     "120000",
		"health.pipeline_id":                                      "cdp-contract-events",
		"health.uptime":                                           "4h23m",
		"health.component_count":                                  "3",
		"health.FSBufferedStorageSourceAdapter_status":            "healthy",
		"health.ContractEvent_status":                             "healthy",
		"health.SaveToParquet_status":                             "healthy",
	}
	for i := range 3 {
		m[fmt.Sprintf("custom.metric_%d", i)] = "0"
	}
	return m
}

// benchDB is the benchmark's database; CDPD_BENCH_NO_PERSIST=1 compares without persistence.
func benchDB(b *testing.B) string {
	if os.Getenv("CDPD_BENCH_NO_PERSIST") == "1" {
		return ""
	}
	return filepath.Join(b.TempDir(), "flowctl.db")
}
