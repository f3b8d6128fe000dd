package server

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/tlsutil"
	"github.com/withobsrvr/cdpd/internal/testpki"
)

// client is one caller of the control plane in the ownership tests: a connection (from a
// chosen local address) and the owner token it sends ("" = none, as upstream clients).
type client struct {
	name  string
	cp    flowctlv1.ControlPlaneServiceClient
	token string
}

// dialFrom connects to addr from the local IP from ("" = any) with creds.
func dialFrom(t *testing.T, addr, from string, creds credentials.TransportCredentials) flowctlv1.ControlPlaneServiceClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if from != "" {
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			return d.DialContext(ctx, "tcp", a)
		}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return flowctlv1.NewControlPlaneServiceClient(conn)
}

// needSecondLoopback skips when 127.0.0.2 cannot be bound (it can on Linux: 127/8 is
// loopback), the address the tests use for a client on another host.
func needSecondLoopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	l.Close()
}

func (c client) ctx(t *testing.T) context.Context {
	ctx := ctxT(t)
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, contract.OwnerTokenHeader, c.token)
	}
	return ctx
}

func (c client) register(t *testing.T, id string, typ flowctlv1.ComponentType) (*flowctlv1.RegisterResponse, error) {
	return c.cp.RegisterComponent(c.ctx(t), &flowctlv1.RegisterRequest{
		ComponentId: id, Component: &flowctlv1.ComponentInfo{Id: id, Name: c.name, Type: typ},
	})
}

func (c client) heartbeat(t *testing.T, id string, m map[string]string) error {
	_, err := c.cp.Heartbeat(c.ctx(t), &flowctlv1.HeartbeatRequest{ServiceId: id, Status: healthy, Metrics: m})
	return err
}

func (c client) unregister(t *testing.T, id string) error {
	_, err := c.cp.UnregisterComponent(c.ctx(t), &flowctlv1.UnregisterRequest{ServiceId: id})
	return err
}

// refused checks that c can neither register over id, heartbeat it nor unregister it.
func refused(t *testing.T, c client, id string) {
	t.Helper()
	if _, err := c.register(t, id, typeSource); status.Code(err) != codes.PermissionDenied {
		t.Errorf("%s registering over %s: %v, want PermissionDenied", c.name, id, err)
	}
	if err := c.heartbeat(t, id, map[string]string{"injected": c.name}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("%s heartbeating %s: %v, want PermissionDenied", c.name, id, err)
	}
	if err := c.unregister(t, id); status.Code(err) != codes.PermissionDenied {
		t.Errorf("%s unregistering %s: %v, want PermissionDenied", c.name, id, err)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// cdpd's client sends its own token on every call: while it heartbeats nobody else (another
// token, no token, another address) may register over its service, heartbeat it or
// unregister it; once it has been silent for the TTL, a registration takes the service over
// and the old owner is refused from then on.
func TestOwnershipWithTokens(t *testing.T) {
	needSecondLoopback(t)
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour})
	const id = "cdp-contract-events"
	cdpd := client{name: "cdpd", cp: r.cp, token: "token-of-cdpd"}
	resp, err := cdpd.register(t, id, typeNone)
	must(t, "registering", err)
	if got := resp.GetConnectionInfo()[contract.ConnOwnerToken]; got != cdpd.token {
		t.Fatalf("connection_info owner_token = %q, want the client's own token", got)
	}
	must(t, "heartbeat", cdpd.heartbeat(t, id, map[string]string{"pipeline.current_ledger": "10"}))

	others := []client{
		{name: "other-token", cp: dialFrom(t, r.addr, "", insecureCreds()), token: "token-of-another"},
		{name: "no-token-same-host", cp: dialFrom(t, r.addr, "", insecureCreds())},
		{name: "no-token-other-host", cp: dialFrom(t, r.addr, "127.0.0.2", insecureCreds())},
	}
	for _, o := range others {
		refused(t, o, id)
	}
	st := getStatus(t, r, id)
	if st.GetComponent().GetName() != "cdpd" || st.GetComponent().GetType() != typeNone {
		t.Fatalf("registration changed by another client: %v", st.GetComponent())
	}
	if _, ok := st.GetMetrics()["injected"]; ok || st.GetMetrics()["pipeline.current_ledger"] != "10" {
		t.Fatalf("metrics changed by another client: %v", st.GetMetrics())
	}
	if p, _ := r.srv.Owner(id); p != "addr:127.0.0.1" {
		t.Fatalf("Owner = %q", p)
	}

	// The owner goes silent past the TTL: a heartbeat still cannot take the service over, a
	// registration can; then the old owner is the one refused.
	clock.Advance(31 * time.Second)
	thief := others[0]
	if err := thief.heartbeat(t, id, nil); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "register it to take it over") {
		t.Fatalf("heartbeat of another client after the TTL: %v", err)
	}
	resp, err = thief.register(t, id, typeSource)
	must(t, "taking over after the TTL", err)
	if got := resp.GetConnectionInfo()[contract.ConnOwnerToken]; got != thief.token {
		t.Fatalf("owner token after the takeover = %q", got)
	}
	must(t, "new owner's heartbeat", thief.heartbeat(t, id, map[string]string{"x": "1"}))
	refused(t, cdpd, id)
	if st := getStatus(t, r, id); st.GetComponent().GetName() != thief.name || st.GetMetrics()["x"] != "1" {
		t.Fatalf("after the takeover: %v", st)
	}
	must(t, "owner unregistering", thief.unregister(t, id))
}

// Upstream flowctl clients send no token: they register and then heartbeat by id, from other
// connections too (upstream's orchestrator heartbeats components on its own connection, a
// client reconnects after a restart of the server). A tokenless service belongs to the
// address that registered it: calls without a token from that address are its owner's,
// others are refused; the token the server issued at registration works from anywhere.
func TestOwnershipWithoutTokens(t *testing.T) {
	needSecondLoopback(t)
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour})
	const id = "upstream-source"
	upstream := client{name: "upstream", cp: r.cp}
	resp, err := upstream.register(t, id, typeSource)
	must(t, "tokenless registration", err)
	issued := resp.GetConnectionInfo()[contract.ConnOwnerToken]
	if len(issued) < 32 {
		t.Fatalf("no owner token issued to a tokenless client: %v", resp.GetConnectionInfo())
	}
	must(t, "heartbeat on the registering connection", upstream.heartbeat(t, id, map[string]string{"a": "1"}))
	sameHost := client{name: "orchestrator", cp: dialFrom(t, r.addr, "127.0.0.1", insecureCreds())}
	must(t, "heartbeat on another connection from the same address", sameHost.heartbeat(t, id, map[string]string{"pid": "42"}))

	refused(t, client{name: "other-host", cp: dialFrom(t, r.addr, "127.0.0.2", insecureCreds())}, id)
	refused(t, client{name: "wrong-token", cp: r.cp, token: "guess"}, id)
	withIssued := client{name: "holder-of-the-issued-token", cp: dialFrom(t, r.addr, "127.0.0.2", insecureCreds()), token: issued}
	must(t, "heartbeat with the issued token", withIssued.heartbeat(t, id, nil))

	clock.Advance(31 * time.Second)
	newHost := client{name: "failover", cp: dialFrom(t, r.addr, "127.0.0.2", insecureCreds())}
	_, err = newHost.register(t, id, typeSource)
	must(t, "failover registration after the TTL", err)
	if err := upstream.heartbeat(t, id, nil); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("old owner's heartbeat after the takeover: %v", err)
	}
	if p, _ := r.srv.Owner(id); p != "addr:127.0.0.2" {
		t.Fatalf("Owner after failover = %q", p)
	}
}

// Under mutual TLS a service belongs to the certificate that registered it: another
// certificate is refused even with the owner's token; the owner's certificate is admitted on
// any connection.
func TestOwnershipMutualTLS(t *testing.T) {
	certs, err := testpki.Write(t.TempDir())
	must(t, "certificates", err)
	serverConf, err := tlsutil.ServerConfig(certs.ServerCertFile, certs.ServerKeyFile, certs.CAFile)
	must(t, "server TLS", err)
	creds := func(cert, key string) credentials.TransportCredentials {
		c, err := tlsutil.ClientConfig(cert, key, certs.CAFile)
		must(t, "client TLS", err)
		return credentials.NewTLS(c)
	}
	srv, err := New(Options{})
	must(t, "New", err)
	r := serveExisting(t, srv, serverConf, creds(certs.ClientCertFile, certs.ClientKeyFile))
	const id = "tls-service"
	owner := client{name: "owner", cp: r.cp}
	resp, err := owner.register(t, id, typeProcessor)
	must(t, "registration", err)
	if p, _ := srv.Owner(id); p != "tls:CN=cdpd-test-client" {
		t.Fatalf("Owner = %q, want the certificate's identity", p)
	}
	again := client{name: "owner-again", cp: dialFrom(t, r.addr, "", creds(certs.ClientCertFile, certs.ClientKeyFile))}
	must(t, "heartbeat of the same certificate on another connection", again.heartbeat(t, id, nil))
	other := dialFrom(t, r.addr, "", creds(certs.Client2CertFile, certs.Client2KeyFile))
	refused(t, client{name: "other-certificate", cp: other}, id)
	refused(t, client{name: "other-certificate-with-token", cp: other, token: resp.GetConnectionInfo()[contract.ConnOwnerToken]}, id)
}

// Metrics a service stops sending (a removed component's, or ones another caller of the same
// address slipped in) are dropped once the service has heartbeated for a TTL without them; a
// silent service keeps its last metrics.
func TestStaleMetricsDoNotStay(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour})
	const id = "upstream"
	up := client{name: "upstream", cp: r.cp}
	_, err := up.register(t, id, typeNone)
	must(t, "register", err)
	sameHost := client{name: "same-host", cp: dialFrom(t, r.addr, "", insecureCreds())}
	must(t, "injection", sameHost.heartbeat(t, id, map[string]string{"injected": "1"}))
	for i := range 5 {
		must(t, "heartbeat", up.heartbeat(t, id, map[string]string{"ledger": "1" + strings.Repeat("0", i)}))
		r.srv.Sweep()
		clock.Advance(10 * time.Second)
	}
	m := getStatus(t, r, id).GetMetrics()
	if _, ok := m["injected"]; ok || m["ledger"] != "10000" {
		t.Fatalf("after 40s of heartbeats without it: %v", m)
	}
	clock.Advance(10 * time.Minute) // silent
	r.srv.Sweep()
	if m := getStatus(t, r, id).GetMetrics(); m["ledger"] != "10000" {
		t.Fatalf("a silent service lost its last metrics: %v", m)
	}
}

// Owners are kept in the database (the token only as its hash); after a restart the owner
// still holds its services and others are still refused. A service stored before services
// had owners belongs to whoever heartbeats it first.
func TestOwnersPersist(t *testing.T) {
	needSecondLoopback(t)
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	clock := newFakeClock()
	opts := Options{DBPath: dbPath, Now: clock.Now, JanitorInterval: time.Hour}
	r := start(t, opts)
	owner := client{name: "cdpd", cp: r.cp, token: "secret-token-of-cdpd"}
	for _, id := range []string{"kept", "legacy"} {
		_, err := owner.register(t, id, typeNone)
		must(t, "register", err)
	}
	r.stop(t)

	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: time.Second})
	must(t, "open", err)
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if strings.Contains(string(v), owner.token) {
					t.Errorf("the database holds the owner token in clear (key %q)", k)
				}
				return nil
			})
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketOwners).Delete([]byte("legacy")) // as written before owners
	})
	must(t, "editing the database", err)
	must(t, "close", db.Close())

	r2 := start(t, opts)
	owner.cp = r2.cp
	must(t, "owner's heartbeat after the restart", owner.heartbeat(t, "kept", nil))
	refused(t, client{name: "another", cp: r2.cp, token: "another-token"}, "kept")
	first := client{name: "first", cp: dialFrom(t, r2.addr, "127.0.0.2", insecureCreds())}
	must(t, "first heartbeat of a service without owner", first.heartbeat(t, "legacy", nil))
	if p, _ := r2.srv.Owner("legacy"); p != "addr:127.0.0.2" {
		t.Fatalf("Owner of the legacy service = %q", p)
	}
	refused(t, owner, "legacy")
}
