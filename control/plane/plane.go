// Package plane assembles cdpd's control plane: the flowctl.v1 server with its registry, store
// and janitor (control/server), the alert engine (control/alert) and an optional Prometheus
// /metrics endpoint, as the actors of an oklog/run group. It is the one assembly point: both
// `flowctl server` (control/cli, through Run) and cdpd's --embedded-control-plane (daemon,
// through Add on the daemon's own group) build the plane here.
//
// Listeners are opened by the caller and handed over (a port of 0 is reported by Plane.Addr),
// so that a busy port fails the caller's start and tests never race for free ports.
//
// The heartbeat TTL follows one rule, server.HeartbeatTTLFor: Config.HeartbeatTTL when set,
// else max(30 s, 3 × Config.HeartbeatInterval), the interval of the clients (cdpd passes its
// --heartbeat-interval), so that no interval makes healthy pipelines flap.
package plane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/withobsrvr/cdpd/control/alert"
	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/control/tlsutil"
)

// AlertFlushTimeout bounds how long undelivered alert notifications are given at shutdown.
const AlertFlushTimeout = 5 * time.Second

// Config configures a control plane. Zero durations and sizes take the server package's
// defaults.
type Config struct {
	// Listener serves gRPC (required). The plane owns it from Add on: it is closed when the
	// plane stops, or by Add when Add fails.
	Listener net.Listener
	// MetricsListener, when not nil, serves Prometheus /metrics of Gatherer; owned like
	// Listener.
	MetricsListener net.Listener

	DBPath string // bbolt file of the registry and the alert rules; "" = in memory
	// HeartbeatTTL marks a service unhealthy after this long without a heartbeat; zero
	// derives it from HeartbeatInterval (server.HeartbeatTTLFor).
	HeartbeatTTL time.Duration
	// HeartbeatInterval is the clients' heartbeat interval (cdpd's --heartbeat-interval); it
	// only sets the default of HeartbeatTTL.
	HeartbeatInterval time.Duration
	JanitorInterval   time.Duration
	HistoryMaxAge     time.Duration
	HistoryMaxSamples int
	// HistoryMaxBytes and HistoryTotalBytes are the history budgets of one service and of
	// all (0 = the server package's defaults).
	HistoryMaxBytes   int64
	HistoryTotalBytes int64
	MaxServices       int // registry cap; 0 = the server package's default
	// MaxServicesPerClient caps the services of one client identity; 0 = the default.
	MaxServicesPerClient int
	// ServiceExpiry removes services silent for this long; 0 = the default (a day).
	ServiceExpiry time.Duration
	TLSCert       string // server certificate; with TLSKey turns TLS on
	TLSKey        string
	TLSCA         string // CA of client certificates: mutual TLS
	// AlertEvalInterval is how often alert rules with a duration are re-evaluated [1 s].
	AlertEvalInterval time.Duration
	// AlertClient posts alert webhooks [10 s timeout].
	AlertClient *http.Client
	Now         func() time.Time
	Logger      *slog.Logger
	// Registerer receives the control plane's metrics; nil = a new registry with the Go and
	// process collectors (served on MetricsListener when set).
	Registerer prometheus.Registerer
	// Gatherer serves MetricsListener; defaults to the registry made for a nil Registerer.
	Gatherer prometheus.Gatherer

	// ReexportMetrics re-exports every service's heartbeat metrics on /metrics, at most this
	// many per service (server.Options.ReexportMetrics); 0 = off.
	ReexportMetrics int
}

// Plane is a control plane whose actors were added to a run.Group by Add.
type Plane struct {
	srv    *server.Server
	alerts *alert.Manager
	addr   net.Addr
	ttl    time.Duration

	closeOnce sync.Once
	closeErr  error
	owned     []net.Listener
}

// Add builds the control plane of cfg (opens its store, loads its alert rules) and adds its
// actors to g, after the actors g already has. Interrupts run in the order actors were added,
// so the plane stops in this order, each step finished before the next starts: the gRPC server
// (no RPC changes the registry afterwards), the janitor and persistence flusher, the alert
// engine (pending notifications get AlertFlushTimeout), /metrics, and last the store (pending
// heartbeats flushed, database closed). A caller that adds the plane to a larger group puts
// the actors that still talk to the plane (cdpd's pipelines unregistering) before it.
//
// When Add fails it has closed the listeners and everything it opened. When it succeeds, run
// g; Close releases the plane if g is never run.
func Add(g *run.Group, cfg Config) (*Plane, error) {
	p := &Plane{owned: []net.Listener{cfg.Listener, cfg.MetricsListener}}
	if cfg.Listener == nil {
		p.closeListeners()
		return nil, errors.New("control plane: no gRPC listener")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg, gath := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gath = r, r
	}
	if cfg.MetricsListener != nil && gath == nil {
		p.closeListeners()
		return nil, errors.New("control plane: a /metrics listener needs a Gatherer")
	}
	tlsConf, err := tlsutil.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
	if err != nil {
		p.closeListeners()
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if cfg.DBPath != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.DBPath), 0o755); err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("creating the directory of the control plane database: %w", err)
		}
	}
	p.ttl = cfg.HeartbeatTTL
	if p.ttl <= 0 {
		p.ttl = server.HeartbeatTTLFor(cfg.HeartbeatInterval)
	}
	p.srv, err = server.New(server.Options{
		DBPath:               cfg.DBPath,
		HeartbeatTTL:         p.ttl,
		JanitorInterval:      cfg.JanitorInterval,
		HistoryMaxAge:        cfg.HistoryMaxAge,
		HistoryMaxSamples:    cfg.HistoryMaxSamples,
		HistoryMaxBytes:      cfg.HistoryMaxBytes,
		HistoryTotalBytes:    cfg.HistoryTotalBytes,
		MaxServices:          cfg.MaxServices,
		MaxServicesPerClient: cfg.MaxServicesPerClient,
		ServiceExpiry:        cfg.ServiceExpiry,
		ReexportMetrics:      cfg.ReexportMetrics,
		Now:                  cfg.Now,
		Logger:               log,
		Registerer:           reg,
	})
	if err != nil {
		p.closeListeners()
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	p.alerts, err = alert.New(alert.Options{
		DB:           p.srv.DB(),
		Now:          cfg.Now,
		Client:       cfg.AlertClient,
		Logger:       log,
		Services:     p.srv.Services,
		EvalInterval: cfg.AlertEvalInterval,
		Registerer:   reg,
	})
	if err != nil {
		p.closeListeners()
		return nil, errors.Join(fmt.Errorf("loading alert rules: %w", err), p.srv.Close())
	}
	p.srv.AddObserver(func(ev server.ServiceEvent) {
		p.alerts.Observe(alert.Event{
			ServiceID: ev.ServiceID,
			Status:    ev.Status,
			Metrics:   ev.Metrics,
			Removed:   ev.Kind == server.EventUnregistered || ev.Kind == server.EventExpired,
			Replace:   ev.Kind == server.EventRegistered,
		})
	})
	p.srv.AddService(func(r grpc.ServiceRegistrar) { cdpdv1.RegisterAlertServiceServer(r, p.alerts) })
	gs := server.NewGRPCServer(p.srv, tlsConf)
	lis := cfg.Listener
	p.addr = lis.Addr()

	{
		// gRPC server: flowctl.v1, cdpd.v1 history and alerts, gRPC health. First to stop
		// (health NOT_SERVING, in-flight RPCs finish), so nothing changes the registry while
		// the rest shuts down.
		g.Add(func() error {
			log.Info("control plane serving", "address", p.addr.String(), "tls", tlsConf != nil,
				"mtls", tlsConf != nil && tlsConf.ClientCAs != nil, "persistence", cfg.DBPath != "",
				"db_path", cfg.DBPath, "heartbeat_ttl", p.ttl.String())
			if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serving the control plane: %w", err)
			}
			return nil
		}, func(error) {
			server.GracefulStop(p.srv, gs)
		})
	}
	{
		// Janitor (silent services become unhealthy, old history goes) and, with a store, the
		// heartbeat flusher.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			return p.srv.Run(ctx)
		}, func(error) {
			cancel()
			<-done
		})
	}
	{
		// Alert engine: re-evaluates rules with a duration; notifications are delivered by
		// the engine's own senders, given AlertFlushTimeout to finish at shutdown.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			return p.alerts.Run(ctx)
		}, func(error) {
			cancel()
			<-done
			fctx, fcancel := context.WithTimeout(context.Background(), AlertFlushTimeout)
			defer fcancel()
			if err := p.alerts.Flush(fctx); err != nil {
				log.Warn("alert notifications still pending at shutdown", "err", err)
			}
		})
	}
	if mlis := cfg.MetricsListener; mlis != nil {
		// /metrics: Prometheus scrapes of the control plane.
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(gath, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving Prometheus metrics", "address", mlis.Addr().String())
		g.Add(func() error {
			if err := hs.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving /metrics: %w", err)
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			_ = mlis.Close() // Shutdown before Serve leaves it open
		})
	}
	{
		// Store: last to stop. Closes the alert engine and then the server (pending heartbeats
		// flushed, database closed).
		stop := make(chan struct{})
		g.Add(func() error {
			<-stop
			return nil
		}, func(error) {
			if err := p.Close(); err != nil {
				log.Error("closing the control plane", "err", err)
			}
			close(stop)
		})
	}
	return p, nil
}

// Close releases what Add opened: the listeners, the alert engine and the server's store. The
// group's last actor calls it; call it yourself only when the group never runs. Close is
// idempotent and returns the first call's error.
func (p *Plane) Close() error {
	p.closeOnce.Do(func() {
		p.closeListeners()
		p.closeErr = errors.Join(p.alerts.Close(), p.srv.Close())
	})
	return p.closeErr
}

func (p *Plane) closeListeners() {
	for _, l := range p.owned {
		if l != nil {
			_ = l.Close()
		}
	}
}

// Addr is the address the gRPC server listens on.
func (p *Plane) Addr() net.Addr { return p.addr }

// HeartbeatTTL is the TTL the janitor judges services by.
func (p *Plane) HeartbeatTTL() time.Duration { return p.ttl }

// Server is the flowctl.v1 server (for Sweep, Services and the like in tests).
func (p *Plane) Server() *server.Server { return p.srv }

// Run runs a control plane alone until ctx is done (a clean stop: nil) or one of its actors
// fails: `flowctl server`.
func Run(ctx context.Context, cfg Config) error {
	var g run.Group
	{
		// Termination: ctx (SIGINT/SIGTERM in flowctl) stops the group.
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			<-ctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	p, err := Add(&g, cfg)
	if err != nil {
		return err
	}
	return errors.Join(g.Run(), p.Close())
}

// Alerts is the alert engine (for Flush and Evaluate in tests).
func (p *Plane) Alerts() *alert.Manager { return p.alerts }
