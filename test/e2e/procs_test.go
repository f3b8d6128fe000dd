package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// bins holds the binaries built once by TestMain.
var bins struct{ cdpd, flowctl string }

func buildBinaries(dir string) error {
	b, err := testproc.Build(dir, testproc.BuildOptions{Race: true})
	if err != nil {
		return err
	}
	bins.cdpd, bins.flowctl = b.CDPD, b.Flowctl
	return nil
}

// controlPlane is a `flowctl server` process.
type controlPlane struct {
	*testproc.Proc
	addr string
	port int
}

func startControlPlane(t testing.TB, port int, extra ...string) *controlPlane {
	t.Helper()
	if port == 0 {
		port = testproc.FreePort(t)
	}
	args := append([]string{"server", "--address", "127.0.0.1", "--port", strconv.Itoa(port),
		"--no-persistence", "--heartbeat-ttl", "5s", "--janitor-interval", "1s"}, extra...)
	p := testproc.Start(t, "flowctl-server", nil, bins.flowctl, args...)
	cp := &controlPlane{Proc: p, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port}
	testproc.WaitTCP(t, 20*time.Second, "control plane listening", cp.addr)
	return cp
}

// list returns every registered service (healthy or not) by id.
func (cp *controlPlane) list(t testing.TB) map[string]*flowctlv1.ComponentStatusResponse {
	t.Helper()
	conn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := flowctlv1.NewControlPlaneServiceClient(conn).ListComponents(ctx, &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if err != nil {
		return nil
	}
	out := map[string]*flowctlv1.ComponentStatusResponse{}
	for _, c := range resp.Components {
		out[c.GetComponent().GetId()] = c
	}
	return out
}

// daemonProc is a cdpd process.
type daemonProc struct {
	*testproc.Proc
	http     string
	stateDir string
}

func startDaemon(t testing.TB, confDir, stateDir, cpAddr string, extraEnv ...string) *daemonProc {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testproc.FreePort(t))
	env := append([]string{"FLOWCTL_ENDPOINT=" + cpAddr}, extraEnv...)
	p := testproc.Start(t, "cdpd", env, bins.cdpd, "--config-dir", confDir, "--state-dir", stateDir,
		"--http-addr", httpAddr, "--heartbeat-interval", "500ms", "--log-format", "json", "--drain-timeout", "10s")
	d := &daemonProc{Proc: p, http: "http://" + httpAddr, stateDir: stateDir}
	testproc.Eventually(t, 60*time.Second, "cdpd ready", func() (bool, string) {
		code, body := testproc.HTTPGet(d.http + "/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	return d
}

// pipelineStatus mirrors daemon.PipelineStatus (decoded from the API, as a client would).
type pipelineStatus struct {
	Name          string             `json:"name"`
	ServiceID     string             `json:"service_id"`
	File          string             `json:"file"`
	Status        string             `json:"status"`
	Generation    int64              `json:"generation"`
	ConfigHash    string             `json:"config_hash"`
	Restarts      int                `json:"restarts"`
	LastError     string             `json:"last_error"`
	ConfigError   string             `json:"config_error"`
	UptimeSeconds float64            `json:"uptime_seconds"`
	CurrentLedger uint32             `json:"current_ledger"`
	Metrics       map[string]float64 `json:"metrics"`
	Registered    bool               `json:"registered"`
}

func (d *daemonProc) pipelines(t testing.TB) map[string]pipelineStatus {
	t.Helper()
	code, body := testproc.HTTPGet(d.http + "/api/v1/pipelines")
	if code != 200 {
		t.Fatalf("GET /api/v1/pipelines: %d %s", code, body)
	}
	var list []pipelineStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decoding /api/v1/pipelines: %v: %s", err, body)
	}
	out := map[string]pipelineStatus{}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

func (d *daemonProc) metrics(t testing.TB) string {
	t.Helper()
	code, body := testproc.HTTPGet(d.http + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}
