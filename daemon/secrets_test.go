package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

// inProcessPlane is a flowctl control plane served in this process, persisting to a bbolt file.
type inProcessPlane struct {
	addr string
	db   string
	srv  *server.Server
	logs *bytes.Buffer
	stop func()
}

func startPlane(t *testing.T) *inProcessPlane { return startPlaneWith(t, server.Options{}) }

// startPlaneWith starts a control plane with opts (DBPath, FlushInterval and Logger are set here).
func startPlaneWith(t *testing.T, opts server.Options) *inProcessPlane {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	db := filepath.Join(t.TempDir(), "flowctl.db")
	opts.DBPath, opts.FlushInterval = db, 50*time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: logs}, nil))
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = server.Serve(ctx, lis, srv, nil) })
	p := &inProcessPlane{addr: lis.Addr().String(), db: db, srv: srv, logs: logs}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if err := srv.Close(); err != nil {
				t.Errorf("closing the control plane: %v", err)
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

func (p *inProcessPlane) status(id string) *flowctlv1.ComponentStatusResponse {
	s, err := p.srv.GetComponentStatus(context.Background(), &flowctlv1.ComponentStatusRequest{ServiceId: id})
	if err != nil {
		return nil
	}
	return s
}

func (p *inProcessPlane) history(t *testing.T, id string) string {
	h, err := p.srv.GetHistory(context.Background(), &cdpdv1.GetHistoryRequest{ServiceId: id})
	if err != nil {
		t.Fatalf("history of %s: %v", id, err)
	}
	return fmt.Sprint(h.GetSamples())
}

// TestRuntimeErrorsNeverLeakSecrets (issue 17 item 1): an RPC source whose URL carries
// ?apikey=${RPC_KEY} and whose server is down fails with the URL in its error; a PostgreSQL
// sink whose host is a secret fails on the DNS lookup of that host. Neither secret may appear
// in the daemon's log, its HTTP API (last_error, health details, errors), the heartbeats the
// control plane received, its history, its log or its bbolt file.
func TestRuntimeErrorsNeverLeakSecrets(t *testing.T) {
	secrets := map[string]string{
		"CDPD_T17_RPC_KEY":  "k3y-Vq81xKv0Tt9w",
		"CDPD_T17_PG_HOST":  "h0st-Mz52qLe7Hs.invalid",
		"CDPD_T17_RPC_USER": "us3r-Bn40aQz",
		"CDPD_T17_RPC_PASS": "p4ss-Xc61wRt",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now: every request is refused
	conf := t.TempDir()
	writeAtomic(t, filepath.Join(conf, "rpc.yaml"), fmt.Sprintf(`pipeline:
  name: rpc-leak
  source:
    type: RPCSourceAdapter
    config: {rpc_url: "http://${CDPD_T17_RPC_USER}:${CDPD_T17_RPC_PASS}@%s/rpc?apikey=${CDPD_T17_RPC_KEY}", start_ledger: 58752000, network: pubnet}
  processors: [{type: LatestLedger, config: {}}]
  consumers: [{type: StdoutConsumer, config: {}}]
`, deadAddr))
	writeAtomic(t, filepath.Join(conf, "pg.yaml"), `pipeline:
  name: pg-leak
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: /nonexistent, network: pubnet, start_ledger: 58752000, end_ledger: 58752001}
  consumers:
    - type: SaveToPostgreSQL
      config: {host: "${CDPD_T17_PG_HOST}", port: 5432, database: cdp, username: cdp, connect_timeout: 2}
`)
	cp := startPlane(t)
	var logs bytes.Buffer
	base, stop := runDaemonLogs(t, Config{ConfigDir: conf, FlowctlEndpoint: cp.addr, HeartbeatInterval: 200 * time.Millisecond}, &logs)
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	ids := []string{control.ServiceID("", "rpc-leak"), control.ServiceID("", "pg-leak")}
	testutil.EventuallyWhy(t, 30*time.Second, "both pipelines failed and heartbeated their errors", func() (bool, string) {
		for _, name := range []string{"rpc-leak", "pg-leak"} {
			if s := statusOf(t, base, name); s.LastError == "" {
				return false, name + " has no last_error yet"
			}
		}
		for _, id := range ids {
			s := cp.status(id)
			if s == nil || s.GetMetrics()["health.last_error"] == "" {
				return false, id + " has no health.last_error at the control plane yet"
			}
		}
		return true, ""
	})
	rpc, pg := statusOf(t, base, "rpc-leak"), statusOf(t, base, "pg-leak")
	t.Logf("rpc-leak last_error: %s", rpc.LastError)
	t.Logf("pg-leak last_error: %s", pg.LastError)

	type place struct{ name, text string }
	var places []place
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/errors", "/api/v1/pipelines/rpc-leak", "/api/v1/pipelines/pg-leak", "/metrics"} {
		code, body := get(base + path)
		places = append(places, place{fmt.Sprintf("GET %s (%d)", path, code), body})
	}
	for _, id := range ids {
		places = append(places, place{"control plane status of " + id, fmt.Sprint(cp.status(id))})
		places = append(places, place{"control plane history of " + id, cp.history(t, id)})
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	stopped = true
	cp.stop()
	db, err := os.ReadFile(cp.db)
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, place{"cdpd log", logs.String()}, place{"control plane log", cp.logs.String()},
		place{"control plane database", string(db)})
	for _, p := range places {
		for k, v := range secrets {
			if i := strings.Index(p.text, v); i >= 0 {
				t.Errorf("secret %s appears in %s: ...%s...", k, p.name, p.text[max(0, i-160):min(len(p.text), i+len(v)+40)])
			}
		}
	}
	// What is left still says what went wrong (and, where only the host hid a value, names
	// the variable it hides; the RPC source hides its URL's secrets itself).
	if !strings.Contains(rpc.LastError, "connection refused") {
		t.Errorf("rpc-leak's last_error lost its cause: %s", rpc.LastError)
	}
	if !strings.Contains(pg.LastError, "lookup ${CDPD_T17_PG_HOST}") {
		t.Errorf("pg-leak's last_error lost its cause or the variable it hides: %s", pg.LastError)
	}
}
