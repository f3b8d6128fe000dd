package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// idleHost runs n idle pipelines in a real host, the ones of the scale benchmark
// (test/bench): an unbounded FSBufferedStorageSourceAdapter after the tip of a
// one-ledger datastore -> LatestLedger -> StdoutConsumer. It returns them once
// all are running.
func idleHost(b *testing.B, n int) []*host.Pipeline {
	b.Helper()
	dir := b.TempDir()
	ds, err := fixture.Build(filepath.Join(dir, "ds"), fixture.Options{})
	if err != nil {
		b.Fatalf("building the datastore: %v", err)
	}
	reg, err := builtin.Registry()
	if err != nil {
		b.Fatal(err)
	}
	h := host.New(host.Options{Registry: reg, StateDir: filepath.Join(dir, "state"), Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			b.Errorf("closing the host: %v", err)
		}
	})
	opts := loader.Options{LookupEnv: os.LookupEnv, Check: builtin.LoaderCheck(reg)}
	out := make([]*host.Pipeline, 0, n)
	for i := range n {
		name := fmt.Sprintf("idle-%03d", i)
		file := filepath.Join(dir, name+".yaml")
		yaml := fmt.Sprintf(`pipeline:
  name: %s
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: %q, network: pubnet, start_ledger: %d}
  processors:
    - type: LatestLedger
      config: {network: pubnet}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, ds.Dir, ds.Last+1)
		defs, errs := loader.ParseFile(file, []byte(yaml), opts)
		if len(errs) > 0 || len(defs) != 1 {
			b.Fatalf("parsing %s: %v", name, errs)
		}
		if err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: defs[0]}); err != nil {
			b.Fatalf("adding %s: %v", name, err)
		}
		p, _ := h.Get(name)
		out = append(out, p)
	}
	deadline := time.Now().Add(time.Minute)
	for _, p := range out {
		for p.Info().Status != host.StatusRunning {
			if time.Now().After(deadline) {
				b.Fatalf("%s is %s, not running", p.Name(), p.Info().Status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

// realisticPipeline has the metrics and health details of an idle pipeline of
// the scale benchmark, as fresh maps per call (as host.Pipeline returns them).
func realisticPipeline() *fakePipeline {
	return newPipeline(map[string]float64{
		"pipeline.uptime_seconds": 1234.5, "pipeline.current_ledger": 58752001, "pipeline.checkpoint_ledger": 58752001,
		"pipeline.restarts": 0, "pipeline.generation": 1, "pipeline.component_count": 3,
		"pipeline.ledgers_processed": 0, "pipeline.full_decodes": 0,
		"source.FSBufferedStorageSourceAdapter.events_out": 0, "source.FSBufferedStorageSourceAdapter.errors": 0,
		"source.FSBufferedStorageSourceAdapter.processed_ledgers": 0, "source.FSBufferedStorageSourceAdapter.last_ledger": 0,
		"source.FSBufferedStorageSourceAdapter.bytes": 0, "source.FSBufferedStorageSourceAdapter.last_processed_time": 0,
		"source.FSBufferedStorageSourceAdapter.lag_seconds": 0, "source.FSBufferedStorageSourceAdapter.tip_ledger": 58752000,
		"source.FSBufferedStorageSourceAdapter.ledgers_behind_tip": 0,
		"processor.LatestLedger.events_in":                         0, "processor.LatestLedger.events_out": 0, "processor.LatestLedger.errors": 0,
		"processor.LatestLedger.ledgers_processed": 0,
		"consumer.StdoutConsumer.events_in":        0, "consumer.StdoutConsumer.events_out": 0, "consumer.StdoutConsumer.errors": 0,
		"consumer.StdoutConsumer.records_written": 0,
	}, map[string]string{
		"pipeline_id": "idle-000", "uptime": "20m34s", "status": "running", "restarts": "0", "generation": "1",
		"last_error": "", "current_ledger": "58752001", "checkpoint": "58752001", "component_count": "3",
		"FSBufferedStorageSourceAdapter_status": "healthy", "LatestLedger_status": "healthy", "StdoutConsumer_status": "healthy",
	})
}

// BenchmarkHeartbeatBuild is the cdpd side of one heartbeat before the RPC:
// reading the pipeline's status, metrics and health details and building the
// HeartbeatRequest, again and again for one pipeline as the client does. "host" uses a real idle host.Pipeline (host/pipeline.go's
// GetMetrics, GetHealthDetails, HealthState), "fake" a pipeline returning
// ready-made maps of the same size (the client's own share).
func BenchmarkHeartbeatBuild(b *testing.B) {
	b.Run("fake", func(b *testing.B) {
		p := realisticPipeline()
		hc := &control.HeartbeatCache{}
		b.ReportAllocs()
		for b.Loop() {
			if req := hc.Build("cdp-idle-000", p); len(req.Metrics) == 0 {
				b.Fatal("no metrics")
			}
		}
	})
	b.Run("host", func(b *testing.B) {
		p := idleHost(b, 1)[0]
		hc := &control.HeartbeatCache{}
		req := hc.Build("cdp-idle-000", p)
		b.Logf("%d metrics and details", len(req.Metrics))
		b.ReportAllocs()
		for b.Loop() {
			if req := hc.Build("cdp-idle-000", p); len(req.Metrics) == 0 {
				b.Fatal("no metrics")
			}
		}
	})
}

// BenchmarkHeartbeatEndToEnd heartbeats 100 real idle host pipelines that are
// always due (a 1 ms interval) through the client to control/server over
// loopback, with both in this process. ns/op is wall time per heartbeat at the
// client's concurrency bound; cpu-µs/op is this process's CPU (client, host and
// server) per heartbeat; allocs/op and B/op count the whole process.
func BenchmarkHeartbeatEndToEnd(b *testing.B) {
	pipes := idleHost(b, 100)
	ts := startServer(b, serverOpt{})
	promReg := prometheus.NewRegistry()
	c, stop := runClientB(b, control.Config{
		Endpoint: ts.addr, HeartbeatInterval: time.Millisecond,
		Registerer: promReg, Logger: slog.New(slog.DiscardHandler),
	})
	defer stop()
	for _, p := range pipes {
		c.Attach(reg(p.Name()), p)
	}
	hb := func() float64 { return gatherValue(promReg, "cdpd_control_heartbeats_total") }
	for hb() < 500 { // warm up: everything registered
		time.Sleep(10 * time.Millisecond)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	start, base := time.Now(), hb()
	for hb()-base < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	n := hb() - base
	b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/op")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/hb")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/hb")
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// flowctlServer runs `flowctl server` (cmd/flowctl, built here) in its
// own process, so that this process's CPU is cdpd's side only. It returns the
// server's address.
func flowctlServer(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "flowctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/withobsrvr/cdpd/cmd/flowctl").CombinedOutput(); err != nil {
		b.Fatalf("building flowctl: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "server", "--port", "0", "--no-persistence", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting flowctl server: %v", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Address != "" {
				select {
				case addr <- line.Address:
				default:
				}
			}
		}
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		b.Fatal("flowctl server did not report its address")
	}
	return ""
}

// BenchmarkHeartbeatPaced is the scale benchmark's heartbeat figure in one
// process: 500 idle host pipelines heartbeat every second to a flowctl server in
// another process. cpu-µs/heartbeat is this process's CPU with the client
// attached minus its CPU before (the idle pipelines alone), per heartbeat sent;
// allocs/heartbeat likewise (runtime.MemStats).
func BenchmarkHeartbeatPaced(b *testing.B) {
	const n, window = 500, 5 * time.Second
	addr := flowctlServer(b)
	pipes := idleHost(b, n)
	measure := func() (time.Duration, uint64, time.Duration) {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(window)
		c1, t1 := cpuTime(), time.Now()
		runtime.ReadMemStats(&ms1)
		return c1 - c0, ms1.Mallocs - ms0.Mallocs, t1.Sub(t0)
	}
	for range b.N {
		time.Sleep(2 * time.Second)
		idleCPU, idleAllocs, idleWall := measure()

		promReg := prometheus.NewRegistry()
		c, stop := runClientB(b, control.Config{
			Endpoint: addr, HeartbeatInterval: time.Second,
			Registerer: promReg, Logger: slog.New(slog.DiscardHandler),
		})
		for _, p := range pipes {
			c.Attach(reg(p.Name()), p)
		}
		time.Sleep(3 * time.Second) // registered, heartbeating on their slots
		hb0 := gatherValue(promReg, "cdpd_control_heartbeats_total")
		cpu, allocs, wall := measure()
		beats := gatherValue(promReg, "cdpd_control_heartbeats_total") - hb0
		stop()

		idleRate := idleCPU.Seconds() / idleWall.Seconds()
		rate := cpu.Seconds() / wall.Seconds()
		perBeat := (rate - idleRate) / (beats / wall.Seconds())
		b.ReportMetric(beats/wall.Seconds(), "heartbeats/s")
		b.ReportMetric(idleRate, "idle-cores")
		b.ReportMetric(rate-idleRate, "heartbeat-cores")
		b.ReportMetric(perBeat*1e6, "cpu-µs/heartbeat")
		allocRate := float64(allocs)/wall.Seconds() - float64(idleAllocs)/idleWall.Seconds()
		b.ReportMetric(allocRate/(beats/wall.Seconds()), "allocs/heartbeat")
	}
}
