package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// fleetMetrics is a cdpd ContractEvent pipeline's heartbeat: 28 metrics, 12 health details.
func fleetMetrics(i int) map[string]string {
	n := strconv.Itoa(58752000 + i)
	m := map[string]string{}
	for _, k := range []string{"uptime_seconds", "current_ledger", "checkpoint_ledger", "restarts", "generation", "component_count", "ledgers_processed", "full_decodes"} {
		m["pipeline."+k] = n
	}
	for _, k := range []string{"processed_ledgers", "last_ledger", "bytes", "last_processed_time", "lag_seconds", "tip_ledger", "ledgers_behind_tip", "events_out", "errors"} {
		m["source.FSBufferedStorageSourceAdapter."+k] = n
	}
	for _, k := range []string{"events_in", "events_out", "errors", "events_found", "ledgers_processed"} {
		m["processor.ContractEvent."+k] = n
	}
	for _, k := range []string{"events_in", "events_out", "errors", "files_written", "rows_written", "bytes_written"} {
		m["consumer.SaveToParquet."+k] = n
	}
	for _, k := range []string{"pipeline_id", "uptime", "status", "restarts", "generation", "last_error", "current_ledger", "checkpoint",
		"component_count", "FSBufferedStorageSourceAdapter_status", "ContractEvent_status", "SaveToParquet_status"} {
		m[contract.HealthKey(k)] = "healthy"
	}
	return m
}

// BenchmarkFleetScrape: one Prometheus scrape (text exposition) of a control plane holding
// 5,000 cdpd pipelines from 4 instances, with the re-export on.
func BenchmarkFleetScrape(b *testing.B) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{Registerer: reg, ReexportMetrics: DefaultReexportMetrics, MaxServices: 10000, MaxServicesPerClient: 10000}) // one caller registers them all
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 5000 {
		id := fmt.Sprintf("cdp-pipeline-%05d", i)
		inst := "cdpd-" + strconv.Itoa(i%4)
		if _, err := s.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: id, Component: &flowctlv1.ComponentInfo{Name: id,
			Metadata: map[string]string{contract.MetaServiceType: contract.ServiceTypePipeline, contract.MetaInstance: inst}}}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: id, Status: statusHealthy, Metrics: fleetMetrics(i)}); err != nil {
			b.Fatal(err)
		}
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes")
}
