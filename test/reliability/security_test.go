package reliability

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/daemon"
	"github.com/withobsrvr/cdpd/internal/testpki"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// Security (issue 9 part 6): the HTTP server binds to loopback by default; secrets expanded
// from the environment never appear in the logs, the HTTP API (every endpoint) or the
// heartbeats the control plane stores (metrics and history), also when a config is broken in a
// way that echoes values or a component's runtime error quotes them (issue 17: a sink's host
// in its DNS error, an RPC URL's user name and query in its connection error); mutual TLS with
// a wrong CA is refused by both ends.

// TestHTTPDefaultLoopback: without --http-addr, cdpd's HTTP server listens on loopback only.
func TestHTTPDefaultLoopback(t *testing.T) {
	host, _, err := net.SplitHostPort(daemon.DefaultHTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("daemon.DefaultHTTPAddr %q is not a loopback address", daemon.DefaultHTTPAddr)
	}
	// Start the real binary without --http-addr (nor CDPD_HTTP_ADDR) and read the addresses
	// its sockets listen on from /proc. The default port may be taken on a shared machine:
	// then the binary cannot be checked, only the constant.
	if l, err := net.Listen("tcp", daemon.DefaultHTTPAddr); err != nil {
		t.Skipf("default address %s busy (%v): only the constant was checked", daemon.DefaultHTTPAddr, err)
	} else {
		l.Close()
	}
	conf := t.TempDir()
	testproc.WriteFile(t, filepath.Join(conf, "p.yaml"), pipelineYAML(PipelineSpec{Name: "loopback"}))
	if _, set := os.LookupEnv("CDPD_HTTP_ADDR"); set {
		t.Skip("CDPD_HTTP_ADDR is set in the test environment: the default cannot be observed")
	}
	d := startDaemon(t, DaemonOptions{ConfDir: conf, HTTPAddr: "-"})
	var addrs []string
	testproc.Eventually(t, 30*time.Second, "cdpd listening", func() (bool, string) {
		if d.Exited() {
			t.Fatalf("cdpd exited: %s", testproc.Tail(d.Output(), 2048))
		}
		addrs = testproc.ListenAddrs(t, d.Pid())
		return len(addrs) > 0, "no listening socket yet"
	})
	t.Logf("cdpd listens on %v", addrs)
	for _, a := range addrs {
		h, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			t.Errorf("cdpd listens on %s by default, want loopback only", a)
		}
	}
}

// TestHTTPAddrEmptyRefused: an empty CDPD_HTTP_ADDR (a deployment template whose variable is
// unset) must not make cdpd listen on every interface at a random port (net.Listen's meaning
// of ""): it is refused at start.
func TestHTTPAddrEmptyRefused(t *testing.T) {
	cmd := exec.Command(bins.cdpd, "--config-dir", t.TempDir(), "--state-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "CDPD_HTTP_ADDR=")
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("cdpd with an empty CDPD_HTTP_ADDR exited 0")
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("cdpd with an empty CDPD_HTTP_ADDR started (it listens wherever net.Listen(\"\") puts it)")
	}
}

// TestSecretsNeverLeak: secrets expanded from ${VAR} in pipeline files, used in a sink's
// password and (wrongly) in fields whose errors tend to echo values, must not appear in the
// log, any HTTP endpoint, or what the control plane stores.
func TestSecretsNeverLeak(t *testing.T) {
	secrets := map[string]string{
		"RELI_PG_PASSWORD": "pw-Zq81xKv0Tt9",        // a sink password (the sink cannot connect)
		"RELI_BAD_NUMBER":  "num-Hc47PmQa2wX",       // a number field given a secret by mistake
		"RELI_BAD_NETWORK": "net-Ry62sLd0BvN",       // a network name given a secret by mistake
		"RELI_BAD_EDIT":    "edit-Uk35nWq8JeZ",      // a bad edit of a running pipeline
		"RELI_BAD_TYPE":    "type-Pw93mXc1VsA",      // a component type name from a secret
		"RELI_BAD_YAML":    "yaml-Lb20tGh7NqE}",     // breaks the YAML after expansion
		"RELI_PG_HOST":     "h0st-Kq20vXr8.invalid", // a sink host: in the DNS error (issue 17)
		"RELI_RPC_KEY":     "rpck-Tz91bNq4Wm",       // an RPC URL's query: in the connection error
		"RELI_RPC_USER":    "rpcu-Ld53Vh",           // an RPC URL's user name
	}
	var env []string
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	pgPort := testproc.FreePort(t) // nothing listens there
	conf := t.TempDir()
	pg := fmt.Sprintf("{type: SaveToPostgreSQL, config: {host: 127.0.0.1, port: %d, database: cdp, username: cdp, password: \"${RELI_PG_PASSWORD}\", connect_timeout: 2}}", pgPort)
	testproc.WriteFile(t, filepath.Join(conf, "pg.yaml"), pipelineYAML(PipelineSpec{Name: "pgsink", Consumers: []string{pg}}))
	testproc.WriteFile(t, filepath.Join(conf, "badnum.yaml"), pipelineYAML(PipelineSpec{Name: "badnum",
		Processors: []string{"{type: FaultInjector, config: {mode: pass, every: \"${RELI_BAD_NUMBER}\"}}"}}))
	testproc.WriteFile(t, filepath.Join(conf, "badnet.yaml"), strings.Replace(pipelineYAML(PipelineSpec{Name: "badnet"}),
		"network: pubnet", "network: \"${RELI_BAD_NETWORK}\"", 1))
	testproc.WriteFile(t, filepath.Join(conf, "badtype.yaml"), pipelineYAML(PipelineSpec{Name: "badtype",
		Processors: []string{"{type: \"${RELI_BAD_TYPE}\", config: {}}"}}))
	testproc.WriteFile(t, filepath.Join(conf, "badyaml.yaml"), pipelineYAML(PipelineSpec{Name: "badyaml",
		Processors: []string{"{type: LatestLedger, config: {network: ${RELI_BAD_YAML}}}"}}))
	testproc.WriteFile(t, filepath.Join(conf, "edited.yaml"), pipelineYAML(PipelineSpec{Name: "edited"}))
	testproc.WriteFile(t, filepath.Join(conf, "pghost.yaml"), pipelineYAML(PipelineSpec{Name: "pghost", Consumers: []string{
		"{type: SaveToPostgreSQL, config: {host: \"${RELI_PG_HOST}\", port: 5432, database: cdp, username: cdp, connect_timeout: 2}}"}}))
	rpcPort := testproc.FreePort(t) // nothing listens there
	testproc.WriteFile(t, filepath.Join(conf, "rpc.yaml"), fmt.Sprintf(`pipeline:
  name: rpcleak
  source:
    type: RPCSourceAdapter
    config: {rpc_url: "http://${RELI_RPC_USER}:pw@127.0.0.1:%d/rpc?apikey=${RELI_RPC_KEY}", start_ledger: %d, network: pubnet}
  processors: [{type: LatestLedger, config: {}}]
  consumers: [{type: FaultyConsumer, config: {mode: pass}}]
`, rpcPort, fixture.Ledger58752000))

	cp := startControlPlane(t, CPOptions{})
	d := startDaemon(t, DaemonOptions{ConfDir: conf, Endpoint: cp.Addr, Env: env,
		Args: []string{"--log-level", "debug"}})
	cp.WaitRegistered(t, 30*time.Second, control.ServiceID("", "pgsink"), control.ServiceID("", "edited"),
		control.ServiceID("", "pghost"), control.ServiceID("", "rpcleak"))
	// The bad edit of a running pipeline: the old version keeps running, the error is reported.
	testproc.WriteFile(t, filepath.Join(conf, "edited.yaml"), pipelineYAML(PipelineSpec{Name: "edited",
		Processors: []string{"{type: FaultInjector, config: {mode: pass, after: \"${RELI_BAD_EDIT}\"}}"}}))
	testproc.Eventually(t, 20*time.Second, "every broken file reported and the sink failing", func() (bool, string) {
		errs := d.Errors(t)
		for _, f := range []string{"badnum.yaml", "badnet.yaml", "badtype.yaml", "badyaml.yaml", "edited.yaml"} {
			if !strings.Contains(errs, f) {
				return false, f + " not in /api/v1/errors: " + errs
			}
		}
		for _, name := range []string{"pgsink", "pghost", "rpcleak"} {
			if p, _ := d.Pipeline(t, name); p.LastError == "" {
				return false, name + " has no error yet"
			}
		}
		return true, ""
	})
	// Let a few heartbeats carry the errors to the control plane: two more of every
	// registered pipeline's after pgsink's error arrived.
	testproc.Eventually(t, 20*time.Second, "the sinks' and the source's errors heartbeated", func() (bool, string) {
		for _, name := range []string{"pgsink", "pghost", "rpcleak"} {
			if s := cp.List(t)[control.ServiceID("", name)]; s.GetMetrics()["health.last_error"] == "" {
				return false, name + " has no health.last_error yet"
			}
		}
		return true, ""
	})
	m := d.Metrics(t)
	want := metricSum(m, "cdpd_control_heartbeats_total") + 2*metricSum(m, "cdpd_control_registered_pipelines")
	testproc.Eventually(t, 20*DefaultHeartbeat, "two more heartbeats of every registered pipeline", func() (bool, string) {
		n := metricSum(d.Metrics(t), "cdpd_control_heartbeats_total")
		return n >= want, fmt.Sprintf("%v heartbeats, want %v", n, want)
	})

	type place struct{ name, text string }
	var places []place
	places = append(places, place{"cdpd log", d.Output()}, place{"flowctl server log", cp.Output()})
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/errors", "/metrics", "/readyz", "/healthz",
		"/api/v1/pipelines/pgsink", "/api/v1/pipelines/edited", "/api/v1/pipelines/badnum",
		"/api/v1/pipelines/badnet", "/api/v1/pipelines/badtype", "/api/v1/pipelines/badyaml",
		"/api/v1/pipelines/pghost", "/api/v1/pipelines/rpcleak"} {
		code, body := d.Get(path)
		places = append(places, place{fmt.Sprintf("GET %s (%d)", path, code), body})
	}
	for id, s := range cp.List(t) {
		places = append(places, place{"control plane metrics of " + id, fmt.Sprint(s.GetMetrics(), s.GetComponent().GetMetadata())})
		var hist strings.Builder
		for _, h := range cp.History(t, id) {
			fmt.Fprint(&hist, h.GetMetrics())
		}
		places = append(places, place{"control plane history of " + id, hist.String()})
		out, _ := flowctl(t, cp.Addr, "status", id, "--json")
		places = append(places, place{"flowctl status " + id, out})
	}
	for _, p := range places {
		for k, v := range secrets {
			needle := strings.TrimSuffix(v, "}")
			if i := strings.Index(p.text, needle); i >= 0 {
				t.Errorf("secret %s appears in %s: ...%s...", k, p.name, p.text[max(0, i-200):min(len(p.text), i+len(needle)+40)])
			}
		}
	}
	t.Logf("searched %d places (logs, %d HTTP endpoints, control-plane metrics, history and flowctl status of %d services) for %d secrets",
		len(places), 13, len(cp.List(t)), len(secrets))
}

// TestMTLSWrongCA: a control plane that requires client certificates of CA A. A cdpd that
// trusts another CA for the server cannot register; a cdpd whose client certificate comes from
// another CA is refused by the server; a cdpd with the right files registers (the control).
func TestMTLSWrongCA(t *testing.T) {
	a, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cp := startControlPlane(t, CPOptions{Extra: []string{"--tls-cert", a.ServerCertFile, "--tls-key", a.ServerKeyFile, "--tls-ca-cert", a.CAFile}})
	conf := t.TempDir()
	testproc.WriteFile(t, filepath.Join(conf, "p.yaml"), pipelineYAML(PipelineSpec{Name: "tls"}))
	tlsEnv := func(cert, key, ca string) []string {
		return []string{"FLOWCTL_TLS_CERT=" + cert, "FLOWCTL_TLS_KEY=" + key, "FLOWCTL_TLS_CA=" + ca}
	}
	start := func(instance string, env []string) *daemonProc {
		return startDaemon(t, DaemonOptions{ConfDir: conf, Endpoint: cp.Addr, Env: env, Args: []string{"--instance", instance}})
	}
	wrongCA := start("wrongca", tlsEnv(a.ClientCertFile, a.ClientKeyFile, a.OtherCAFile))
	otherCert := start("othercert", tlsEnv(b.ClientCertFile, b.ClientKeyFile, a.CAFile))
	good := start("good", tlsEnv(a.ClientCertFile, a.ClientKeyFile, a.CAFile))

	list := func() (string, int) {
		return flowctl(t, cp.Addr, "list", "-o", "json", "--tls-cert", a.ClientCertFile, "--tls-key", a.ClientKeyFile, "--tls-ca-cert", a.CAFile)
	}
	goodID := control.ServiceID("good", "tls")
	testproc.Eventually(t, 30*time.Second, "the cdpd with the right certificates registers", func() (bool, string) {
		out, code := list()
		return code == 0 && strings.Contains(out, goodID), out
	})
	// The others had as long and more to get in: each has tried and been refused at least
	// twice (a refused TLS handshake fails the registration RPC) before the list is read.
	for name, d := range map[string]*daemonProc{"wrongca": wrongCA, "othercert": otherCert} {
		testproc.Eventually(t, 30*time.Second, name+": two refused registrations", func() (bool, string) {
			n := metricSum(d.Metrics(t), "cdpd_control_registration_failures_total")
			return n >= 2, fmt.Sprintf("%v registration failures", n)
		})
	}
	out, _ := list()
	for _, id := range []string{control.ServiceID("wrongca", "tls"), control.ServiceID("othercert", "tls")} {
		if strings.Contains(out, id) {
			t.Errorf("%s registered despite a wrong CA: %s", id, out)
		}
	}
	for name, d := range map[string]*daemonProc{"wrongca": wrongCA, "othercert": otherCert} {
		p, _ := d.Pipeline(t, "tls")
		if p.Registered {
			t.Errorf("%s: cdpd says its pipeline is registered", name)
		}
		if p.CurrentLedger != sharedDS.Last {
			t.Logf("%s: pipeline at %d (tip %d)", name, p.CurrentLedger, sharedDS.Last)
		}
	}
	if !strings.Contains(strings.ToLower(wrongCA.Output()), "certificate") {
		t.Errorf("the cdpd trusting the wrong CA does not log a certificate error")
	}
	// A client certificate from another CA (flowctl CLI this time) is refused by the server.
	if out, code := flowctl(t, cp.Addr, "list", "--tls-cert", b.ClientCertFile, "--tls-key", b.ClientKeyFile, "--tls-ca-cert", a.CAFile); code == 0 {
		t.Errorf("the server accepted a client certificate of another CA: %s", out)
	}
	// And no client certificate at all.
	if out, code := flowctl(t, cp.Addr, "list", "--tls-ca-cert", a.CAFile); code == 0 {
		t.Errorf("the server accepted a client without a certificate: %s", out)
	}
	_ = good
}
