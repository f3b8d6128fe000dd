package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/run"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/alert"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/plane"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is when every test's clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// controlPlane is a real control plane (plane.Add) on 127.0.0.1 with a fake clock,
// plus a flowctl.v1 client to register and heartbeat services through real RPCs.
type controlPlane struct {
	addr   string
	clock  *testutil.Clock
	client flowctlv1.ControlPlaneServiceClient
	alerts *alert.Manager
}

func startControlPlane(t *testing.T, mod func(*plane.Config)) *controlPlane {
	t.Helper()
	c := testutil.NewClock(t0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := plane.Config{
		Listener:          lis,
		HeartbeatTTL:      time.Hour, // the janitor only acts where a test asks for it
		JanitorInterval:   time.Hour,
		AlertEvalInterval: 10 * time.Millisecond,
		Now:               c.Now,
		Logger:            slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	p, err := plane.Add(&g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	cp := &controlPlane{addr: lis.Addr().String(), clock: c, alerts: p.Alerts()}
	cc, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cp.client = flowctlv1.NewControlPlaneServiceClient(cc)
	t.Cleanup(func() { _ = cc.Close() })
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("closing the control plane: %v", err)
		}
	})
	return cp
}

func (cp *controlPlane) register(t *testing.T, info *flowctlv1.ComponentInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cp.client.RegisterComponent(ctx, &flowctlv1.RegisterRequest{Component: info, ComponentId: info.GetId()}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
}

func (cp *controlPlane) heartbeat(t *testing.T, id string, st flowctlv1.HealthStatus, metrics map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cp.client.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: id, Status: st, Metrics: metrics}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
}

const (
	healthy   = flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	unhealthy = flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
)

func pipelineInfo(id, name, config, network string) *flowctlv1.ComponentInfo {
	return &flowctlv1.ComponentInfo{
		Id: id, Name: name, Version: "0.1.0",
		Metadata: map[string]string{
			"service_type": "cdp-pipeline", "config_file": config, "network": network,
			"version": "0.1.0", "host": "node-1",
		},
	}
}

// populate registers two cdpd pipelines (one healthy, one failing) and an upstream-style
// processor, 4h23m ago, with their last heartbeats 5 s ago.
func (cp *controlPlane) populate(t *testing.T) {
	t.Helper()
	cp.register(t, pipelineInfo("cdp-alpha", "alpha", "/etc/cdp/alpha.yaml", "pubnet"))
	cp.register(t, pipelineInfo("cdp-beta", "beta", "/etc/cdp/beta.yaml", "testnet"))
	cp.clock.Advance(time.Hour)
	cp.register(t, &flowctlv1.ComponentInfo{Id: "ttp-processor", Name: "TTP processor", Type: flowctlv1.ComponentType_COMPONENT_TYPE_PROCESSOR})
	cp.clock.Advance(3*time.Hour + 23*time.Minute)
	cp.heartbeat(t, "cdp-alpha", healthy, map[string]string{
		"pipeline.uptime_seconds":                                 "15780",
		"pipeline.component_count":                                "3",
		"source.FSBufferedStorageSourceAdapter.processed_ledgers": "1200",
		"processor.ContractEvent.events_found":                    "3400",
		"processor.ContractEvent.avg_ms":                          "2.25",
		"consumer.SaveToParquet.files_written":                    "12",
		"health.pipeline_id":                                      "alpha",
		"health.uptime":                                           "4h23m0s",
		"health.component_count":                                  "3",
		"health.FSBufferedStorageSourceAdapter_status":            "healthy",
		"health.ContractEvent_status":                             "healthy",
		"health.SaveToParquet_status":                             "healthy",
	})
	cp.heartbeat(t, "cdp-beta", unhealthy, map[string]string{
		"pipeline.uptime_seconds":    "65",
		"pipeline.component_count":   "3",
		"health.pipeline_id":         "beta",
		"health.last_error":          "source: reading ledger 58752001: file not found",
		"health.LatestLedger_status": "stale",
	})
	cp.heartbeat(t, "ttp-processor", healthy, map[string]string{"events_processed": "42"})
	cp.clock.Advance(5 * time.Second)
}

// run runs flowctl with args (the control plane address appended) and returns its output.
func (cp *controlPlane) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runApp(t, cp.clock.Now, nil, append(args, "--control-plane-addr", cp.addr)...)
}

func runApp(t *testing.T, now func() time.Time, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errb, Now: now, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := app.Run(ctx, args)
	return out.String(), errb.String(), code
}

// golden compares a command's result with testdata/<name>.golden (-update rewrites it). The
// control plane address is written as ADDR.
func golden(t *testing.T, name, addr string, args []string, stdout, stderr string, code int) {
	t.Helper()
	norm := func(s string) string {
		return clientPort.ReplaceAllString(strings.ReplaceAll(s, addr, "ADDR"), "${1}PORT")
	}
	got := norm(fmt.Sprintf("$ flowctl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", shellJoin(args), code, stdout, stderr))
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), got, *update)
}

// clientPort matches the client's port in registered_by ("peer:127.0.0.1:54321"), which
// changes with every run.
var clientPort = regexp.MustCompile(`(peer:127\.0\.0\.1:)\d+`)

// shellJoin quotes the arguments that need it, for the command line shown in golden files.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " *!<>=\"'$&|;()") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func TestGolden(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populate(t)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"status", []string{"status"}, 0},
		{"status_alpha", []string{"status", "cdp-alpha"}, 0},
		{"status_beta", []string{"status", "cdp-beta"}, 0},
		{"status_processor", []string{"status", "ttp-processor"}, 0},
		{"status_unknown", []string{"status", "alpah"}, 1},
		{"status_json", []string{"status", "--json"}, 0},
		{"status_alpha_json", []string{"status", "cdp-alpha", "--json"}, 0},
		{"list", []string{"list"}, 0},
		{"list_json", []string{"list", "-o", "json"}, 0},
		{"health", []string{"health"}, 0},
		{"health_alpha", []string{"health", "cdp-alpha"}, 0},
		{"health_beta", []string{"health", "cdp-beta"}, 1},
		{"health_unknown", []string{"health", "beta"}, 1},
		{"health_unknown_far", []string{"health", "no-such-service"}, 1},
		{"health_json", []string{"health", "-o", "json"}, 0},
		{"health_beta_json", []string{"health", "cdp-beta", "--json"}, 1},
		{"help_health", []string{"health", "--help"}, 0},
		{"usage_bad_flag", []string{"health", "--nope"}, 2},
		{"usage_two_ids", []string{"status", "a", "b"}, 2},
		{"usage_bad_output", []string{"list", "-o", "yaml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := cp.run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			golden(t, tt.name, cp.addr, tt.args, stdout, stderr, code)
		})
	}
}

// Every command and subcommand answers --help (and -h) with its usage on stdout, exit 0, and
// nothing on stderr.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, cmd := range [][]string{
		{}, {"server"}, {"status"}, {"health"}, {"list"}, {"metrics"}, {"version"},
		{"alert"}, {"alert", "create"}, {"alert", "list"}, {"alert", "delete"},
	} {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string{}, cmd...), h)
			stdout, stderr, code := runApp(t, time.Now, nil, args...)
			if code != 0 || !strings.Contains(stdout, "Usage") || stderr != "" {
				t.Errorf("flowctl %s: exit %d, stdout %q, stderr %q; want usage on stdout, exit 0", strings.Join(args, " "), code, stdout, stderr)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	old := Version
	Version = "v1.2.3-4-gabcdef"
	defer func() { Version = old }()
	for args, want := range map[string]string{
		"version":         "flowctl v1.2.3-4-gabcdef\n",
		"--version":       "flowctl v1.2.3-4-gabcdef\n",
		"version --json":  "{\n  \"version\": \"v1.2.3-4-gabcdef\"\n}\n",
		"version -o json": "{\n  \"version\": \"v1.2.3-4-gabcdef\"\n}\n",
	} {
		stdout, stderr, code := runApp(t, time.Now, nil, strings.Fields(args)...)
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("flowctl %s: exit %d, stdout %q, stderr %q; want %q", args, code, stdout, stderr, want)
		}
	}
	if _, _, code := runApp(t, time.Now, nil, "version", "extra"); code != 2 {
		t.Errorf("flowctl version extra: exit %d, want 2", code)
	}
}

// Every command that prints data takes --json and -o json alike (the JSON itself is checked
// by the golden and JSON tests).
func TestEveryDataCommandTakesJSON(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populate(t)
	for _, cmd := range [][]string{
		{"status"}, {"status", "cdp-alpha"}, {"health"}, {"health", "cdp-alpha"}, {"list"},
		{"metrics", "cdp-alpha"}, {"alert", "list"}, {"version"},
	} {
		run := cp.run
		if cmd[0] == "version" { // talks to no control plane
			run = func(t *testing.T, args ...string) (string, string, int) { return runApp(t, time.Now, nil, args...) }
		}
		var outs []string
		for _, flags := range [][]string{{"--json"}, {"-o", "json"}} {
			args := append(append([]string{}, cmd...), flags...)
			stdout, stderr, code := run(t, args...)
			if code != 0 || !json.Valid([]byte(stdout)) {
				t.Errorf("flowctl %s: exit %d, stdout %q, stderr %q; want JSON", strings.Join(args, " "), code, stdout, stderr)
			}
			outs = append(outs, stdout)
		}
		if len(outs) == 2 && outs[0] != outs[1] {
			t.Errorf("flowctl %s: --json and -o json differ:\n%s\n%s", strings.Join(cmd, " "), outs[0], outs[1])
		}
	}
}

func TestStatusJSON(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populate(t)

	stdout, stderr, code := cp.run(t, "status", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("status --json is not a JSON array: %v\n%s", err, stdout)
	}
	if len(list) != 3 {
		t.Fatalf("%d services, want 3", len(list))
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s["id"].(string))
	}
	if got := strings.Join(ids, ","); got != "cdp-alpha,cdp-beta,ttp-processor" {
		t.Fatalf("ids = %s, want sorted", got)
	}
	alpha, beta, proc := list[0], list[1], list[2]
	for k, want := range map[string]any{"name": "alpha", "type": "cdp-pipeline", "status": "healthy", "uptime_seconds": 15780.0, "last_heartbeat": "2026-03-01T16:23:00Z", "registered_at": "2026-03-01T12:00:00Z"} {
		if alpha[k] != want {
			t.Errorf("alpha.%s = %#v, want %#v", k, alpha[k], want)
		}
	}
	m := alpha["metrics"].(map[string]any)
	if m["processor.ContractEvent.events_found"] != 3400.0 || m["processor.ContractEvent.avg_ms"] != 2.25 {
		t.Errorf("alpha metrics are not numbers: %v", m)
	}
	if _, ok := m["health.uptime"]; ok {
		t.Errorf("health details among the metrics: %v", m)
	}
	if h := alpha["health"].(map[string]any); h["uptime"] != "4h23m0s" || h["ContractEvent_status"] != "healthy" {
		t.Errorf("alpha health = %v", h)
	}
	if md := alpha["metadata"].(map[string]any); md["config_file"] != "/etc/cdp/alpha.yaml" || md["network"] != "pubnet" {
		t.Errorf("alpha metadata = %v", md)
	}
	if beta["status"] != "unhealthy" || beta["health"].(map[string]any)["last_error"] == nil {
		t.Errorf("beta = %v", beta)
	}
	// No uptime metric: time since registration (3h23m5s).
	if proc["type"] != "processor" || proc["uptime_seconds"] != 12185.0 {
		t.Errorf("processor type/uptime = %v/%v", proc["type"], proc["uptime_seconds"])
	}

	stdout, _, code = cp.run(t, "status", "cdp-beta", "-o", "json")
	var one map[string]any
	if err := json.Unmarshal([]byte(stdout), &one); err != nil || code != 0 {
		t.Fatalf("status <id> --json is not one JSON object (exit %d): %v\n%s", code, err, stdout)
	}
	if one["id"] != "cdp-beta" || one["uptime_seconds"] != 65.0 {
		t.Errorf("status cdp-beta --json = %v", one)
	}

	stdout, _, _ = cp.run(t, "list", "-o", "json")
	var again []Service
	if err := json.Unmarshal([]byte(stdout), &again); err != nil || len(again) != 3 {
		t.Fatalf("list -o json: %v (%d services)", err, len(again))
	}
}

func TestMetricsHistory(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.register(t, pipelineInfo("cdp-metrics", "metrics", "/etc/cdp/m.yaml", "pubnet"))
	// 10 minutes of heartbeats every 10 s (61 samples): a counter growing 5 per heartbeat
	// (0.5/s), a gauge bouncing between 0 and 10, and 3 unhealthy heartbeats in the middle.
	for i := 0; i <= 60; i++ {
		st := healthy
		if i >= 30 && i < 33 {
			st = unhealthy
		}
		cp.heartbeat(t, "cdp-metrics", st, map[string]string{
			"source.X.processed_ledgers": fmt.Sprint(100 + 5*i),
			"pipeline.lag":               fmt.Sprint(i * 7 % 11),
			"pipeline.uptime_seconds":    fmt.Sprint(10 * i),
			"health.pipeline_id":         "metrics",
			"health.restarts":            "0", // numeric, but a health detail: not summarised
		})
		if i < 60 {
			cp.clock.Advance(10 * time.Second)
		}
	}

	stdout, stderr, code := cp.run(t, "metrics", "cdp-metrics", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var h History
	if err := json.Unmarshal([]byte(stdout), &h); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Summary["health.restarts"]; ok || len(h.Summary) != 3 {
		t.Errorf("summaries of %d metrics (health details included?): %v", len(h.Summary), h.Summary)
	}
	if len(h.Samples) != 61 || h.ServiceID != "cdp-metrics" {
		t.Fatalf("%d samples of %q, want 61", len(h.Samples), h.ServiceID)
	}
	if s := h.Samples[31]; s.Status != "unhealthy" || s.Metrics["source.X.processed_ledgers"] != 255.0 {
		t.Errorf("sample 31 = %+v", s)
	}
	check := func(name string, first, last, mn, mx float64, rate *float64) {
		t.Helper()
		s, ok := h.Summary[name]
		if !ok {
			t.Fatalf("no summary of %s", name)
		}
		if s.Samples != 61 || s.First != first || s.Last != last || s.Min != mn || s.Max != mx {
			t.Errorf("%s: %+v, want first %v last %v min %v max %v over 61 samples", name, s, first, last, mn, mx)
		}
		switch {
		case rate == nil && s.RatePerSecond != nil:
			t.Errorf("%s: rate %v, want none (not a counter)", name, *s.RatePerSecond)
		case rate != nil && (s.RatePerSecond == nil || *s.RatePerSecond != *rate):
			t.Errorf("%s: rate %v, want %v", name, s.RatePerSecond, *rate)
		}
	}
	half, one := 0.5, 1.0
	check("source.X.processed_ledgers", 100, 400, 100, 400, &half)
	check("pipeline.uptime_seconds", 0, 600, 0, 600, &one)
	check("pipeline.lag", 0, 420%11, 0, 10, nil)

	// A shorter window and one metric.
	args := []string{"metrics", "cdp-metrics", "--duration", "5m", "--metric", "source.X.processed_ledgers", "-o", "json"}
	stdout, _, _ = cp.run(t, args...)
	h = History{}
	if err := json.Unmarshal([]byte(stdout), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Samples) != 31 || len(h.Summary) != 1 || h.Summary["source.X.processed_ledgers"].First != 250 {
		t.Fatalf("--duration 5m --metric: %d samples, summary %+v", len(h.Samples), h.Summary)
	}

	for name, args := range map[string][]string{
		"metrics":         {"metrics", "cdp-metrics"},
		"metrics_one":     {"metrics", "cdp-metrics", "--metric", "pipeline.lag", "--width", "12"},
		"metrics_missing": {"metrics", "cdp-metrics", "--metric", "nope"},
		"metrics_unknown": {"metrics", "cdp-metric"},
		"metrics_empty":   {"metrics", "cdp-metrics", "--duration", "1s"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "metrics_empty" {
				cp.clock.Advance(time.Minute)
				defer cp.clock.Advance(-time.Minute)
			}
			stdout, stderr, code := cp.run(t, args...)
			golden(t, name, cp.addr, args, stdout, stderr, code)
		})
	}
}

// frameCounter counts status table headers written to it and calls done at the third.
type frameCounter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	frames int
	done   func()
}

var headerRE = regexp.MustCompile(`(?m)^ID +TYPE +STATUS +UPTIME +INSTANCE +SHARD +PROGRESS$`)

func (f *frameCounter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.Write(p)
	f.frames = len(headerRE.FindAllIndex(f.buf.Bytes(), -1))
	if f.frames >= 3 {
		f.done()
	}
	return len(p), nil
}

func TestWatch(t *testing.T) {
	cp := startControlPlane(t, nil)
	cp.populate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := &frameCounter{done: cancel}
	app := &App{Stdout: out, Stderr: io.Discard, Now: cp.clock.Now}
	if code := app.Run(ctx, []string{"status", "--watch", "--interval", "20ms", "--control-plane-addr", cp.addr}); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.frames < 3 {
		t.Fatalf("watch drew %d frames before it was stopped:\n%s", out.frames, out.buf.String())
	}
}

func TestFlagsAnywhere(t *testing.T) {
	for _, tt := range []struct {
		args []string
		pos  string
	}{
		{[]string{"cdp-a", "--json"}, "cdp-a"},
		{[]string{"--json", "cdp-a"}, "cdp-a"},
		{[]string{"--json", "--", "--odd-id"}, "--odd-id"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, _, ok := (&App{Stdout: io.Discard, Stderr: io.Discard}).parse(fs, tt.args)
		if !ok || !*j || strings.Join(pos, " ") != tt.pos {
			t.Errorf("parse(%v) = %v, json %v, ok %v", tt.args, pos, *j, ok)
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 23*time.Minute + 10*time.Second: "23m 10s", time.Hour: "1h", 5 * time.Minute: "5m",
		4*time.Hour + 23*time.Minute + 59*time.Second: "4h 23m", 76 * time.Hour: "3d 4h", -time.Second: "0s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := sparkline([]float64{0, 1, 2, 3, 4, 5, 6, 7}, 40); got != "▁▂▃▄▅▆▇█" {
		t.Errorf("sparkline ramp = %q", got)
	}
	if got := sparkline([]float64{5, 5, 5}, 40); got != "▁▁▁" {
		t.Errorf("sparkline flat = %q", got)
	}
	if got := sparkline([]float64{0, 0, 10, 10}, 2); got != "▁█" {
		t.Errorf("sparkline resampled = %q", got)
	}
	if got := closeMatches("alpha", []Service{{ID: "cdp-alpha", Name: "alpha"}, {ID: "cdp-beta", Name: "beta"}}); strings.Join(got, ",") != "cdp-alpha" {
		t.Errorf("closeMatches = %v", got)
	}
}
