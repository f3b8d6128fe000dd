package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func fleetPipeline(id, name, instance, shard string) *flowctlv1.ComponentInfo {
	info := pipelineInfo(id, name, "/etc/cdp/"+name+".yaml", "pubnet")
	info.Description = "CDP pipeline " + name + " hosted by cdpd"
	info.Metadata[contract.MetaInstance] = instance
	info.Metadata[contract.MetaHost] = instance
	info.Metadata[contract.MetaShard] = shard
	info.Metadata[contract.MetaShardCount] = "2"
	return info
}

// populateFleet registers what a fleet looks like: two cdpd replicas (a backfill halfway, a
// completed backfill, a degraded follower), an upstream CDP process through flowctl's legacy
// API and an upstream-style processor.
func (cp *controlPlane) populateFleet(t *testing.T) {
	t.Helper()
	cp.register(t, fleetPipeline("cdp-backfill", "backfill", "cdpd-0", "0"))
	cp.register(t, fleetPipeline("cdp-done", "done", "cdpd-1", "1"))
	cp.register(t, fleetPipeline("cdp-events", "events", "cdpd-1", "1"))
	cp.register(t, &flowctlv1.ComponentInfo{Id: "ttp-processor", Name: "TTP processor", Type: flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR,
		Endpoint: "ttp:50051", InputEventTypes: []string{"stellar.ledger"}, OutputEventTypes: []string{"token.transfer"},
		Metadata: map[string]string{contract.MetaHost: "node-7"}})

	cc, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	legacy := flowctllegacy.NewControlPlaneClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{ServiceId: "cdp-upstream", ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE,
		Metadata: map[string]string{"service_name": "upstream", "version": "v2.1.0", "source_type": "BufferedStorageSourceAdapter"}}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 3; i++ { // three heartbeats an hour apart: a history of 3 samples
		cp.clock.Advance(time.Hour)
		cp.heartbeat(t, "cdp-backfill", healthy, map[string]string{
			"pipeline.uptime_seconds": "10800", "pipeline.current_ledger": "58756499",
			contract.MetricProgressDone: "4500", contract.MetricProgressTotal: "10000",
			contract.MetricProgressRate: "120.54", contract.MetricProgressETA: "45.6",
			"source.FSBufferedStorageSourceAdapter.ledgers_behind_tip": "5500",
			"health.status": "running", "health.last_error": "",
		})
	}
	cp.heartbeat(t, "cdp-done", healthy, map[string]string{
		"pipeline.uptime_seconds": "0", contract.MetricProgressDone: "100", contract.MetricProgressTotal: "100",
		contract.MetricProgressRate: "0", contract.MetricProgressETA: "0", "health.status": "completed",
	})
	cp.heartbeat(t, "cdp-events", flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED, map[string]string{
		"pipeline.uptime_seconds": "600", "health.status": "running", "health.ContractEvent_status": "stuck: Process on ledger 58752001 for 1m2s",
	})
	cp.heartbeat(t, "ttp-processor", healthy, map[string]string{"events_processed": "42"})
	if _, err := legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "cdp-upstream", Metrics: map[string]float64{
		"pipeline.uptime_seconds": 7200, "processor.ContractEvent.events_found": 18,
	}}); err != nil {
		t.Fatal(err)
	}
	cp.clock.Advance(5 * time.Second)
}

func TestFleetGolden(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populateFleet(t)
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"fleet_status", []string{"status"}, 0},
		{"fleet_status_instance", []string{"status", "--instance", "cdpd-1"}, 0},
		{"fleet_status_type", []string{"status", "--type", "processor"}, 0},
		{"fleet_status_completed", []string{"status", "--status", "completed"}, 0},
		{"fleet_status_filters", []string{"status", "--type", "cdp-pipeline", "--status", "healthy"}, 0},
		{"fleet_status_nomatch", []string{"status", "--instance", "cdpd-9"}, 0},
		{"fleet_status_instance_json", []string{"status", "--instance", "cdpd-0", "--json"}, 0},
		{"fleet_backfill", []string{"status", "cdp-backfill"}, 0},
		{"fleet_backfill_verbose", []string{"status", "cdp-backfill", "--verbose"}, 0},
		{"fleet_backfill_verbose_json", []string{"status", "cdp-backfill", "--verbose", "--json"}, 0},
		{"fleet_done", []string{"status", "cdp-done"}, 0},
		{"fleet_upstream_verbose", []string{"status", "cdp-upstream", "--verbose"}, 0},
		{"fleet_processor_verbose", []string{"status", "ttp-processor", "--verbose"}, 0},
		{"fleet_usage_filter_with_id", []string{"status", "cdp-done", "--instance", "cdpd-1"}, 2},
		{"fleet_usage_verbose_without_id", []string{"status", "--verbose"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := cp.run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			golden(t, tt.name, cp.addr, tt.args, stdout, stderr, code)
		})
	}
}

// What the goldens show, asserted: the filters select by the columns, a completed backfill is
// completed (not "healthy 0s"), the verbose view names the owner and the history span.
func TestFleetStatusSemantics(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populateFleet(t)
	ids := func(args ...string) string {
		stdout, stderr, code := cp.run(t, append(args, "--json")...)
		if code != 0 {
			t.Fatalf("flowctl %v: exit %d: %s", args, code, stderr)
		}
		var list []Service
		if err := json.Unmarshal([]byte(stdout), &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.ID)
		}
		return strings.Join(out, " ")
	}
	for args, want := range map[string]string{
		"status":                                     "cdp-backfill cdp-done cdp-events cdp-upstream ttp-processor",
		"status --instance cdpd-1":                   "cdp-done cdp-events",
		"status --instance node-7":                   "ttp-processor",
		"status --type cdp-pipeline":                 "cdp-backfill cdp-done cdp-events cdp-upstream",
		"status --status completed":                  "cdp-done",
		"status --status healthy":                    "cdp-backfill cdp-upstream ttp-processor",
		"status --status degraded --instance cdpd-1": "cdp-events",
	} {
		if got := ids(strings.Fields(args)...); got != want {
			t.Errorf("flowctl %s: %q, want %q", args, got, want)
		}
	}
	table, _, _ := cp.run(t, "status")
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "cdp-done ") && (!strings.Contains(line, " completed ") || strings.Contains(line, "healthy") || !strings.Contains(line, "100%")) {
			t.Errorf("completed backfill row: %q", line)
		}
		if strings.HasPrefix(line, "cdp-backfill ") && (!strings.Contains(line, "45% ETA 45s") || !strings.Contains(line, "cdpd-0") || !strings.Contains(line, "0/2")) {
			t.Errorf("backfill row: %q", line)
		}
	}
	// `health` still counts a completed pipeline as healthy.
	if _, _, code := cp.run(t, "health", "cdp-done"); code != 0 {
		t.Errorf("health of a completed pipeline: exit %d", code)
	}
	stdout, _, _ := cp.run(t, "status", "cdp-backfill", "--verbose", "--json")
	var v struct {
		Service
		History historySpan `json:"history"`
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
	if !v.History.Kept || v.History.Samples != 3 || v.History.Newest.Sub(*v.History.Oldest) != 2*time.Hour ||
		!strings.HasPrefix(v.Metadata[contract.MetaRegisteredBy], "peer:127.0.0.1:") || v.Progress.Done != 4500 {
		t.Errorf("verbose JSON: %+v", v)
	}
}

func TestProgressBar(t *testing.T) {
	for _, c := range []struct {
		p    Progress
		want string
	}{
		{Progress{Done: 4500, Total: 10000, Rate: 120.54, ETASeconds: 45.6}, "[#########-----------]  45.0%  4,500 of 10,000 ledgers  120.5 ledgers/s  ETA 45s"},
		{Progress{Done: 0, Total: 1234567, ETASeconds: -1}, "[--------------------]   0.0%  0 of 1,234,567 ledgers"},
		{Progress{Done: 100, Total: 100}, "[####################] 100.0%  100 of 100 ledgers  done"},
	} {
		if got := progressBar(&c.p); got != c.want {
			t.Errorf("progressBar(%+v)\n got %q\nwant %q", c.p, got, c.want)
		}
	}
	for p, want := range map[*Progress]string{
		nil: "-",
		{Done: 4500, Total: 10000, ETASeconds: 3725}: "45% ETA 1h 2m",
		{Done: 1, Total: 3, ETASeconds: -1}:          "33%",
		{Done: 3, Total: 3}:                          "100%",
	} {
		if got := progressCell(p); got != want {
			t.Errorf("progressCell(%+v) = %q, want %q", p, got, want)
		}
	}
}

// The table's rows from cdpd.v1 FleetService (small rows) render exactly as the services of
// ListComponents do (the fallback for upstream servers).
func TestTableRowsMatchListComponents(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populateFleet(t)
	app := &App{Now: cp.clock.Now, Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	cf := &clientFlags{addr: cp.addr, timeout: 10 * time.Second}
	cc, err := app.dial(cf)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rows, err := app.tableServices(context.Background(), cf, cc)
	if err != nil {
		t.Fatal(err)
	}
	full, err := app.listServices(context.Background(), cf, cc)
	if err != nil {
		t.Fatal(err)
	}
	var a, b strings.Builder
	writeTable(&a, rows)
	writeTable(&b, full)
	if a.String() != b.String() || len(rows) != 5 {
		t.Errorf("rows:\n%s\nListComponents:\n%s", a.String(), b.String())
	}
	for i := range rows {
		if rows[i].Metadata != nil || rows[i].rawMetrics != nil {
			t.Errorf("%s: a row carries metadata or metrics", rows[i].ID)
		}
	}
}
