package control

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/tlsutil"
)

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultMaxConcurrent     = 64
	DefaultBackoffMax        = 5 * time.Second
	DefaultRPCTimeout        = 5 * time.Second
	DefaultKeepaliveTime     = 30 * time.Second

	// backoffBase is the first retry delay (connection and per-pipeline calls).
	backoffBase = 100 * time.Millisecond

	// ServiceTypeKey / ServiceTypePipeline mark a registration as a cdpd pipeline
	// (flowctl.v1 has no pipeline component type).
	ServiceTypeKey      = "service_type"
	ServiceTypePipeline = "cdp-pipeline"

	// HealthPrefix prefixes health details in heartbeat metrics.
	HealthPrefix = "health."
)

// Config configures a Client. Zero durations and counts take the defaults.
type Config struct {
	// Endpoint is the control plane's host:port (FLOWCTL_ENDPOINT). Empty
	// disables the client: NewClient returns a no-op client with no
	// connection, no goroutines and no metrics.
	Endpoint string
	// TLSCert, TLSKey, TLSCA are FLOWCTL_TLS_CERT / _KEY / _CA. Any of them set
	// means TLS: TLSCA verifies the server (system roots when empty), TLSCert
	// and TLSKey (both or neither) are the client certificate for mutual TLS.
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
// Values: "starting", "healthy", "degraded", "unhealthy", "stopping" (and
// "completed", sent as healthy). Anything else falls back to IsHealthy.
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
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	conn *grpc.ClientConn
	api  flowctlv1.ControlPlaneServiceClient
	m    *clientMetrics
	// hbCodec marshals heartbeats without protobuf-go's reflection (see heartbeatCodec).
	hbCodec grpc.CallOption

	wake chan struct{} // poked when the schedule changed; capacity 1
	sem  chan struct{} // one token per in-flight job; capacity MaxConcurrent
	work chan func()   // hands a job to an idle worker (unbuffered)
	jobs sync.WaitGroup

	mu        sync.Mutex
	entries   map[string]*entry
	queue     entryQueue // entries waiting for their next exchange (not running)
	started   bool       // Run was called
	confirmed int        // entries with confirmed set
	failing   bool       // calls fail with retryable errors (logged once per episode)
	// What Run waits for since its last dispatch: its timer for wakeAt (zero: no
	// timer, the queue was empty), or a sem token (starved). A finishing exchange
	// pokes Run only when it changes that (see needsDispatch).
	wakeAt  time.Time
	starved bool
}

// entry is one attached pipeline. All fields are guarded by Client.mu.
type entry struct {
	id    string
	reg   Registration
	p     Pipeline
	phase time.Duration // offset of its heartbeats inside the interval
	gen   uint64        // bumped when the registration changes

	needRegister   bool // the control plane must be (re)told the registration
	everRegistered bool // registered at least once since Attach
	lost           bool // the control plane answered "not found"; not registered again yet
	confirmed      bool // last exchange confirmed the control plane has it
	removed        bool // detached

	next  time.Time
	index int // position in Client.queue, -1 when not queued

	running bool
	dueNow  bool // exchange again as soon as the running one finishes
	cancel  context.CancelFunc
	done    chan struct{} // closed when the running exchange has finished

	failures int
	haltCode codes.Code // code of the logged rejection (codes.OK: none)

	hb *hbCache // used by the running exchange only (never two at once)
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

	creds := insecure.NewCredentials()
	if cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSCA != "" {
		tlsConf, err := tlsutil.ClientConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("control: configuring TLS for the flowctl connection: %w", err)
		}
		creds = credentials.NewTLS(tlsConf)
	}
	bo := backoff.DefaultConfig
	bo.BaseDelay = backoffBase
	bo.MaxDelay = cfg.BackoffMax
	conn, err := grpc.NewClient(cfg.Endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: cfg.RPCTimeout}),
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
		log:     cfg.Logger.With("component", "flowctl-client"),
		now:     cfg.Now,
		conn:    conn,
		api:     flowctlv1.NewControlPlaneServiceClient(conn),
		m:       newClientMetrics(cfg.Registerer),
		hbCodec: grpc.ForceCodecV2(newHeartbeatCodec()),
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
	if md[ServiceTypeKey] == "" {
		md[ServiceTypeKey] = ServiceTypePipeline
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
	c.m.attached.Set(float64(len(c.entries)))
	running, cancel, done := e.running, e.cancel, e.done
	known := e.everRegistered || running || e.failures > 0 // it may have reached the server
	name := e.reg.Name
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
	_, err := c.api.UnregisterComponent(cctx, &flowctlv1.UnregisterRequest{ServiceId: serviceID}, grpc.WaitForReady(false))
	c.m.unregisterDuration().Observe(time.Since(start).Seconds())
	if err != nil && !isNotFound(err) {
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

// Run is the client's scheduler: it registers and heartbeats the attached
// pipelines and watches the connection until ctx is done. It owns every
// goroutine of the client and returns (nil) only after all have stopped. Run
// may be called once; a disabled client's Run just waits for ctx.
func (c *Client) Run(ctx context.Context) error {
	if !c.Enabled() {
		<-ctx.Done()
		return nil
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("control: Client.Run called twice")
	}
	c.started = true
	c.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	watcher.Go(func() { c.watchConn(runCtx) })
	defer func() {
		cancel()
		watcher.Wait()
		c.jobs.Wait()
	}()

	// The timer is left armed across pokes that do not change the next due
	// time: stopping and re-arming it on every wake-up costs a scan of the
	// runtime's timer heap, which holds every timer of every pipeline.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var armed time.Time // what the timer fires for (zero: not armed)
	for {
		at, wait, ok := c.dispatch(runCtx)
		switch {
		case !ok:
			if !armed.IsZero() {
				timer.Stop()
				armed = time.Time{}
			}
		case !at.Equal(armed):
			timer.Reset(wait)
			armed = at
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-c.wake:
		case <-timer.C:
			armed = time.Time{}
		}
	}
}

// dispatch starts the exchanges that are due, as far as the concurrency bound
// allows, and returns when the next one is due and how long to wait for it (ok
// false: wait for a poke). Exchanges due within the slack start with the due
// ones, a little early, so that pipelines whose slots are close share one
// wake-up of the scheduler, of the workers and of gRPC's writer and reader:
// per heartbeat, those wake-ups cost more CPU than building and sending it.
func (c *Client) dispatch(ctx context.Context) (at time.Time, wait time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wakeAt, c.starved = time.Time{}, false
	now := c.now()
	horizon := now.Add(c.slack())
	for c.queue.Len() > 0 {
		e := c.queue[0]
		if e.next.After(horizon) {
			c.wakeAt = e.next
			return e.next, e.next.Sub(now), true
		}
		select {
		case c.sem <- struct{}{}:
		default:
			c.starved = true // a finishing exchange pokes
			return time.Time{}, 0, false
		}
		heap.Pop(&c.queue)
		c.start(ctx, e)
	}
	return time.Time{}, 0, false
}

// slack is how early dispatch may start an exchange: a twentieth of the
// interval, at most 100 ms (50 ms at a 1 s interval, 100 ms at the default
// 10 s). Pipelines keep their phase; consecutive heartbeats of one pipeline are
// an interval apart, give or take the slack.
func (c *Client) slack() time.Duration { return min(c.cfg.HeartbeatInterval/20, 100*time.Millisecond) }

// needsDispatch reports whether Run must look at the queue again after an
// exchange of e finished and was queued for e.next; c.mu held.
func (c *Client) needsDispatch(e *entry) bool {
	if c.starved {
		return true // it waits for the token this exchange gives back
	}
	if e.removed || e.index < 0 {
		return false
	}
	return c.wakeAt.IsZero() || e.next.Before(c.wakeAt)
}

// exchange is a snapshot of what one job needs, taken under Client.mu.
type exchange struct {
	gen          uint64
	reg          Registration
	p            Pipeline
	needRegister bool
	hb           *hbCache
}

// result is what a job did.
type result struct {
	registered bool // a RegisterComponent call succeeded
	lost       bool // a heartbeat was answered "not found"
	err        error
	op         string // "register" or "heartbeat": the call that failed
}

// start launches e's exchange; c.mu held and a sem token taken.
func (c *Client) start(ctx context.Context, e *entry) {
	jctx, cancel := context.WithCancel(ctx)
	e.running, e.cancel, e.done = true, cancel, make(chan struct{})
	x := exchange{gen: e.gen, reg: e.reg, p: e.p, needRegister: e.needRegister, hb: e.hb}
	job := func() {
		defer cancel()
		res := c.run(jctx, x)
		c.mu.Lock()
		c.finish(jctx, e, x, res)
		close(e.done)
		wake := c.needsDispatch(e)
		c.mu.Unlock()
		<-c.sem
		if wake {
			c.poke()
		}
	}
	select {
	case c.work <- job:
	default:
		c.jobs.Go(func() { c.worker(ctx, job) })
	}
}

// worker runs job, then the jobs handed to it while it waits idle, until ctx
// (Run's) is done or it has been idle for two heartbeat intervals (so that a
// burst, e.g. many pipelines attached at once, leaves no idle goroutines behind).
// Workers are reused because a new goroutine per exchange grows its stack
// through the gRPC call path every time. There are at most about MaxConcurrent
// of them: a new one starts only when none is idle.
func (c *Client) worker(ctx context.Context, job func()) {
	idle := time.NewTimer(2 * c.cfg.HeartbeatInterval)
	defer idle.Stop()
	for {
		job()
		idle.Reset(2 * c.cfg.HeartbeatInterval)
		select {
		case job = <-c.work:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// run registers the pipeline when needed and heartbeats it; a heartbeat
// answered "not found" re-registers it and heartbeats again.
func (c *Client) run(ctx context.Context, x exchange) result {
	var res result
	if x.needRegister {
		if err := c.register(ctx, x.reg); err != nil {
			return result{err: err, op: "register"}
		}
		res.registered = true
	}
	err := c.heartbeat(ctx, x)
	if err != nil && isNotFound(err) && !res.registered {
		res.lost = true
		c.log.Info("control plane lost the pipeline; re-registering",
			"pipeline", x.reg.Name, "service_id", x.reg.ServiceID)
		if err := c.register(ctx, x.reg); err != nil {
			res.err, res.op = err, "register"
			return res
		}
		res.registered = true
		err = c.heartbeat(ctx, x)
	}
	if err != nil {
		res.err, res.op = err, "heartbeat"
	}
	return res
}

// finish records a job's result and queues e again; c.mu held.
func (c *Client) finish(ctx context.Context, e *entry, x exchange, res result) {
	e.running, e.cancel = false, nil
	if e.removed {
		return
	}
	now := c.now()
	var logger *slog.Logger // built when needed: most exchanges log nothing
	log := func() *slog.Logger {
		if logger == nil {
			logger = c.log.With("pipeline", x.reg.Name, "service_id", x.reg.ServiceID)
		}
		return logger
	}
	if res.lost {
		e.lost = true
	}
	if res.registered {
		c.m.registrations.Inc()
		if e.lost {
			c.m.reregistrations.Inc()
			e.lost = false
		}
		e.everRegistered = true
		if x.gen == e.gen {
			e.needRegister = false
		}
		if !res.lost {
			log().Info("pipeline registered with the control plane")
		}
	}
	if e.lost {
		e.needRegister = true
	}
	switch {
	case x.gen != e.gen:
		// Re-attached with a new registration meanwhile: register that now.
		e.needRegister = true
		e.next = now
	case res.err == nil:
		c.setConfirmed(e, true)
		e.failures = 0
		if c.failing {
			c.failing = false
			c.log.Info("control plane calls succeed again", "endpoint", c.cfg.Endpoint)
		}
		if e.haltCode != codes.OK {
			log().Info("control plane accepts the pipeline again")
			e.haltCode = codes.OK
		}
		e.next = c.slotAfter(e.next, now, e.phase)
	case ctx.Err() != nil:
		// Run is stopping (Detach returned above): nothing to record.
		e.next = now
	default:
		c.setConfirmed(e, false)
		e.failures++
		code := status.Code(res.err)
		if res.op == "heartbeat" && isNotFound(res.err) {
			e.needRegister, e.lost = true, true // lost again right after registering
		}
		if isHalt(code) {
			if e.haltCode != code {
				log().Error("control plane rejects the pipeline; retrying slowly",
					"call", res.op, "code", code.String(), "err", res.err, "retry_every", c.cfg.BackoffMax)
				e.haltCode = code
			}
			if res.op == "heartbeat" {
				e.next = c.nextSlot(now, e.phase) // never faster than normal heartbeats
			} else {
				e.next = now.Add(c.cfg.BackoffMax)
			}
		} else {
			if !c.failing {
				// Once per episode for the whole client: during an outage every
				// pipeline fails alike. The error names the cause (e.g. the TLS
				// handshake failure behind "latest balancer error").
				c.failing = true
				log().Warn("control plane call failed; pipelines keep running, retrying with backoff",
					"call", res.op, "code", code.String(), "err", res.err)
			}
			log().Debug("control plane call failed; retrying",
				"call", res.op, "code", code.String(), "attempt", e.failures, "err", res.err)
			e.next = now.Add(c.backoff(e.failures))
		}
	}
	if e.dueNow {
		e.dueNow = false
		e.next = now
	}
	heap.Push(&c.queue, e)
}

func (c *Client) register(ctx context.Context, reg Registration) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	start := time.Now()
	_, err := c.api.RegisterComponent(ctx, &flowctlv1.RegisterRequest{
		ComponentId: reg.ServiceID,
		Component: &flowctlv1.ComponentInfo{
			Id:          reg.ServiceID,
			Name:        reg.Name,
			Description: reg.Description,
			Version:     reg.Version,
			Type:        flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED,
			Metadata:    reg.Metadata,
		},
	})
	c.m.registerDuration().Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.registrationFailures.WithLabelValues(status.Code(err).String()).Inc()
		return err
	}
	return nil
}

func (c *Client) heartbeat(ctx context.Context, x exchange) error {
	req := x.hb.build(x.reg.ServiceID, x.p, c.log, x.reg.Name)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	start := time.Now()
	// Invoke has marshalled req when it returns: x.hb may reuse its map.
	_, err := c.api.Heartbeat(ctx, req, c.hbCodec)
	c.m.heartbeatDuration().Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.heartbeatFailures.WithLabelValues(status.Code(err).String()).Inc()
		return err
	}
	c.m.heartbeats.Inc()
	return nil
}

// hbCache is what the previous heartbeat of one pipeline built: the text of
// each metric and health detail with the value it was made from, and the
// request's Metrics map. The next heartbeat reuses the strings of everything
// that did not change (an idle pipeline's figures hardly do) and the map,
// rather than formatting, concatenating and allocating them again. An entry
// runs one exchange at a time, and the map is refilled only after the previous
// Invoke returned (gRPC has marshalled the request by then), so it needs no lock.
type hbCache struct {
	metrics map[string]*hbText // by the pipeline's metric name
	details map[string]*hbText // by the pipeline's health detail name
	out     map[string]string  // the Metrics of the last request
	round   uint64             // heartbeats built
}

// hbText is one metric or detail as sent: its key on the wire, the value it
// was made from and the value's text.
type hbText struct {
	key   string
	num   uint64 // a metric's float64 bits
	str   string // a detail's value
	text  string
	round uint64 // last heartbeat that carried it
}

// build builds a pipeline's heartbeat: its status, its metrics (NaN and
// infinities left out) and its health details under "health."; names and values
// with invalid UTF-8 are repaired and detail values cut at MaxDetailLen. A
// panic in the pipeline's methods is reported as UNHEALTHY with the panic in
// health.control_error rather than taking the daemon down. The request's
// Metrics map belongs to hc: it is refilled by the next build.
func (hc *hbCache) build(id string, p Pipeline, log *slog.Logger, name string) (req *flowctlv1.HeartbeatRequest) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("pipeline health or metrics panicked", "pipeline", name, "panic", fmt.Sprint(r))
			req = &flowctlv1.HeartbeatRequest{
				ServiceId: id,
				Status:    flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY,
				Metrics:   map[string]string{HealthPrefix + "control_error": fmt.Sprintf("health/metrics panicked: %v", r)},
			}
		}
	}()
	st := HealthStatusOf(p)
	metrics := p.GetMetrics()
	details := p.GetHealthDetails()
	if hc.metrics == nil {
		hc.metrics = make(map[string]*hbText, len(metrics))
		hc.details = make(map[string]*hbText, len(details))
		hc.out = make(map[string]string, len(metrics)+len(details))
	}
	hc.round++
	m := hc.out
	clear(m)
	for k, v := range metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		t := hc.metrics[k]
		bits := math.Float64bits(v)
		switch {
		case t == nil:
			t = &hbText{key: validUTF8(k), num: bits, text: strconv.FormatFloat(v, 'f', -1, 64)}
			hc.metrics[k] = t
		case t.num != bits:
			t.num, t.text = bits, strconv.FormatFloat(v, 'f', -1, 64)
		}
		t.round = hc.round
		m[t.key] = t.text
	}
	for k, v := range details {
		t := hc.details[k]
		switch {
		case t == nil:
			t = &hbText{key: HealthPrefix + validUTF8(k), str: v, text: truncate(validUTF8(v), MaxDetailLen)}
			hc.details[k] = t
		case t.str != v:
			t.str, t.text = v, truncate(validUTF8(v), MaxDetailLen)
		}
		t.round = hc.round
		m[t.key] = t.text
	}
	// Forget names the pipeline no longer reports (a new version's components).
	if len(hc.metrics) > len(metrics) {
		hc.prune(hc.metrics)
	}
	if len(hc.details) > len(details) {
		hc.prune(hc.details)
	}
	return &flowctlv1.HeartbeatRequest{ServiceId: id, Status: st, Metrics: m}
}

func (hc *hbCache) prune(texts map[string]*hbText) {
	for k, t := range texts {
		if t.round != hc.round {
			delete(texts, k)
		}
	}
}

// MaxDetailLen bounds a health detail value in a heartbeat (bytes); longer
// values (a long error message) are cut and end in "…", so that one detail
// cannot get the whole heartbeat rejected by a server with value limits.
const MaxDetailLen = 1024

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// validUTF8 replaces invalid UTF-8, which protobuf strings cannot carry.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// watchConn follows the connection's state: it reconnects an idle
// connection at once, marks every pipeline unconfirmed when the connection is
// lost and makes every pipeline due when it is back.
func (c *Client) watchConn(ctx context.Context) {
	everReady, lost := false, false
	for {
		s := c.conn.GetState()
		switch s {
		case connectivity.Ready:
			if lost {
				c.reconnected()
			}
			everReady, lost = true, false
		case connectivity.Idle, connectivity.Connecting, connectivity.TransientFailure:
			if everReady && !lost {
				lost = true
				c.connectionLost(s)
			}
			if s == connectivity.Idle {
				c.conn.Connect()
			}
		case connectivity.Shutdown:
			return
		}
		if !c.conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

func (c *Client) connectionLost(s connectivity.State) {
	c.log.Warn("connection to the control plane lost; pipelines keep running, reconnecting",
		"endpoint", c.cfg.Endpoint, "state", s.String())
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.setConfirmed(e, false)
	}
}

func (c *Client) reconnected() {
	c.m.reconnects.Inc()
	c.mu.Lock()
	n := len(c.entries)
	now := c.now()
	for _, e := range c.entries {
		c.dueAt(e, now)
	}
	c.mu.Unlock()
	c.poke()
	c.log.Info("connection to the control plane re-established; refreshing every pipeline",
		"endpoint", c.cfg.Endpoint, "pipelines", n)
}

// dueAt makes e's next exchange happen at t (or right after the running
// one); c.mu held.
func (c *Client) dueAt(e *entry, t time.Time) {
	if e.running {
		e.dueNow = true
		return
	}
	e.next = t
	if e.index >= 0 {
		heap.Fix(&c.queue, e.index)
	}
}

// setConfirmed keeps the registered-pipelines gauge in step; c.mu held.
func (c *Client) setConfirmed(e *entry, v bool) {
	if e.confirmed == v {
		return
	}
	e.confirmed = v
	if v {
		c.confirmed++
	} else {
		c.confirmed--
	}
	c.m.registered.Set(float64(c.confirmed))
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// phaseOf spreads pipelines over the interval by a hash of their id.
func (c *Client) phaseOf(id string) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(c.cfg.HeartbeatInterval))
}

// nextSlot is the next time after now that sits at phase inside the
// interval grid, at least half an interval away.
func (c *Client) nextSlot(now time.Time, phase time.Duration) time.Time {
	iv := c.cfg.HeartbeatInterval
	pos := time.Duration(now.UnixNano() % int64(iv))
	if pos < 0 {
		pos += iv
	}
	off := (phase - pos + iv) % iv
	if off < iv/2 {
		off += iv
	}
	return now.Add(off)
}

// slotAfter schedules the heartbeat after one that was due at `due` and finished at now: the
// next slot of the pipeline's grid after due, so a call that completes late does not push
// the next one back; when even that slot has passed (the call took longer than an
// interval), the first slot after now.
func (c *Client) slotAfter(due, now time.Time, phase time.Duration) time.Time {
	iv := c.cfg.HeartbeatInterval
	grid := func(t time.Time) time.Time { // first grid point at phase strictly after t
		pos := time.Duration(t.UnixNano() % int64(iv))
		if pos < 0 {
			pos += iv
		}
		off := (phase - pos + iv) % iv
		if off == 0 {
			off = iv
		}
		return t.Add(off)
	}
	if next := grid(due); next.After(now) {
		return next
	}
	return grid(now)
}

// backoff is the capped exponential delay before retry n (n >= 1), with
// ±20% jitter.
func (c *Client) backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, c.cfg.BackoffMax)
}

// isNotFound reports whether err says the control plane does not know the
// service: codes.NotFound, or any status whose message contains "not found"
// (upstream flowctl answers codes.Unknown "service ... not found").
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	return s.Code() == codes.NotFound || strings.Contains(strings.ToLower(s.Message()), "not found")
}

// isHalt reports whether a code means the server rejects the request as it
// is, so that retrying soon cannot help (see the package doc).
func isHalt(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated,
		codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists:
		return true
	}
	return false
}

func sameRegistration(a, b Registration) bool {
	return a.ServiceID == b.ServiceID && a.Name == b.Name && a.Description == b.Description &&
		a.Version == b.Version && maps.Equal(a.Metadata, b.Metadata)
}

// entryQueue is a min-heap of entries by next exchange time.
type entryQueue []*entry

func (q entryQueue) Len() int           { return len(q) }
func (q entryQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q entryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *entryQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *entryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

// Environment variables operators already use for flowctl.
const (
	EnvEndpoint = "FLOWCTL_ENDPOINT"
	EnvTLSCert  = "FLOWCTL_TLS_CERT"
	EnvTLSKey   = "FLOWCTL_TLS_KEY"
	EnvTLSCA    = "FLOWCTL_TLS_CA"
)

// EnvConfig returns a Config with Endpoint and the TLS files taken from
// FLOWCTL_ENDPOINT, FLOWCTL_TLS_CERT, FLOWCTL_TLS_KEY and FLOWCTL_TLS_CA
// (getenv is os.Getenv in cdpd); the other fields are left for the caller.
func EnvConfig(getenv func(string) string) Config {
	return Config{
		Endpoint: strings.TrimSpace(getenv(EnvEndpoint)),
		TLSCert:  getenv(EnvTLSCert),
		TLSKey:   getenv(EnvTLSKey),
		TLSCA:    getenv(EnvTLSCA),
	}
}
