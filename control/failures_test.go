package control_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/control/tlsutil"
	"github.com/withobsrvr/cdpd/internal/testpki"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestServerRestartedEmptyReregistersEverything(t *testing.T) {
	for _, tc := range []struct {
		name       string
		down       bool // no server listens for a while: calls time out meanwhile
		rpcTimeout time.Duration
	}{
		{name: "immediate restart", rpcTimeout: 2 * time.Second},
		{name: "down until calls time out", down: true, rpcTimeout: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, serverOpt{})
			promReg := prometheus.NewRegistry()
			var logs syncBuffer
			const interval, backoffMax = 200 * time.Millisecond, 300 * time.Millisecond
			c := runClient(t, control.Config{
				Endpoint: ts.addr, HeartbeatInterval: interval, BackoffMax: backoffMax,
				RPCTimeout: tc.rpcTimeout, Registerer: promReg,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			const n = 50
			ids := make([]string, n)
			for i := range n {
				r := reg(fmt.Sprintf("restart-%d", i))
				ids[i] = r.ServiceID
				c.Attach(r, newPipeline(map[string]float64{"i": float64(i)}, nil))
			}
			testutil.Eventually(t, 20*time.Second, "all registered", func() bool {
				for _, id := range ids {
					if !c.Registered(id) {
						return false
					}
				}
				return ts.count() == n
			})

			ts.stop()
			if tc.down {
				// Down long enough that every pipeline is unconfirmed and calls time out.
				testutil.EventuallyWhy(t, 20*time.Second, "every pipeline unconfirmed, calls failing", func() (bool, string) {
					for _, id := range ids {
						if c.Registered(id) {
							return false, id + " still Registered without a server"
						}
					}
					f := metricValue(t, promReg, "cdpd_control_heartbeat_failures_total")
					return f >= 1, fmt.Sprintf("%v heartbeat failures", f)
				})
			}
			start := time.Now()
			ts2 := startServer(t, serverOpt{addr: ts.addr})
			testutil.Eventually(t, 30*time.Second, "all re-registered with the new server", func() bool {
				if ts2.count() != n {
					return false
				}
				for _, id := range ids {
					if !c.Registered(id) {
						return false
					}
				}
				return true
			})
			t.Logf("all %d pipelines back %v after the new server started (interval %v, backoff max %v)",
				n, time.Since(start).Round(time.Millisecond), interval, backoffMax)
			for i, id := range ids {
				st, err := ts2.status(id)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if st.GetComponent().GetMetadata()["service_type"] != "cdp-pipeline" {
					t.Fatalf("%s lost its metadata: %v", id, st.GetComponent().GetMetadata())
				}
				testutil.Eventually(t, 10*time.Second, id+" heartbeats", func() bool {
					st, err := ts2.status(id)
					return err == nil && st.GetMetrics()["i"] == fmt.Sprint(i)
				})
			}
			if got := metricValue(t, promReg, "cdpd_control_reregistrations_total"); got != n {
				t.Errorf("cdpd_control_reregistrations_total = %v, want %d", got, n)
			}
			if got := metricValue(t, promReg, "cdpd_control_registrations_total"); got != 2*n {
				t.Errorf("cdpd_control_registrations_total = %v, want %d", got, 2*n)
			}
			if got := metricValue(t, promReg, "cdpd_control_reconnects_total"); got < 1 {
				t.Errorf("cdpd_control_reconnects_total = %v, want >= 1", got)
			}
			if got := ts2.conns.total.Load(); got != 1 {
				t.Errorf("new server saw %d connections, want 1", got)
			}
			out := logs.String()
			for _, want := range []string{"connection to the control plane lost", "connection to the control plane re-established"} {
				if strings.Count(out, want) != 1 {
					t.Errorf("want one %q log line, got:\n%s", want, out)
				}
			}
		})
	}
}

// notFoundAsUnknown mimics upstream flowctl: heartbeats of unknown ids fail with
// codes.Unknown and a "not found" message.
type notFoundAsUnknown struct {
	*server.Server
	heartbeats atomic.Int64
}

func (s *notFoundAsUnknown) Heartbeat(ctx context.Context, req *flowctlv1.HeartbeatRequest) (*emptypb.Empty, error) {
	s.heartbeats.Add(1)
	resp, err := s.Server.Heartbeat(ctx, req)
	if status.Code(err) == codes.NotFound {
		return nil, errors.New("service " + req.GetServiceId() + " not found")
	}
	return resp, err
}

func TestUpstreamNotFoundReregisters(t *testing.T) {
	var wrapped *notFoundAsUnknown
	ts := startServer(t, serverOpt{wrap: func(s *server.Server) flowctlv1.ControlPlaneServiceServer {
		wrapped = &notFoundAsUnknown{Server: s}
		return wrapped
	}})
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 100 * time.Millisecond})
	r := reg("Forgotten")
	c.Attach(r, newPipeline(map[string]float64{"x": 1}, nil))
	testutil.Eventually(t, 10*time.Second, "registered", func() bool { return c.Registered(r.ServiceID) })
	// The control plane forgets the pipeline (e.g. an operator removed it).
	if _, err := ts.srv.UnregisterComponent(context.Background(), &flowctlv1.UnregisterRequest{ServiceId: r.ServiceID}); err != nil {
		t.Fatal(err)
	}
	before := wrapped.heartbeats.Load()
	testutil.Eventually(t, 10*time.Second, "re-registered after an upstream-style not found", func() bool {
		st, err := ts.status(r.ServiceID)
		return err == nil && st.GetMetrics()["x"] == "1" && wrapped.heartbeats.Load() > before
	})
}

// rejecting answers every registration with PermissionDenied.
type rejecting struct {
	flowctlv1.UnimplementedControlPlaneServiceServer
	registers atomic.Int64
}

func (s *rejecting) RegisterComponent(context.Context, *flowctlv1.RegisterRequest) (*flowctlv1.RegisterResponse, error) {
	s.registers.Add(1)
	return nil, status.Error(codes.PermissionDenied, "not on the allow list")
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRejectedRegistrationIsLoggedOnceAndNotSpun(t *testing.T) {
	rej := &rejecting{}
	ts := startServer(t, serverOpt{wrap: func(*server.Server) flowctlv1.ControlPlaneServiceServer { return rej }})
	var logs syncBuffer
	c := runClient(t, control.Config{
		Endpoint: ts.addr, HeartbeatInterval: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	r := reg("Denied")
	c.Attach(r, newPipeline(nil, nil))
	start := time.Now()
	testutil.Eventually(t, 10*time.Second, "the first attempt", func() bool { return rej.registers.Load() >= 1 })
	testutil.Eventually(t, 20*time.Second, "five more attempts", func() bool { return rej.registers.Load() >= 6 })
	if c.Registered(r.ServiceID) {
		t.Fatal("Registered after PermissionDenied")
	}
	// Retried every BackoffMax (200ms), not spun: five retries take at least 5 × 200ms (a
	// lower bound, which a slow machine only makes longer).
	if d := time.Since(start); d < 5*200*time.Millisecond {
		t.Fatalf("%d registration attempts within %v: the client spins", rej.registers.Load(), d)
	}
	out := logs.String()
	if got := strings.Count(out, "control plane rejects the pipeline"); got != 1 {
		t.Fatalf("rejection logged %d times, want once:\n%s", got, out)
	}
	for _, want := range []string{"PermissionDenied", "not on the allow list", "pipeline=Denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("rejection log lacks %q:\n%s", want, out)
		}
	}
}

func TestTLS(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := func(t *testing.T, clientCA string) *tls.Config {
		conf, err := tlsutil.ServerConfig(certs.ServerCertFile, certs.ServerKeyFile, clientCA)
		if err != nil {
			t.Fatal(err)
		}
		return conf
	}
	tests := []struct {
		name     string
		clientCA string // server side: client certificates required when set
		cfg      control.Config
		ok       bool
		logs     string // the warning names the cause
	}{
		{name: "TLS", cfg: control.Config{TLSCA: certs.CAFile}, ok: true},
		{name: "mTLS", clientCA: certs.CAFile,
			cfg: control.Config{TLSCA: certs.CAFile, TLSCert: certs.ClientCertFile, TLSKey: certs.ClientKeyFile}, ok: true},
		{name: "wrong CA", cfg: control.Config{TLSCA: certs.OtherCAFile}, logs: "certificate"},
		{name: "mTLS without client certificate", clientCA: certs.CAFile, cfg: control.Config{TLSCA: certs.CAFile}},
		{name: "plaintext client to TLS server", cfg: control.Config{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, serverOpt{tls: serverTLS(t, tc.clientCA)})
			cfg := tc.cfg
			cfg.Endpoint = ts.addr
			cfg.HeartbeatInterval = 100 * time.Millisecond
			cfg.BackoffMax = 200 * time.Millisecond
			cfg.RPCTimeout = 500 * time.Millisecond
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			promReg := prometheus.NewRegistry()
			cfg.Registerer = promReg
			c := runClient(t, cfg)
			r := reg("Secure")
			c.Attach(r, newPipeline(map[string]float64{"x": 7}, nil))
			if tc.ok {
				testutil.Eventually(t, 10*time.Second, "registration over TLS", func() bool {
					st, err := ts.status(r.ServiceID)
					return c.Registered(r.ServiceID) && err == nil && st.GetMetrics()["x"] == "7"
				})
				return
			}
			// Three failed attempts, then: not registered, and the failure warned about once.
			testutil.Eventually(t, 20*time.Second, "three failed registrations", func() bool {
				return metricValue(t, promReg, "cdpd_control_registration_failures_total") >= 3
			})
			if c.Registered(r.ServiceID) || ts.count() != 0 {
				t.Fatalf("registered despite a failing handshake (server has %d services)", ts.count())
			}
			out := logs.String()
			if strings.Count(out, "control plane call failed") != 1 || !strings.Contains(out, tc.logs) {
				t.Fatalf("want one warning naming %q, got:\n%s", tc.logs, out)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]control.Config{
		"missing CA file":     {Endpoint: "127.0.0.1:1", TLSCA: dir + "/missing.pem"},
		"cert without key":    {Endpoint: "127.0.0.1:1", TLSCert: dir + "/c.pem"},
		"URL instead of host": {Endpoint: "http://localhost:8080"},
		"host without port":   {Endpoint: "localhost"},
	} {
		if _, err := control.NewClient(cfg); err == nil {
			t.Errorf("%s: NewClient accepted %+v", name, cfg)
		}
	}
}

// TestRefusedRegistrationIsReported (issue 17 item 4): a registration the control plane
// refuses (here its registry is full: ResourceExhausted) used to be visible only as
// registered=false. Registration says why, says that the control plane answered, and
// cdpd_control_refused_pipelines counts it; all of it clears once the pipeline registers.
func TestRefusedRegistrationIsReported(t *testing.T) {
	ts := startServer(t, serverOpt{server: server.Options{MaxServices: 1}})
	promReg := prometheus.NewRegistry()
	c := runClient(t, control.Config{Endpoint: ts.addr, HeartbeatInterval: 100 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond, Registerer: promReg})
	first, second := reg("First"), reg("Second")
	c.Attach(first, newPipeline(nil, nil))
	testutil.Eventually(t, 10*time.Second, "the first registered", func() bool { return c.Registered(first.ServiceID) })
	c.Attach(second, newPipeline(nil, nil))
	testutil.EventuallyWhy(t, 10*time.Second, "the refusal reported", func() (bool, string) {
		st := c.Registration(second.ServiceID)
		return st.Refused, fmt.Sprintf("%+v", st)
	})
	st := c.Registration(second.ServiceID)
	if st.Registered || !strings.Contains(st.Error, "register: ResourceExhausted: registry full") {
		t.Errorf("Registration of the refused pipeline: %+v", st)
	}
	if got := c.Registration(first.ServiceID); !got.Registered || got.Error != "" || got.Refused {
		t.Errorf("Registration of the registered pipeline: %+v", got)
	}
	if v := metricValue(t, promReg, "cdpd_control_refused_pipelines"); v != 1 {
		t.Errorf("cdpd_control_refused_pipelines = %v, want 1", v)
	}

	// Room again: the retry registers it and the report clears.
	if err := c.Detach(context.Background(), first.ServiceID); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the second registered", func() bool { return c.Registered(second.ServiceID) })
	if got := c.Registration(second.ServiceID); got.Error != "" || got.Refused {
		t.Errorf("after registering: %+v", got)
	}
	if v := metricValue(t, promReg, "cdpd_control_refused_pipelines"); v != 0 {
		t.Errorf("cdpd_control_refused_pipelines = %v after the registration", v)
	}
}

// A control plane that cannot be reached is no refusal: the error says why, Refused is false.
func TestUnreachableIsNoRefusal(t *testing.T) {
	c := runClient(t, control.Config{Endpoint: "127.0.0.1:1", HeartbeatInterval: 100 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond, RPCTimeout: 200 * time.Millisecond})
	r := reg("Lonely")
	c.Attach(r, newPipeline(nil, nil))
	testutil.EventuallyWhy(t, 10*time.Second, "the failure reported", func() (bool, string) {
		st := c.Registration(r.ServiceID)
		return st.Error != "", fmt.Sprintf("%+v", st)
	})
	if st := c.Registration(r.ServiceID); st.Refused || st.Registered || !strings.HasPrefix(st.Error, "register: ") {
		t.Errorf("Registration with no control plane: %+v", st)
	}
}
