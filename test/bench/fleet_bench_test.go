package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/cli"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
)

// Sizes of the fleet benchmark: services in total, spread over fleetDaemons daemons.
var (
	fleetServices = envInt("CDPD_BENCH_FLEET_SERVICES", 5000)
	fleetDaemons  = 4
)

// The documented bounds of a scrape of the control plane's /metrics (BENCHMARKS.md): per
// registered service, at most this many bytes of exposition text and this much time
// (Prometheus's default scrape_timeout, 10 s, then holds 20,000 services).
const (
	scrapeBytesPerService = 8 << 10
	scrapeTimePerService  = 500 * time.Microsecond
)

// fakePipeline is what a cdpd pipeline hands its control client: the flat metrics and health
// details of a ContractEvent pipeline that follows the tip (28 metrics, 12 details: the shape
// host.Pipeline reports), the counters moving with every call.
type fakePipeline struct {
	name string
	n    atomic.Int64
}

func (p *fakePipeline) GetMetrics() map[string]float64 {
	n := float64(p.n.Add(1))
	m := map[string]float64{
		"pipeline.uptime_seconds": 3600 + n*10, "pipeline.current_ledger": 58752000 + n, "pipeline.checkpoint_ledger": 58752000 + n,
		"pipeline.restarts": 0, "pipeline.generation": 1, "pipeline.component_count": 3, "pipeline.ledgers_processed": 1200 + n,
		"pipeline.full_decodes": 0,
	}
	for k, v := range map[string]float64{
		"processed_ledgers": 1200 + n, "last_ledger": 58752000 + n, "bytes": 1.3e6 * (1200 + n), "last_processed_time": 1.8e9 + n,
		"lag_seconds": 6, "tip_ledger": 58752001 + n, "ledgers_behind_tip": 1, "events_out": 1200 + n, "errors": 0,
	} {
		m["source.FSBufferedStorageSourceAdapter."+k] = v
	}
	for k, v := range map[string]float64{"events_in": 1200 + n, "events_out": 8 * n, "errors": 0, "events_found": 18 * n, "ledgers_processed": 1200 + n} {
		m["processor.ContractEvent."+k] = v
	}
	for k, v := range map[string]float64{"events_in": 8 * n, "events_out": 8 * n, "errors": 0, "files_written": n / 100, "rows_written": 8 * n, "bytes_written": 400 * n} {
		m["consumer.SaveToParquet."+k] = v
	}
	return m
}

func (p *fakePipeline) IsHealthy() bool { return true }

func (p *fakePipeline) GetHealthDetails() map[string]string {
	return map[string]string{
		"pipeline_id": p.name, "uptime": "1h0m0s", "status": "running", "restarts": "0", "generation": "1", "last_error": "",
		"current_ledger": "58752000", "checkpoint": "58752000", "component_count": "3",
		"FSBufferedStorageSourceAdapter_status": "healthy", "ContractEvent_status": "healthy", "SaveToParquet_status": "healthy",
	}
}

// BenchmarkFleetView (issue 18): a control plane with 5,000 services registered by 4 cdpd
// control clients (one connection each, cdpd's registration metadata: instance, shard),
// every service heartbeated with a ContractEvent pipeline's metrics. Goals: `flowctl status`
// renders the whole table in under a second, and a scrape of the control plane's /metrics,
// which re-exports every service's metrics, stays under the documented bounds of size and
// time per service.
func BenchmarkFleetView(b *testing.B) {
	const goalStatus, goalBytes, goalTime = "fleet_status_render", "fleet_metrics_scrape_size", "fleet_metrics_scrape_time"
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err, "listening for the control plane")
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err, "listening for /metrics")
	reg := prometheus.NewRegistry()
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	p, err := plane.Add(&g, plane.Config{Listener: lis, MetricsListener: mlis, Registerer: reg, Gatherer: reg,
		ReexportMetrics: server.DefaultReexportMetrics, MaxServices: 2 * fleetServices,
		// The 4 clients stand for 4 daemons but share one address (127.0.0.1), which is one
		// client identity to the per-client cap (issue 17): lift it to the registry's.
		MaxServicesPerClient: 2 * fleetServices, Logger: slog.New(slog.DiscardHandler)})
	must(b, err, "starting the control plane")
	planeDone := make(chan error, 1)
	go func() { planeDone <- g.Run() }()
	b.Cleanup(func() {
		cancel()
		<-planeDone
		_ = p.Close()
	})
	addr := lis.Addr().String()

	// Four daemons: a control client each, 1,250 pipelines each, as cdpd registers them.
	regStart := time.Now()
	cctx, stopClients := context.WithCancel(context.Background())
	var clientsDone []chan struct{}
	var heartbeats atomic.Int64
	p.Server().AddObserver(func(ev server.ServiceEvent) {
		if ev.Kind == server.EventHeartbeat {
			heartbeats.Add(1)
		}
	})
	for k := 0; k < fleetDaemons; k++ {
		c, err := control.NewClient(control.Config{Endpoint: addr, HeartbeatInterval: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		must(b, err, "creating control client %d", k)
		done := make(chan struct{})
		clientsDone = append(clientsDone, done)
		go func() { defer close(done); _ = c.Run(cctx) }()
		b.Cleanup(func() { _ = c.Close() })
		inst := "cdpd-" + strconv.Itoa(k)
		for i := k; i < fleetServices; i += fleetDaemons {
			name := fmt.Sprintf("pipeline-%05d", i)
			c.Attach(control.Registration{ServiceID: control.ServiceID("", name), Name: name, Version: "bench",
				Metadata: map[string]string{
					contract.MetaServiceType: contract.ServiceTypePipeline, contract.MetaConfigFile: "/etc/cdp/" + name + ".yaml",
					contract.MetaNetwork: "pubnet", contract.MetaVersion: "bench", contract.MetaHost: inst, contract.MetaInstance: inst,
					contract.MetaShard: strconv.Itoa(k), contract.MetaShardCount: strconv.Itoa(fleetDaemons),
				}}, &fakePipeline{name: name})
		}
	}
	b.Cleanup(func() {
		stopClients()
		for _, d := range clientsDone {
			<-d
		}
	})
	deadline := time.Now().Add(5 * time.Minute)
	for heartbeats.Load() < int64(fleetServices) || len(p.Server().Services()) < fleetServices {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes: %d services, %d heartbeats", len(p.Server().Services()), heartbeats.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	Detail(goalStatus, "%d services registered by %d control clients and heartbeated once in %s; load average %s",
		fleetServices, fleetDaemons, time.Since(regStart).Round(time.Millisecond), loadAvg())

	// `flowctl status`: the command as the binary runs it (in-process: the same App), 5 times.
	// The CPU figures are this whole process's (control plane, CLI, and the four clients'
	// heartbeats, about 500 a second, going on meanwhile): an upper bound of the command's cost.
	var statusTimes, statusCPU []time.Duration
	var out, errOut bytes.Buffer
	for range 5 {
		out.Reset()
		app := &cli.App{Stdout: &out, Stderr: &errOut}
		t0, c0 := time.Now(), SelfCPU()
		if code := app.Run(context.Background(), []string{"status", "--control-plane-addr", addr}); code != 0 {
			b.Fatalf("flowctl status exited %d: %s", code, errOut.String())
		}
		statusTimes, statusCPU = append(statusTimes, time.Since(t0)), append(statusCPU, SelfCPU()-c0)
	}
	if rows := strings.Count(out.String(), "\n") - 1; rows != fleetServices {
		b.Fatalf("flowctl status printed %d rows, want %d", rows, fleetServices)
	}
	var filterTime time.Duration
	{
		out.Reset()
		app := &cli.App{Stdout: &out, Stderr: io.Discard}
		t0 := time.Now()
		if code := app.Run(context.Background(), []string{"status", "--instance", "cdpd-2", "--control-plane-addr", addr}); code != 0 {
			b.Fatalf("flowctl status --instance exited %d", code)
		}
		filterTime = time.Since(t0)
	}
	status := median(statusTimes)
	Detail(goalStatus, "flowctl status, %d rows (%d KiB of text): median %s of 5 (min %s, max %s), CPU median %s; with --instance cdpd-2 (%d rows): %s",
		fleetServices, len(out.Bytes())/1024, status.Round(time.Millisecond), slices.Min(statusTimes).Round(time.Millisecond),
		slices.Max(statusTimes).Round(time.Millisecond), median(statusCPU).Round(time.Millisecond), strings.Count(out.String(), "\n")-1,
		filterTime.Round(time.Millisecond))
	Report(goalStatus, status.Seconds()/1.0, AtMost(1))

	// A Prometheus scrape of /metrics, 5 times; plain and gzip (what Prometheus asks for).
	var scrapeTimes, scrapeCPU []time.Duration
	var size, gzSize, series int
	url := "http://" + mlis.Addr().String() + "/metrics"
	for i := range 5 {
		req, _ := http.NewRequest("GET", url, nil)
		if i%2 == 1 {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		t0, c0 := time.Now(), SelfCPU()
		resp, err := http.DefaultTransport.RoundTrip(req)
		must(b, err, "scraping /metrics")
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		must(b, err, "reading /metrics")
		scrapeTimes, scrapeCPU = append(scrapeTimes, time.Since(t0)), append(scrapeCPU, SelfCPU()-c0)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			gzSize = len(body)
			continue
		}
		size = len(body)
		series = 0
		for _, line := range strings.Split(string(body), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				series++
			}
		}
	}
	scrape := median(scrapeTimes)
	Detail(goalBytes, "%d series, %.1f MiB of text (%.0f bytes per service; %.1f MiB gzip); bound %d KiB per service",
		series, float64(size)/(1<<20), float64(size)/float64(fleetServices), float64(gzSize)/(1<<20), scrapeBytesPerService>>10)
	Report(goalBytes, float64(size)/float64(fleetServices*scrapeBytesPerService), AtMost(1))
	Detail(goalTime, "median %s of 5 scrapes (min %s, max %s; plain and gzip alternating), CPU median %s; bound %s per service = %s",
		scrape.Round(time.Millisecond), slices.Min(scrapeTimes).Round(time.Millisecond), slices.Max(scrapeTimes).Round(time.Millisecond),
		median(scrapeCPU).Round(time.Millisecond), scrapeTimePerService, time.Duration(fleetServices)*scrapeTimePerService)
	Report(goalTime, scrape.Seconds()/(time.Duration(fleetServices)*scrapeTimePerService).Seconds(), AtMost(1))
	b.ReportMetric(status.Seconds(), "status-s")
	b.ReportMetric(scrape.Seconds(), "scrape-s")
	b.ReportMetric(float64(size), "scrape-bytes")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
