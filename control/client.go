package control

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/internal/backoff"
)

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultMaxConcurrent     = 64
	DefaultBackoffMax        = 5 * time.Second
	DefaultRPCTimeout        = 5 * time.Second
	DefaultKeepaliveTime     = 30 * time.Second

	// backoffBase, backoffFactor and backoffJitter are the retry delays of the
	// connection and of per-pipeline calls, as the package doc states them.
	backoffBase   = 100 * time.Millisecond
	backoffFactor = 1.6
	backoffJitter = 0.2
)

// Config configures a Client. Zero durations and counts take the defaults.
type Config struct {
	// Endpoint is the control plane's host:port (contract.EnvEndpoint). Empty
	// disables the client: NewClient returns a no-op client with no
	// connection, no goroutines and no metrics.
	Endpoint string
	// TLSCert, TLSKey, TLSCA are the TLS files (contract.TLSFiles, from
	// FLOWCTL_TLS_CERT / _KEY / _CA). Any of them set means TLS: TLSCA verifies
	// the server (system roots when empty), TLSCert and TLSKey (both or
	// neither) are the client certificate for mutual TLS.
	TLSCert, TLSKey, TLSCA string
	// HeartbeatInterval between two heartbeats of one pipeline (default 10s).
	HeartbeatInterval time.Duration
	// MaxConcurrent bounds the RPCs in flight at once (default 64).
	MaxConcurrent int
	// BackoffMax caps the reconnect backoff and the retry backoff of failed
	// calls (default 5s); rejected calls (see the package doc) are retried
	// every BackoffMax.
	BackoffMax time.Duration
	// RPCTimeout bounds each RPC, including the time it waits for a
	// connection (default 5s).
	RPCTimeout time.Duration
	// KeepaliveTime is the idle time after which the client pings the server
	// (default 30s, gRPC's minimum is 10s); the server's keepalive enforcement
	// policy must allow it.
	KeepaliveTime time.Duration
	// Logger receives the client's logs (slog.Default() when nil).
	Logger *slog.Logger
	// Registerer receives the cdpd_control_* metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Now is the clock of the heartbeat schedule (time.Now when nil).
	Now func() time.Time
	// OwnerToken is the secret the client proves it owns its pipelines' services with: sent
	// on every call as contract.OwnerTokenHeader (see the package doc). Empty: a random token
	// for this client's life. cdpd passes one kept in its state directory, so that a restarted
	// daemon still owns the services its previous run registered.
	OwnerToken string
}

// Registration is what cdpd tells the control plane about a pipeline.
type Registration struct {
	// ServiceID is the component id, normally ServiceID(instance, Name). When
	// empty, Attach uses ServiceID("", Name).
	ServiceID   string
	Name        string
	Description string
	Version     string
	// Metadata: service_type=cdp-pipeline, config_file, network, version, host
	// (set by the caller; the client adds service_type when missing).
	Metadata map[string]string
}

// MetricsProvider gives a pipeline's flat metrics (see DESIGN.md: pipeline.*,
// <type>.<Name>.<key>).
type MetricsProvider interface {
	GetMetrics() map[string]float64
}

// HealthChecker gives a pipeline's health and its health details.
type HealthChecker interface {
	IsHealthy() bool
	GetHealthDetails() map[string]string
}

// StatusProvider is optional on a Pipeline: a finer status than IsHealthy.
// Values: the contract.State* names "starting", "healthy", "degraded",
// "unhealthy", "stopping" (and "completed", sent as healthy). Anything else
// falls back to IsHealthy.
type StatusProvider interface {
	HealthState() string
}

// Pipeline is the live side of an attached pipeline. Its methods are called
// from the client's goroutines and must be safe for concurrent use.
type Pipeline interface {
	MetricsProvider
	HealthChecker
}

// Client registers and heartbeats the pipelines attached to it, all over one
// gRPC connection. Its methods are safe for concurrent use.
type Client struct {
	cfg   Config
	retry backoff.Policy // delays of per-pipeline retries (and, via reconnectBackoff, of reconnects)
	log   *slog.Logger
	now   func() time.Time
	conn  *grpc.ClientConn
	api   flowctlv1.ControlPlaneServiceClient
	m     *clientMetrics
	// hbCodec marshals heartbeats with vtprotobuf's generated code (see heartbeatCodec).
	hbCodec grpc.CallOption
	// ownerMD carries Config.OwnerToken (shared, never modified).
	ownerMD metadata.MD

	wake chan struct{} // poked when the schedule changed; capacity 1
	sem  chan struct{} // one token per in-flight job; capacity MaxConcurrent
	work chan func()   // hands a job to an idle worker (unbuffered)
	jobs sync.WaitGroup

	mu        sync.Mutex
	entries   map[string]*entry
	queue     entryQueue // entries waiting for their next exchange (not running)
	started   bool       // Run was called
	confirmed int        // entries with confirmed set
	refused   int        // entries with refused set
	failing   bool       // calls fail with retryable errors (logged once per episode)
	// What Run waits for since its last dispatch: its timer for wakeAt (zero: no
	// timer, the queue was empty), or a sem token (starved). A finishing exchange
	// pokes Run only when it changes that (see needsDispatch).
	wakeAt  time.Time
	starved bool
}

// NewClient validates cfg and creates the client's connection (lazily: no I/O
// happens before the first RPC). With an empty Endpoint it returns a disabled
// client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return &Client{}, nil
	}
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = DefaultRPCTimeout
	}
	if cfg.KeepaliveTime <= 0 {
		cfg.KeepaliveTime = DefaultKeepaliveTime
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OwnerToken == "" {
		cfg.OwnerToken = NewOwnerToken()
	}
	if len(cfg.OwnerToken) > contract.MaxOwnerTokenLen {
		return nil, fmt.Errorf("control: the owner token is %d bytes long, the limit is %d", len(cfg.OwnerToken), contract.MaxOwnerTokenLen)
	}

	transport, err := contract.TLSFiles{Cert: cfg.TLSCert, Key: cfg.TLSKey, CA: cfg.TLSCA}.DialOption()
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	retry := retryPolicy(cfg.BackoffMax)
	conn, err := grpc.NewClient(cfg.Endpoint,
		transport,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff(retry), MinConnectTimeout: cfg.RPCTimeout}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveTime,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		// Idle only after losing the connection; the watcher reconnects at once.
		grpc.WithIdleTimeout(0),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
	)
	if err != nil {
		return nil, fmt.Errorf("control: creating the flowctl connection to %s: %w", cfg.Endpoint, err)
	}
	return &Client{
		cfg:     cfg,
		retry:   retry,
		log:     cfg.Logger.With("component", "flowctl-client"),
		now:     cfg.Now,
		conn:    conn,
		api:     flowctlv1.NewControlPlaneServiceClient(conn),
		m:       newClientMetrics(cfg.Registerer),
		hbCodec: grpc.ForceCodecV2(newHeartbeatCodec()),
		ownerMD: metadata.Pairs(contract.OwnerTokenHeader, cfg.OwnerToken),
		wake:    make(chan struct{}, 1),
		sem:     make(chan struct{}, cfg.MaxConcurrent),
		work:    make(chan func()),
		entries: make(map[string]*entry),
	}, nil
}

// checkEndpoint accepts host:port or a gRPC target with a resolver scheme
// (dns:///host:port, unix:///path, passthrough:///host:port).
func checkEndpoint(ep string) error {
	if scheme, _, ok := strings.Cut(ep, "://"); ok {
		switch scheme {
		case "dns", "unix", "unix-abstract", "passthrough", "ipv4", "ipv6":
			return nil
		}
		return fmt.Errorf("control: flowctl endpoint %q: want host:port (no %s:// scheme)", ep, scheme)
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		return fmt.Errorf("control: flowctl endpoint %q: want host:port: %w", ep, err)
	}
	return nil
}

// Enabled reports whether the client talks to a control plane.
func (c *Client) Enabled() bool { return c.conn != nil }

// Attach hands a pipeline to the client: it is registered (asynchronously,
// retried until it succeeds) and then heartbeated every interval while Run
// runs. Attaching an id that is already attached replaces its Pipeline (and
// its registration, re-registered if it changed) and heartbeats it at once.
// Attach never blocks on the network.
func (c *Client) Attach(reg Registration, p Pipeline) {
	if !c.Enabled() {
		return
	}
	if reg.ServiceID == "" {
		reg.ServiceID = ServiceID("", reg.Name)
	}
	md := make(map[string]string, len(reg.Metadata)+1)
	maps.Copy(md, reg.Metadata)
	if md[contract.MetaServiceType] == "" {
		md[contract.MetaServiceType] = contract.ServiceTypePipeline
	}
	reg.Metadata = md

	c.mu.Lock()
	defer c.poke()
	defer c.mu.Unlock()
	now := c.now()
	e := c.entries[reg.ServiceID]
	if e == nil {
		e = &entry{
			id: reg.ServiceID, reg: reg, p: p, phase: c.phaseOf(reg.ServiceID),
			needRegister: true, next: now, index: -1, hb: &hbCache{},
		}
		c.entries[e.id] = e
		heap.Push(&c.queue, e)
		c.m.attached.Set(float64(len(c.entries)))
		return
	}
	e.p = p
	if !sameRegistration(e.reg, reg) {
		e.reg = reg
		e.gen++
		e.needRegister = true
		e.haltCode = codes.OK
		c.setConfirmed(e, false)
		c.setRegErr(e, "", false)
	}
	c.dueAt(e, now)
}

// Detach stops heartbeating a pipeline and unregisters it from the control
// plane: best effort, bounded by ctx and RPCTimeout, without waiting for a
// connection that is down. Unknown ids are a no-op. The pipeline is detached
// locally even when an error is returned.
func (c *Client) Detach(ctx context.Context, serviceID string) error {
	if !c.Enabled() {
		return nil
	}
	c.mu.Lock()
	e := c.entries[serviceID]
	if e == nil {
		c.mu.Unlock()
		return nil
	}
	delete(c.entries, serviceID)
	e.removed = true
	if e.index >= 0 {
		heap.Remove(&c.queue, e.index)
	}
	c.setConfirmed(e, false)
	c.setRegErr(e, "", false)
	c.m.attached.Set(float64(len(c.entries)))
	running, cancel, done := e.running, e.cancel, e.done
	known := e.everRegistered || running || e.failures > 0 // it may have reached the server
	name, token := e.reg.Name, e.token
	c.mu.Unlock()
	c.poke()

	if running {
		// Stop the in-flight exchange so that it cannot register the pipeline
		// again after the unregister below.
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("control: detaching pipeline %s: %w", name, ctx.Err())
		}
	}
	if !known {
		return nil
	}
	cctx, cancelCall := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancelCall()
	start := time.Now()
	// Fail fast: do not queue an unregister behind a connection that is down.
	_, err := c.api.UnregisterComponent(c.withOwner(cctx, token), &flowctlv1.UnregisterRequest{ServiceId: serviceID}, grpc.WaitForReady(false))
	c.m.unregisterDuration().Observe(time.Since(start).Seconds())
	if err != nil && !contract.IsNotFound(err) {
		c.log.Warn("unregistering pipeline from the control plane failed",
			"pipeline", name, "service_id", serviceID, "code", status.Code(err).String(), "err", err)
		return fmt.Errorf("control: unregistering pipeline %s (%s): %w", name, serviceID, err)
	}
	c.log.Info("pipeline unregistered from the control plane", "pipeline", name, "service_id", serviceID)
	return nil
}

// Registered reports whether the control plane has the pipeline now: its
// last registration or heartbeat succeeded and the connection has not been
// lost since.
func (c *Client) Registered(serviceID string) bool {
	if !c.Enabled() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[serviceID]
	return e != nil && e.confirmed
}

// RegistrationStatus is what the client knows of one attached pipeline's registration.
type RegistrationStatus struct {
	// Registered is Registered(id).
	Registered bool
	// Error is why the pipeline is not registered: the last registration that failed, or a
	// heartbeat the control plane refused, as "<call>: <code>: <message>" ("" once a
	// registration or heartbeat succeeds).
	Error string
	// Refused says the control plane answered with that error (registry full, permission
	// denied, an id it will not take), rather than not being reachable.
	Refused bool
}

// Registration reports an attached pipeline's registration (the zero value for an id that is
// not attached, or a disabled client).
func (c *Client) Registration(serviceID string) RegistrationStatus {
	if !c.Enabled() {
		return RegistrationStatus{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[serviceID]
	if e == nil {
		return RegistrationStatus{}
	}
	return RegistrationStatus{Registered: e.confirmed, Error: e.regErr, Refused: e.refused}
}

// Status asks the control plane what it holds under serviceID: nil (and no error) when it
// holds nothing (the "not found" rule) or the client is disabled. One RPC, bounded by
// RPCTimeout; it waits for the connection like every call of the client.
func (c *Client) Status(ctx context.Context, serviceID string) (*flowctlv1.ComponentStatusResponse, error) {
	if !c.Enabled() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	st, err := c.api.GetComponentStatus(ctx, &flowctlv1.ComponentStatusRequest{ServiceId: serviceID})
	switch {
	case contract.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("control: asking the control plane for %s: %w", serviceID, err)
	}
	return st, nil
}

// Close closes the connection. Call it after Run has returned; calls made by
// Detach afterwards fail.
func (c *Client) Close() error {
	if !c.Enabled() {
		return nil
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("control: closing the flowctl connection: %w", err)
	}
	return nil
}

// NewOwnerToken returns a new random owner token (Config.OwnerToken).
func NewOwnerToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withOwner adds the owner token to an outgoing call: token, the one the control plane
// returned for the pipeline, or the client's own when it is empty.
func (c *Client) withOwner(ctx context.Context, token string) context.Context {
	if token == "" || token == c.cfg.OwnerToken {
		return metadata.NewOutgoingContext(ctx, c.ownerMD)
	}
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(contract.OwnerTokenHeader, token))
}

func sameRegistration(a, b Registration) bool {
	return a.ServiceID == b.ServiceID && a.Name == b.Name && a.Description == b.Description &&
		a.Version == b.Version && maps.Equal(a.Metadata, b.Metadata)
}
