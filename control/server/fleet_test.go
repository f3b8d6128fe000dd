package server

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func TestPromName(t *testing.T) {
	for _, c := range []struct {
		key, name, component string
		ok                   bool
	}{
		{"pipeline.current_ledger", "cdp_pipeline_current_ledger", "", true},
		{"pipeline.progress_eta_seconds", "cdp_pipeline_progress_eta_seconds", "", true},
		{"source.FSBufferedStorageSourceAdapter.ledgers_behind_tip", "cdp_source_ledgers_behind_tip", "FSBufferedStorageSourceAdapter", true},
		{"processor.ContractEvent.events_found", "cdp_processor_events_found", "ContractEvent", true},
		{"consumer.SaveToParquet_2.files_written", "cdp_consumer_files_written", "SaveToParquet_2", true},
		{"sink.Postgres.rows.written", "cdp_sink_rows_written", "Postgres", true}, // upstream's kind for consumers
		{"events_processed", "cdp_events_processed", "", true},
		{"Pipeline.Ledgers-Per Second", "cdp_pipeline_ledgers_per_second", "", true},
		{"source.x", "cdp_source_x", "", true}, // two words: not a component stat
		{"health.last_error", "", "", false},
		{"control.heartbeats_total", "", "", false}, // cdp_control_* are the plane's own
		{"...", "", "", false},
		{"", "", "", false},
	} {
		name, comp, ok := PromName(c.key)
		if name != c.name || comp != c.component || ok != c.ok {
			t.Errorf("PromName(%q) = %q, %q, %v; want %q, %q, %v", c.key, name, comp, ok, c.name, c.component, c.ok)
		}
	}
}

// scrape serves reg as Prometheus scrapes it and keeps the fleet's lines (re-exported cdp_*
// and flowctl_*; the plane's own cdp_control_* left out).
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, body)
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if (strings.HasPrefix(name, "cdp_") && !strings.HasPrefix(name, "cdp_control_")) || strings.HasPrefix(name, "flowctl_") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// One scrape of the control plane covers the fleet: every service's heartbeat metrics as
// gauges labelled by service, type and instance, plus up and heartbeat age; capped per
// service; gone when the service unregisters.
func TestFleetMetricsReexport(t *testing.T) {
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	r := start(t, Options{Now: clock.Now, Registerer: reg, ReexportMetrics: 6, HeartbeatTTL: 30 * time.Second})
	pipe := map[string]string{contract.MetaServiceType: contract.ServiceTypePipeline}
	withInstance := func(inst string) map[string]string {
		m := map[string]string{contract.MetaInstance: inst}
		for k, v := range pipe {
			m[k] = v
		}
		return m
	}
	register(t, r, "cdp-alpha", typeNone, withInstance("cdpd-0"))
	register(t, r, "cdp-beta", typeNone, withInstance("cdpd-1"))
	register(t, r, "ttp-processor", typeProcessor, map[string]string{contract.MetaHost: "node-7"})
	heartbeat(t, r, "cdp-alpha", healthy, map[string]string{
		"pipeline.current_ledger":                                  "58752010",
		"pipeline.ledgers_processed":                               "11",
		"source.FSBufferedStorageSourceAdapter.ledgers_behind_tip": "5",
		"processor.ContractEvent.events_found":                     "18",
		"health.last_error":                                        "", "health.status": "running",
	})
	// Eight numeric metrics over the cap of six: the first six in key order are kept.
	heartbeat(t, r, "cdp-beta", degraded, map[string]string{
		"a.one": "1", "a.two": "2", "b.three": "3", "b.four": "4", "c.five": "5", "c.six": "6", "d.seven": "7", "d.eight": "8",
		"pipeline.version": "v1.2.3", // text: not a gauge
	})
	// An upstream CDP process through the legacy API: a cdp-pipeline without an instance.
	legacy := flowctllegacy.NewControlPlaneClient(r.conn)
	if _, err := legacy.Register(ctxT(t), &flowctllegacy.ServiceInfo{ServiceId: "cdp-upstream", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE}); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Heartbeat(ctxT(t), &flowctllegacy.ServiceHeartbeat{ServiceId: "cdp-upstream", Metrics: map[string]float64{"pipeline.uptime_seconds": 12.5}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(7 * time.Second)
	testutil.Golden(t, filepath.Join("testdata", "fleet_metrics.golden"), scrape(t, reg), *update)

	// Unregistered: its series are gone from the next scrape.
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "cdp-alpha"}); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, reg); strings.Contains(got, `service_id="cdp-alpha"`) || !strings.Contains(got, `service_id="cdp-beta"`) {
		t.Errorf("after unregistering cdp-alpha:\n%s", got)
	}
	// Silent past the TTL: down, with its age.
	clock.Advance(30 * time.Second)
	r.srv.Sweep()
	if got := scrape(t, reg); !strings.Contains(got, `flowctl_service_up{instance="",service_id="cdp-upstream",service_type="cdp-pipeline"} 0`) ||
		!strings.Contains(got, `flowctl_service_last_heartbeat_age_seconds{instance="",service_id="cdp-upstream",service_type="cdp-pipeline"} 37`) {
		t.Errorf("after the TTL:\n%s", got)
	}
}

// Off by default: a server without ReexportMetrics exports none of it.
func TestFleetMetricsOff(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := start(t, Options{Registerer: reg})
	register(t, r, "cdp-alpha", typeNone, nil)
	heartbeat(t, r, "cdp-alpha", healthy, map[string]string{"pipeline.current_ledger": "1"})
	if got := scrape(t, reg); strings.TrimSpace(got) != "" {
		t.Errorf("re-export without ReexportMetrics:\n%s", got)
	}
}
