// Package server is cdpd's flowctl-compatible control plane: it serves flowctl.v1
// ControlPlaneService (wire-compatible with the upstream flowctl server), flowctl's legacy
// flowctl.ControlPlane (the upstream CDP binary's protocol, into the same registry: legacy.go),
// cdpd.v1 HistoryService, cdpd.v1 FleetService (the status table's rows: rows.go) and the
// standard gRPC health service, keeps the service registry in
// memory and persists it in bbolt. Every protocol's RPCs go through the same three store
// operations: register, heartbeat and status (rpc.go).
//
// What the server keeps, per service id:
//   - the registration (ComponentInfo, registered_at), its current HealthStatus, the time of
//     the last heartbeat and the merged map of every metric the service has sent;
//   - a bounded history of heartbeat samples (time, status, the merged metrics after that
//     heartbeat), at most HistoryMaxSamples samples, none older than HistoryMaxAge, and within
//     the byte budgets below. Samples are delta-encoded in memory (only the metrics whose value
//     changed are stored, metric names interned per service), so a typical cdpd pipeline costs
//     about 130 bytes of memory per sample. A service's history outlives its unregistration
//     (cdpd unregisters on every shutdown) and is dropped once it has aged out.
//
// Memory and disk: the histories are kept within byte budgets, per service (HistoryMaxBytes,
// 4 MiB) and in all (HistoryTotalBytes, 256 MiB); the oldest samples go first, of the service
// for its own budget, of all services (whichever sample is oldest) for the total. A sample is
// accounted at its database encoding (names and values of the changed metrics) plus 64 bytes,
// more than it takes in memory, and a history's names and its first and newest states are
// accounted too: about 225 bytes per sample of a cdpd pipeline, so 4 MiB hold two days of a
// heartbeat every 10 s. The total budget bounds the history file as well: the histories are
// kept under half of it (trimmed to 7/16 when they reach 1/2; the history file needs up to
// about 1.6 times their size, for bbolt's page overhead and the pages a flush frees that only
// a later flush can reuse), and the file is compacted when it grows beyond the budget
// anyway. The probe's bomb (4,500 heartbeats of 60 KB of changing metrics, which took a server
// without budgets to 681 MB of RSS and 270 MB of database) stays within them
// (TestHistoryByteBudget). Accounting: HistoryBytes and the gauge cdp_control_history_bytes;
// samples dropped for the total: cdp_control_history_trimmed_samples_total.
//
// Persistence (Options.DBPath != ""): registrations and unregistrations are written through
// (the RPC answers after the bbolt transaction committed). Heartbeats (status, last heartbeat,
// metrics) and history samples are written in batches every FlushInterval (1 s by default) and
// on Close, so a crash loses at most that much heartbeat state, never a registration. After a
// restart every service keeps its status and last metrics, and gets one HeartbeatTTL of grace
// before the janitor judges it, so that its clients can reconnect. The history lives in a
// file of its own, HistoryDBPath(DBPath) ("flowctl-history.db" next to "flowctl.db"): bbolt
// files never shrink, and this one can be compacted (rewritten with its data only, replaced
// atomically) while the server runs, which the main file, whose handle the alert rules hold,
// cannot. The main file is compacted when it is opened if it is more than twice the size of
// its data (after many services expired, or after the history moved out of a file written
// before the history had a file of its own, which opening it does).
//
// Semantics (the upstream behaviour, see docs/design.md "The wire contract"): the service id is component_id, else
// component.id, else generated; re-registering an id replaces the registration (status
// HEALTHY, empty metrics, as upstream; the history is kept); heartbeat metrics are merged into
// the stored map and a status other than UNKNOWN replaces the stored one; the janitor marks a
// service UNHEALTHY when no heartbeat arrived within HeartbeatTTL; ListComponents omits
// non-HEALTHY services unless include_unhealthy.
//
// # Ownership
//
// A registered service belongs to the client that registered it, its owner; while the owner
// is live (it heartbeated, registered, or the server started, within HeartbeatTTL) every other
// client is refused with codes.PermissionDenied when it registers over the id, heartbeats it
// or unregisters it. Reading (status, list, discover, history) stays open to all. Who a
// client is:
//
//   - its principal: with mutual TLS, the verified client certificate's identity (subject and
//     subject alternative names, "tls:CN=...;dns=..."; a renewed certificate with the same
//     names is the same client); otherwise the peer's IP address ("addr:10.0.0.5"; "local"
//     for a unix socket peer). Calls made inside the server's process ("in-process") are
//     trusted with every service.
//   - its owner token, if it sends one: the gRPC metadata entry "x-flowctl-owner"
//     (contract.OwnerTokenHeader), at most 256 bytes. cdpd's client sends one on every call.
//
// A registration answers with the token in force in RegisterResponse.connection_info under
// "owner_token" (contract.ConnOwnerToken): the caller's own token, or, for a caller without one,
// a random token the server issues. Only its SHA-256 is kept, in memory and in the database.
//
// Who is admitted on a service: a caller that sends a token must send the owner's (and, when
// the owner has a certificate, present that certificate too: a stolen token is not enough
// under mTLS). A caller without a token is admitted on its principal alone, but only on a
// service whose registrant sent no token either: a service registered with a token (cdpd's)
// requires it on every call, so another process on the same host cannot act for it.
//
// Clients without tokens (upstream flowctl's: its CDP client registers and then heartbeats by
// id; its orchestrator heartbeats components on a connection of its own; clients reconnect
// after a server restart) are thus identified by their address, or their certificate, not by
// their connection: binding a tokenless service to its connection would refuse its own
// heartbeats after every reconnect. The price is that, without mTLS, tokenless clients behind
// one address (one host, one NAT or proxy) can act on each other's services; cdpd's services,
// registered with a token, are not exposed to them.
//
// Failover: once the owner has been silent for longer than HeartbeatTTL, a registration by
// anyone takes the service over (the new registrant becomes the owner and the old one is
// refused from then on), and an unregistration by anyone is accepted. A heartbeat never
// takes a service over (it would be an injection, not a takeover): a non-owner's heartbeat is
// refused even then, telling it to register. cdpd's client re-registers after such a refusal,
// so a cdpd whose services were taken over takes them back once the other side goes silent.
// A service loaded from a database written before services had owners is unowned: the first
// client to heartbeat (or register) it becomes its owner.
//
// Metrics a service stops sending are dropped once it has heartbeated for HeartbeatTTL without
// them (a removed component's, or metrics a caller of the owner's own address slipped in do
// not stay for good); a silent service keeps its last metrics.
//
// # Bounds
//
// The registry is capped in total (MaxServices) and per client principal
// (MaxServicesPerClient; a client's own ids re-register at its limit), both answered with
// codes.ResourceExhausted, and a service silent for longer than ServiceExpiry (a day) is
// removed with its history (observers get EventExpired).
//
// Differences from upstream flowctl:
//   - Heartbeat and GetComponentStatus for an unknown id fail with codes.NotFound (upstream:
//     codes.Unknown); the text still contains "not found", which is what clients match.
//   - Bad input is rejected with codes.InvalidArgument: missing ids, a missing component,
//     unknown enum values, invalid UTF-8 (also where protobuf-go refuses to decode it, as any
//     request that does not decode: codec.go), and maps or strings over the limits below
//     (MaxMetricEntries, MaxMetricBytes, MaxKeyLen, MaxValueLen, MaxIDLen); upstream accepts
//     anything (and panics on a registration without a component).
//   - The stored ComponentInfo's id is the service id, so ListComponents and
//     DiscoverComponents always show the id to use with the other RPCs.
//   - The janitor marks a silent service UNHEALTHY whatever its status (upstream only
//     demotes HEALTHY ones, so a silent DEGRADED service stayed DEGRADED forever). A later
//     heartbeat with status UNKNOWN restores the status the service had before.
//   - ListComponents and DiscoverComponents are sorted by service id.
//   - UnregisterComponent of an unknown id succeeds (as upstream) but still needs an id.
//   - The registry is capped (Options.MaxServices, Options.MaxServicesPerClient): a new id
//     beyond it is refused with codes.ResourceExhausted (upstream grows without bound under a
//     registration flood), and silent services expire (Options.ServiceExpiry).
//   - Services have owners (see Ownership): upstream lets any client register over, heartbeat
//     or unregister any service; ours refuses others with codes.PermissionDenied while the
//     owner is live. RegisterResponse.connection_info carries "owner_token".
//   - Metrics a live service stopped sending expire after HeartbeatTTL (upstream keeps every
//     metric ever merged until the next registration).
//
// Embedding: control/plane assembles this server with the alert engine and /metrics for the
// `flowctl server` command and cdpd's embedded control plane, through NewGRPCServer, Run and
// GracefulStop; Serve runs the bare server on a listener. Hooks for other packages: AddObserver (every change,
// for alert rules), Services (a snapshot), DB (the bbolt handle, for their own buckets),
// AddService (more gRPC services on the same server), Sweep and Flush (one janitor pass or
// one persistence batch now), Connections (open client connections), Owner (a service's
// owner principal).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// ServiceEvent is what observers (AddObserver) are told about a change.
//
// Kinds: "registered" (a registration, also a replacing one; PrevStatus is the replaced
// registration's status or UNKNOWN), "heartbeat" (every accepted heartbeat; Status differs from
// PrevStatus when the heartbeat changed it), "status" (a change not caused by a heartbeat: the
// janitor marked the service UNHEALTHY), "unregistered" (Status is UNKNOWN, PrevStatus the last
// status). Metrics is a copy of the merged metrics (nil for "unregistered"); Metadata is the
// registration's metadata and must not be modified.
type ServiceEvent struct {
	ServiceID  string
	Kind       string
	Status     flowctlv1.HealthStatus
	PrevStatus flowctlv1.HealthStatus
	Metrics    map[string]string
	Metadata   map[string]string
	Time       time.Time
}

// Event kinds.
const (
	EventRegistered   = "registered"
	EventHeartbeat    = "heartbeat"
	EventStatus       = "status"
	EventUnregistered = "unregistered"
	// EventExpired: the janitor removed a service silent for longer than ServiceExpiry (Status
	// is UNKNOWN, PrevStatus the last status), as if it had unregistered.
	EventExpired = "expired"
)

// Server is the control plane. Create it with New, serve it with Serve (or Register on your
// own grpc.Server plus Run), and Close it after Run has returned.
type Server struct {
	flowctlv1.UnimplementedControlPlaneServiceServer
	cdpdv1.UnimplementedHistoryServiceServer
	cdpdv1.UnimplementedFleetServiceServer

	opts    Options
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	db      *bbolt.DB // registry (and the alert rules' buckets)
	hdb     *bbolt.DB // heartbeat history (HistoryDBPath), used under persistMu only
	hdbPath string

	mu        sync.RWMutex
	entries   map[string]*entry
	histories map[string]*history
	perClient map[string]int // registered services by owner principal

	histBytes atomic.Int64 // accounted bytes of every history (histories in the map)
	trimMu    sync.Mutex   // one trim of the total budget at a time

	// persistMu serialises flushes (the Run loop and Close).
	persistMu sync.Mutex
	dirtyMu   sync.Mutex
	dirty     map[string]struct{}

	observers atomic.Pointer[[]func(ServiceEvent)]
	extra     []func(grpc.ServiceRegistrar)
	health    *health.Server
	conns     atomic.Int64

	heartbeats    prometheus.Counter
	rpcDuration   *prometheus.HistogramVec
	persistErrors prometheus.Counter
	trimmed       prometheus.Counter
	compactions   prometheus.Counter

	closeOnce sync.Once
	closeErr  error
}

// entry is one registered service. info is immutable once stored; the rest is guarded by mu.
type entry struct {
	mu           sync.Mutex
	id           string
	info         *flowctlv1.ComponentInfo
	registeredAt time.Time
	status       flowctlv1.HealthStatus
	lastHB       time.Time
	metrics      map[string]string
	metricBytes  int
	// seen is when each metric was last sent (unix ns): the janitor drops metrics the service
	// has stopped sending (seen more than HeartbeatTTL before its last heartbeat).
	seen      map[string]int64
	staleFrom flowctlv1.HealthStatus // status before the janitor marked it, UNKNOWN if not marked
	hist      *history
	owner     owner
}

// New creates a server, opening (creating) the bbolt file and loading the registry when
// opts.DBPath is set.
func New(opts Options) (*Server, error) {
	if opts.HeartbeatTTL <= 0 {
		opts.HeartbeatTTL = DefaultHeartbeatTTL
	}
	if opts.JanitorInterval <= 0 {
		opts.JanitorInterval = DefaultJanitorInterval
	}
	if opts.HistoryMaxAge <= 0 {
		opts.HistoryMaxAge = DefaultHistoryMaxAge
	}
	if opts.HistoryMaxSamples <= 0 {
		opts.HistoryMaxSamples = DefaultHistoryMaxSamples
	}
	if opts.HistoryTotalBytes <= 0 {
		opts.HistoryTotalBytes = DefaultHistoryTotalBytes
	}
	if opts.HistoryMaxBytes <= 0 {
		opts.HistoryMaxBytes = min(DefaultHistoryMaxBytes, opts.HistoryTotalBytes)
	}
	if min(opts.HistoryMaxBytes, opts.HistoryTotalBytes) < MinHistoryBytes {
		return nil, fmt.Errorf("control plane: a history budget under %d bytes (%d per service, %d in total) could not hold one heartbeat of the largest size", MinHistoryBytes, opts.HistoryMaxBytes, opts.HistoryTotalBytes)
	}
	if opts.HistoryMaxBytes > opts.HistoryTotalBytes {
		return nil, fmt.Errorf("control plane: the history budget of a service (%d bytes) is larger than the total (%d bytes)", opts.HistoryMaxBytes, opts.HistoryTotalBytes)
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxServices <= 0 {
		opts.MaxServices = DefaultMaxServices
	}
	if opts.MaxServicesPerClient <= 0 {
		opts.MaxServicesPerClient = DefaultMaxServicesPerClient
	}
	if opts.ServiceExpiry <= 0 {
		opts.ServiceExpiry = max(DefaultServiceExpiry, 2*opts.HeartbeatTTL)
	}
	if opts.ServiceExpiry <= opts.HeartbeatTTL {
		return nil, fmt.Errorf("control plane: the service expiry (%s) must be longer than the heartbeat TTL (%s)", opts.ServiceExpiry, opts.HeartbeatTTL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		now:       opts.Now,
		entries:   make(map[string]*entry),
		histories: make(map[string]*history),
		perClient: make(map[string]int),
		dirty:     make(map[string]struct{}),
		health:    health.NewServer(),
	}
	s.started = s.now()
	f := promauto.With(opts.Registerer)
	s.heartbeats = f.NewCounter(prometheus.CounterOpts{
		Name: "cdp_control_heartbeats_total",
		Help: "Heartbeats accepted by the control plane.",
	})
	s.rpcDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cdp_control_rpc_duration_seconds",
		Help:    "Control plane RPC handling time, by method and gRPC code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"method", "code"})
	s.persistErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "cdp_control_persist_errors_total",
		Help: "Failed writes of the control plane registry to its database.",
	})
	s.trimmed = f.NewCounter(prometheus.CounterOpts{
		Name: "cdp_control_history_trimmed_samples_total",
		Help: "Heartbeat history samples dropped to keep the server within its total history budget.",
	})
	s.compactions = f.NewCounter(prometheus.CounterOpts{
		Name: "cdp_control_db_compactions_total",
		Help: "Rewrites of a control plane database file to give back the space of deleted data.",
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_control_history_bytes",
		Help: "Accounted bytes of the heartbeat history (the budget is --history-total-bytes).",
	}, func() float64 { return float64(s.histBytes.Load()) })
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(registryCollector{s}); err != nil {
			return nil, fmt.Errorf("registering control plane metrics: %w", err)
		}
		if opts.ReexportMetrics > 0 {
			fc := &fleetCollector{s: s, max: opts.ReexportMetrics, descs: map[fleetDescKey]*prometheus.Desc{}, names: map[string]promName{}}
			if err := opts.Registerer.Register(fc); err != nil {
				return nil, fmt.Errorf("registering the fleet metrics: %w", err)
			}
		}
	}
	if opts.DBPath != "" {
		if err := s.openDB(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// DB is the bbolt database, nil without persistence. Other packages may keep their own
// buckets in it (the alert rules do); the buckets "services" and "owners" belong to this
// package (the history has a file of its own, HistoryDBPath).
func (s *Server) DB() *bbolt.DB { return s.db }

// AddObserver registers fn to be called synchronously, with no lock held, after every change
// (see ServiceEvent). fn must be cheap and must not block; add observers before serving.
func (s *Server) AddObserver(fn func(ServiceEvent)) {
	for {
		old := s.observers.Load()
		var next []func(ServiceEvent)
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, fn)
		if s.observers.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (s *Server) hasObservers() bool {
	o := s.observers.Load()
	return o != nil && len(*o) > 0
}

func (s *Server) notify(ev ServiceEvent) {
	if o := s.observers.Load(); o != nil {
		for _, fn := range *o {
			fn(ev)
		}
	}
}

// AddService adds a registration run by Register, for services of other packages served on
// the same gRPC server (e.g. cdpd.v1.AlertService). Call it before Serve or Register.
func (s *Server) AddService(fn func(grpc.ServiceRegistrar)) {
	s.extra = append(s.extra, fn)
}

// Register registers flowctl.v1.ControlPlaneService, flowctl's legacy flowctl.ControlPlane
// (legacy.go), cdpd.v1.HistoryService, cdpd.v1.FleetService (rows.go), the gRPC health service (SERVING for "" and each of
// them) and every AddService registration on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	flowctlv1.RegisterControlPlaneServiceServer(g, s)
	flowctllegacy.RegisterControlPlaneServer(g, legacyServer{s: s})
	cdpdv1.RegisterHistoryServiceServer(g, s)
	cdpdv1.RegisterFleetServiceServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	for _, name := range []string{"", flowctlv1.ControlPlaneService_ServiceDesc.ServiceName,
		flowctllegacy.ControlPlane_ServiceDesc.ServiceName, cdpdv1.HistoryService_ServiceDesc.ServiceName,
		cdpdv1.FleetService_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	for _, fn := range s.extra {
		fn(g)
	}
}

// Run runs the janitor (every JanitorInterval) and, with persistence, the heartbeat flusher
// (every FlushInterval) until ctx is done. It returns nil on cancellation.
func (s *Server) Run(ctx context.Context) error {
	jan := time.NewTicker(s.opts.JanitorInterval)
	defer jan.Stop()
	var flushC <-chan time.Time
	if s.db != nil {
		fl := time.NewTicker(s.opts.FlushInterval)
		defer fl.Stop()
		flushC = fl.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-jan.C:
			s.Sweep()
		case <-flushC:
			if err := s.Flush(); err != nil {
				s.log.Error("persisting heartbeats", "err", err)
			}
		}
	}
}

// Close flushes pending heartbeat state and closes the database. Call it after Run (or Serve)
// has returned; the server must not be used afterwards. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.health.Shutdown()
		if s.db == nil {
			return
		}
		var errs []error
		if err := s.Flush(); err != nil {
			errs = append(errs, err)
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing control plane database: %w", err))
		}
		s.persistMu.Lock()
		if err := s.hdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing control plane history database: %w", err))
		}
		s.persistMu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Connections is the number of client connections currently open on servers started by Serve
// with this Server.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// Services returns a snapshot of every registered service's status, sorted by id. The values
// are copies the caller may keep and modify.
func (s *Server) Services() []*flowctlv1.ComponentStatusResponse {
	es := s.sortedEntries()
	out := make([]*flowctlv1.ComponentStatusResponse, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		st := e.statusLocked()
		e.mu.Unlock()
		st.Component = proto.Clone(st.Component).(*flowctlv1.ComponentInfo)
		out = append(out, st)
	}
	return out
}

func (s *Server) sortedEntries() []*entry {
	s.mu.RLock()
	es := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		es = append(es, e)
	}
	s.mu.RUnlock()
	sort.Slice(es, func(i, j int) bool { return es[i].id < es[j].id })
	return es
}

func (s *Server) lookup(id string) *entry {
	s.mu.RLock()
	e := s.entries[id]
	s.mu.RUnlock()
	return e
}

// statusLocked builds the wire status of e (e.mu held). Component is shared (immutable),
// metrics are copied.
func (e *entry) statusLocked() *flowctlv1.ComponentStatusResponse {
	m := make(map[string]string, len(e.metrics))
	for k, v := range e.metrics {
		m[k] = v
	}
	return &flowctlv1.ComponentStatusResponse{
		Component:     e.info,
		Status:        e.status,
		LastHeartbeat: timestamppb.New(e.lastHB),
		Metrics:       m,
		RegisteredAt:  timestamppb.New(e.registeredAt),
	}
}

func (s *Server) markDirty(id string) {
	if s.db == nil {
		return
	}
	s.dirtyMu.Lock()
	s.dirty[id] = struct{}{}
	s.dirtyMu.Unlock()
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
