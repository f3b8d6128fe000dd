// Package daemon is the cdpd process: flags and environment, one oklog/run group whose actors
// are the signal handlers, the config-directory watcher feeding the pipeline host, the flowctl
// control client (and optionally an embedded control plane), and the HTTP server; and the
// ordered graceful shutdown of all of them. main lives in cmd/cdpd.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/loader"
)

// daemon is the state shared by the actors of one Run.
type daemon struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time // the hand-off's clock (time.Now; tests inject one)
	reg     *prometheus.Registry
	host    *host.Host
	client  *control.Client
	watcher *loader.Watcher

	ready     chan struct{} // closed once the initial configuration is applied
	readyOnce sync.Once

	reload   *reloadMetrics
	batchSeq uint64         // batches received (onBatch, on the watcher's goroutine only)
	batches  sync.WaitGroup // batches being applied

	rejected atomic.Pointer[rejections] // the loader's standing errors, for ConfigRejected (standing.go)

	mu  sync.Mutex
	ids map[string]string // service id -> the pipeline registered under it

	foreign foreignPipelines // pipelines of the directory that other shards run
	handoff handoff          // pipelines of this shard another instance still runs (handoff.go)
}

// Run runs cdpd until ctx is cancelled or SIGINT/SIGTERM arrives (both a clean stop: nil).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return runWith(ctx, cfg, logger, nil)
}

// runWith is Run serving HTTP on httpLis when it is not nil (tests pass a listener bound to
// 127.0.0.1:0, so that no two race for a port) instead of listening on cfg.HTTPAddr. runWith
// closes it.
func runWith(ctx context.Context, cfg Config, logger *slog.Logger, httpLis net.Listener) error {
	if httpLis != nil {
		defer httpLis.Close()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	// Before anything touches the state directory: one cdpd per state directory.
	lock, err := lockStateDir(cfg.StateDir, time.Now())
	if err != nil {
		return err
	}
	defer func() {
		if err := lock.release(); err != nil {
			logger.Warn("releasing the state directory", "err", err)
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	d := &daemon{
		cfg:    cfg,
		log:    logger,
		now:    time.Now,
		reg:    reg,
		ready:  make(chan struct{}),
		ids:    map[string]string{},
		reload: newReloadMetrics(f),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_build_info", Help: "cdpd build.",
		ConstLabels: prometheus.Labels{"version": Version}}, func() float64 { return 1 })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_shard_index",
		Help: "This replica's shard (--shard-index); 0 unsharded."}, func() float64 { return float64(cfg.Shard.Index) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_shard_count",
		Help: "The fleet's shard count as this replica sees it (--shard-count); 1 unsharded."},
		func() float64 { return float64(max(cfg.Shard.Count, 1)) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_pipelines_waiting_handoff",
		Help: "Pipelines of this shard not started because another instance still runs them (a shard count change in progress)."},
		func() float64 { return float64(d.waitingCount()) })
	f.NewCounterFunc(prometheus.CounterOpts{Name: "cdpd_handoff_checks_total",
		Help: "Times this replica asked the control plane whether another instance still runs a pipeline of its shard."},
		func() float64 { return float64(d.handoff.checks.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_config_warnings",
		Help: "Warnings about the applied pipeline definitions (config keys a component does not know, no consumers); --strict turns them into errors."},
		func() float64 { return float64(d.configWarnings()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_service_id_conflicts",
		Help: "Running pipelines that are not registered with the control plane because another pipeline's name maps to the same service id (rename one)."},
		func() float64 { return float64(d.idConflicts()) })

	registry, err := builtin.Registry()
	if err != nil {
		return fmt.Errorf("building the component registry: %w", err)
	}

	// The HTTP listener is opened first: a busy port fails the start, not a later actor.
	if httpLis == nil {
		if httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listening for HTTP on %s: %w", cfg.HTTPAddr, err)
		}
		defer httpLis.Close()
	}

	var cpLis net.Listener
	if cfg.EmbeddedControlPlane != "" {
		if cpLis, err = net.Listen("tcp", cfg.EmbeddedControlPlane); err != nil {
			return fmt.Errorf("listening for the embedded control plane on %s: %w", cfg.EmbeddedControlPlane, err)
		}
		defer cpLis.Close()
		if cfg.FlowctlEndpoint == "" {
			cfg.FlowctlEndpoint = dialAddr(cpLis.Addr())
			d.cfg.FlowctlEndpoint = cfg.FlowctlEndpoint
		}
	}

	var token string
	if cfg.FlowctlEndpoint != "" {
		if token, err = ownerToken(cfg.StateDir); err != nil {
			return err
		}
	}
	d.client, err = control.NewClient(control.Config{
		Endpoint: cfg.FlowctlEndpoint, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, TLSCA: cfg.TLSCA,
		HeartbeatInterval: cfg.HeartbeatInterval, Logger: logger.With("component", "control"), Registerer: reg,
		OwnerToken: token,
	})
	if err != nil {
		return fmt.Errorf("creating the control plane client: %w", err)
	}
	defer d.client.Close()

	d.host = host.New(host.Options{
		Registry:     registry,
		StateDir:     filepath.Join(cfg.StateDir, "pipelines"),
		Logger:       logger,
		DrainTimeout: cfg.DrainTimeout,
		StuckAfter:   cfg.StuckAfter,
		OnRunning:    d.attach,
		OnRemoved:    d.detach,
		LedgerMemory: cfg.LedgerMemory,
		// A rejected edit of a running pipeline's file: degraded, config_rejected.
		ConfigRejected: d.configRejected,
	})
	reg.MustRegister(d.host.Readers()) // cdpd_reader_*, cdpd_ledger_memory_*, cdpd_ledger_buffers_*

	d.watcher, err = loader.NewWatcher(loader.Options{
		Dir: cfg.ConfigDir, Check: builtin.LoaderCheck(registry), NameOverride: cfg.PipelineName,
		Strict: cfg.Strict, Logger: logger.With("component", "loader"),
	})
	if err != nil {
		return fmt.Errorf("watching the config directory: %w", err)
	}

	// Reload triggers: SIGHUP (buffered 1, so a burst is one rescan) and POST /api/v1/reload
	// both end in watcher.Rescan, the one place where configuration is read.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var g run.Group
	{
		// Termination: SIGINT/SIGTERM (or ctx) stop the group; everything below is torn down in
		// the order the actors are added.
		g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	}
	{
		// SIGHUP -> forced rescan of the config directory.
		hctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			for {
				select {
				case <-hup:
					d.log.Info("SIGHUP: rescanning the config directory")
					d.watcher.Rescan()
				case <-hctx.Done():
					return nil
				}
			}
		}, func(error) { cancel() })
	}
	{
		// Watcher: the initial scan, then every change of the directory, applied to the host.
		// Its interrupt waits until no change is being applied, so the host stops next with
		// nothing in flight.
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			var claims sync.WaitGroup
			cctx, stopClaims := context.WithCancel(wctx)
			claims.Go(func() { d.claimLoop(cctx) }) // hand-offs between replicas (handoff.go)
			err := d.watcher.Run(wctx, func(b loader.Batch) { d.onBatch(wctx, b) })
			stopClaims()
			claims.Wait()
			d.batches.Wait()
			if wctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("config watcher: %w", err)
		}, func(error) {
			cancel()
			<-done
		})
	}
	{
		// Host: waits for the initial configuration, runs until interrupted; its interrupt
		// drains every pipeline (checkpoints written) and unregisters them, bounded by the
		// drain timeout.
		stop := make(chan struct{})
		g.Add(func() error {
			<-stop
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+5*time.Second)
			defer cancel()
			if err := d.host.Close(sctx); err != nil {
				d.log.Error("stopping pipelines", "err", err)
			}
			d.detachAll(sctx)
			close(stop)
		})
	}
	{
		// Control client: registers and heartbeats every running pipeline.
		cctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			select {
			case <-d.ready:
			case <-cctx.Done():
				return nil
			}
			return d.client.Run(cctx)
		}, func(error) { cancel() })
	}
	if cpLis != nil {
		// Embedded control plane: the same plane as `flowctl server` (registry, history,
		// alerts), its actors stopped after the pipelines have unregistered from it.
		cp, err := plane.Add(&g, embeddedPlane(cfg, cpLis, logger, reg))
		if err != nil {
			return fmt.Errorf("starting the embedded control plane: %w", err)
		}
		defer cp.Close()
	}
	{
		// HTTP server: /metrics, /healthz, /readyz, /api/v1. Last to stop, so a scrape sees the
		// shutdown.
		srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
		g.Add(func() error {
			if err := srv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("HTTP server: %w", err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}

	logger.Info("cdpd starting", "version", Version, "config_dir", cfg.ConfigDir,
		"http_addr", httpLis.Addr().String(), "control_plane", endpointOrNone(cfg.FlowctlEndpoint),
		"instance", cfg.instanceName(), "shard", cfg.Shard.String())
	err = g.Run()
	switch {
	case errors.Is(err, run.ErrSignal):
		logger.Info("cdpd stopped", "reason", err.Error())
		return nil
	case errors.Is(err, context.Canceled):
		logger.Info("cdpd stopped")
		return nil
	}
	return err
}

// embeddedPlane configures the embedded control plane: its database in the state dir, its
// metrics in the daemon's registry, its heartbeat TTL derived from --heartbeat-interval
// (server.HeartbeatTTLFor), so that pipelines heartbeating at any interval stay healthy, and
// the TLS files of cdpd's own client (FLOWCTL_TLS_*), which speaks TLS as soon as any is set:
// the plane serves with the same certificate, mutual TLS when a CA is given. A cdpd that is
// both ends needs a certificate for both (server and client authentication) that names the
// address it dials. cdpd is the plane's main client: the per-client registration limit is the
// whole registry's.
func embeddedPlane(cfg Config, lis net.Listener, logger *slog.Logger, reg *prometheus.Registry) plane.Config {
	return plane.Config{
		Listener:             lis,
		DBPath:               filepath.Join(cfg.StateDir, "flowctl.db"),
		HeartbeatInterval:    cfg.HeartbeatInterval,
		HistoryMaxBytes:      int64(cfg.EmbeddedHistoryMaxBytes),
		HistoryTotalBytes:    int64(cfg.EmbeddedHistoryTotalBytes),
		ServiceExpiry:        cfg.EmbeddedServiceExpiry,
		MaxServicesPerClient: server.DefaultMaxServices,
		TLSCert:              cfg.TLSCert,
		TLSKey:               cfg.TLSKey,
		TLSCA:                cfg.TLSCA,
		Logger:               logger.With("component", "control-plane"),
		Registerer:           reg,
		Gatherer:             reg,
	}
}

// dialAddr is the address cdpd's client dials to reach its embedded plane listening on addr:
// loopback when it listens on every interface (0.0.0.0, ::).
func dialAddr(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
}

func endpointOrNone(e string) string {
	if e == "" {
		return "none (" + contract.EnvEndpoint + " unset)"
	}
	return e
}

// serviceID is a pipeline's service id: prefixed by --instance when unsharded; a sharded
// fleet's ids are fleet-wide (a pipeline keeps its id when the shard count changes and it moves
// to another replica).
func (d *daemon) serviceID(name string) string {
	if d.cfg.Shard.Sharded() {
		return control.ServiceID("", name)
	}
	return control.ServiceID(d.cfg.Instance, name)
}

// attach registers a running pipeline with the control plane (host OnRunning). Two names that
// map to one service id (e.g. "ContractEvents" and "contract-events") cannot both be
// registered: the first keeps the id, the second runs unregistered and the conflict is
// reported on it.
func (d *daemon) attach(p *host.Pipeline) {
	id := d.serviceID(p.Name())
	d.mu.Lock()
	holder, taken := d.ids[id]
	if taken && holder != p.Name() {
		d.mu.Unlock()
		d.log.Error("service id conflict: pipeline not registered with the control plane", "pipeline", p.Name(), "service_id", id, "holder", holder)
		return
	}
	d.ids[id] = p.Name()
	d.mu.Unlock()
	d.client.Attach(registration(id, p.Name(), p.Definition(), d.cfg.instanceName(), d.cfg.Shard), p)
}

// registration is what the control plane is told about a pipeline. The network is the one
// its components use (loader.Pipeline.Network), so the two cannot disagree. instance is the
// daemon's name in the fleet and sh its shard, so that `flowctl status` shows which replica
// runs each pipeline.
func registration(id, name string, def *loader.Pipeline, instance string, sh shard.Spec) control.Registration {
	return control.Registration{
		ServiceID:   id,
		Name:        name,
		Description: "CDP pipeline " + name + " hosted by cdpd",
		Version:     Version,
		Metadata: map[string]string{
			contract.MetaServiceType: contract.ServiceTypePipeline,
			contract.MetaConfigFile:  def.File,
			contract.MetaNetwork:     def.Network(),
			contract.MetaVersion:     Version,
			contract.MetaHost:        hostname(),
			contract.MetaInstance:    instance,
			contract.MetaShard:       strconv.Itoa(sh.Index),
			contract.MetaShardCount:  strconv.Itoa(max(sh.Count, 1)),
		},
	}
}

// detach unregisters a removed pipeline (host OnRemoved).
func (d *daemon) detach(name string) {
	id := d.serviceID(name)
	d.mu.Lock()
	if d.ids[id] != name {
		d.mu.Unlock()
		return // never registered (id conflict)
	}
	delete(d.ids, id)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.client.Detach(ctx, id); err != nil {
		d.log.Warn("unregistering from the control plane failed", "pipeline", name, "err", err)
	}
}

// idConflict says which other pipeline holds name's service id ("" when none does).
func (d *daemon) idConflict(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if holder, ok := d.ids[d.serviceID(name)]; ok && holder != name {
		return holder
	}
	return ""
}

// detachAll unregisters every registered pipeline at shutdown.
func (d *daemon) detachAll(ctx context.Context) {
	d.mu.Lock()
	ids := make(map[string]string, len(d.ids))
	for id, name := range d.ids {
		ids[id] = name
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for id, name := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.client.Detach(ctx, id); err != nil {
				d.log.Warn("unregistering from the control plane failed", "pipeline", name, "err", err)
			}
		}()
	}
	wg.Wait()
}
