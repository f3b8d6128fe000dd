// Package daemon is the cdpd process: flags and environment, one oklog/run group whose actors
// are the signal handlers, the config-directory watcher feeding the pipeline host, the flowctl
// control client (and optionally an embedded control plane), and the HTTP server; and the
// ordered graceful shutdown of all of them. main lives in daemon/cmd/cdpd.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/cli"
	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/loader"
)

// Version is set at build time with -ldflags "-X github.com/withobsrvr/cdpd/daemon.Version=...".
var Version = "dev"

// Main runs the cdpd command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintf(stdout, "cdpd %s\n", Version)
			return 0
		case "validate":
			return validateCmd(args[1:], stdout, stderr)
		case "components":
			return componentsCmd(args[1:], stdout, stderr)
		}
	}
	cfg, err := parseFlags(args, os.LookupEnv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cdpd: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	ctx := context.Background()
	if err := Run(ctx, cfg, logger); err != nil {
		logger.Error("cdpd stopped with an error", "err", err)
		return 1
	}
	return 0
}

// validateCmd checks a config directory the way the daemon would load it (CI of config repos).
func validateCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: cdpd validate DIR")
		return 2
	}
	reg, err := builtin.Registry()
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: building the component registry: %v\n", err)
		return 1
	}
	name, _ := os.LookupEnv("CDP_PIPELINE_NAME")
	pipelines, errs, err := loader.Load(loader.Options{Dir: args[0], Check: builtin.LoaderCheck(reg), NameOverride: name})
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: %v\n", err)
		return 1
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
	}
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%d error(s); %d valid pipeline(s): %s\n", len(errs), len(names), strings.Join(names, ", "))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d pipeline(s): %s\n", len(names), strings.Join(names, ", "))
	return 0
}

// applyError is a pipeline change the host refused.
type applyError struct{ file, msg string }

// daemon is the state shared by the actors of one Run.
type daemon struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	host    *host.Host
	client  *control.Client
	watcher *loader.Watcher

	ready     chan struct{} // closed once the initial configuration is applied
	readyOnce sync.Once

	mu        sync.Mutex
	applyErrs map[string]applyError // pipeline -> its last failed apply (cleared on success)
	ids       map[string]string     // service id -> the pipeline registered under it

	reloadOK      prometheus.Gauge
	reloadOKTime  prometheus.Gauge
	configHash    prometheus.Gauge
	applyFailures *prometheus.CounterVec
}

// Run runs cdpd until ctx is cancelled or SIGINT/SIGTERM arrives (both a clean stop: nil).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	d := &daemon{
		cfg:       cfg,
		log:       logger,
		reg:       reg,
		ready:     make(chan struct{}),
		applyErrs: map[string]applyError{},
		ids:       map[string]string{},
		reloadOK: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_last_reload_successful",
			Help: "Whether the last configuration reload (every file parsed and every change applied) succeeded."}),
		reloadOKTime: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload."}),
		configHash: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_hash",
			Help: "Hash of the applied configuration (first 48 bits of its SHA-256)."}),
		applyFailures: f.NewCounterVec(prometheus.CounterOpts{Name: "cdpd_pipeline_apply_failures_total",
			Help: "Pipeline changes (add, update, remove) that failed to apply."}, []string{"kind"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "cdpd_build_info", Help: "cdpd build.",
		ConstLabels: prometheus.Labels{"version": Version}}, func() float64 { return 1 })

	registry, err := builtin.Registry()
	if err != nil {
		return fmt.Errorf("building the component registry: %w", err)
	}

	// The HTTP listener is opened first: a busy port fails the start, not a later actor.
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening for HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	defer httpLis.Close()

	var cpLis net.Listener
	if cfg.EmbeddedControlPlane != "" {
		if cpLis, err = net.Listen("tcp", cfg.EmbeddedControlPlane); err != nil {
			return fmt.Errorf("listening for the embedded control plane on %s: %w", cfg.EmbeddedControlPlane, err)
		}
		defer cpLis.Close()
		if cfg.FlowctlEndpoint == "" {
			cfg.FlowctlEndpoint = cpLis.Addr().String()
			d.cfg.FlowctlEndpoint = cfg.FlowctlEndpoint
		}
	}

	d.client, err = control.NewClient(control.Config{
		Endpoint: cfg.FlowctlEndpoint, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey, TLSCA: cfg.TLSCA,
		HeartbeatInterval: cfg.HeartbeatInterval, Logger: logger.With("component", "control"), Registerer: reg,
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
	})

	d.watcher, err = loader.NewWatcher(loader.Options{
		Dir: cfg.ConfigDir, Check: builtin.LoaderCheck(registry), NameOverride: cfg.PipelineName,
		Logger: logger.With("component", "loader"),
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
		ap := newApplier(wctx, d.applyEvent)
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			err := d.watcher.Run(wctx, func(b loader.Batch) { d.onBatch(b, ap) })
			ap.wait()
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
		// Embedded control plane: the same server as `flowctl server` (registry, history,
		// alerts), its database in the state dir.
		sctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			return cli.ServeControlPlane(sctx, cpLis, cli.ServerConfig{
				DBPath: filepath.Join(cfg.StateDir, "flowctl.db"),
				Logger: logger.With("component", "control-plane"), Registerer: reg, Gatherer: reg,
			})
		}, func(error) { cancel() })
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
		"http_addr", httpLis.Addr().String(), "control_plane", endpointOrNone(cfg.FlowctlEndpoint))
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

func endpointOrNone(e string) string {
	if e == "" {
		return "none (FLOWCTL_ENDPOINT unset)"
	}
	return e
}

// onBatch applies one batch of configuration changes. The first (initial) batch is applied
// before the daemon reports ready.
func (d *daemon) onBatch(b loader.Batch, ap *applier) {
	for _, e := range b.Errors {
		d.log.Error("config error", "pipeline", e.Pipeline, "file", e.File, "line", e.Line, "err", e.Error())
	}
	wait := ap.submit(b.Events)
	finish := func() {
		failed := len(b.Errors) > 0
		for _, ev := range b.Events {
			d.mu.Lock()
			_, bad := d.applyErrs[ev.Pipeline.Name]
			d.mu.Unlock()
			failed = failed || bad
		}
		if failed {
			d.reloadOK.Set(0)
		} else {
			d.reloadOK.Set(1)
			d.reloadOKTime.SetToCurrentTime()
		}
		d.configHash.Set(hashGauge(b.Hash))
	}
	if !b.Initial {
		go func() { wait(); finish() }()
		return
	}
	wait()
	finish()
	names := make([]string, 0, len(b.Events))
	for _, ev := range b.Events {
		names = append(names, ev.Pipeline.Name)
	}
	sort.Strings(names)
	d.log.Info("initial configuration applied", "pipelines", names, "config_errors", len(b.Errors),
		"control_plane", endpointOrNone(d.cfg.FlowctlEndpoint))
	d.readyOnce.Do(func() { close(d.ready) })
}

// applyEvent applies one change to the host and records its outcome for the API.
func (d *daemon) applyEvent(ctx context.Context, ev loader.Event) error {
	name := ev.Pipeline.Name
	log := d.log.With("pipeline", name)
	err := d.host.Apply(ctx, ev)
	d.mu.Lock()
	if err != nil && ev.Kind != loader.Remove {
		d.applyErrs[name] = applyError{file: ev.Pipeline.File, msg: err.Error()}
	} else {
		delete(d.applyErrs, name)
	}
	d.mu.Unlock()
	if err != nil {
		d.applyFailures.WithLabelValues(ev.Kind.String()).Inc()
		log.Error("applying pipeline change failed; the previous version (if any) keeps running",
			"change", ev.Kind.String(), "file", ev.Pipeline.File, "err", err)
		return err
	}
	log.Info("pipeline change applied", "change", ev.Kind.String(), "file", ev.Pipeline.File)
	return nil
}

func (d *daemon) serviceID(name string) string { return control.ServiceID(d.cfg.Instance, name) }

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
	def := p.Definition()
	network, _ := def.Source.Config["network"].(string)
	d.client.Attach(control.Registration{
		ServiceID:   id,
		Name:        p.Name(),
		Description: "CDP pipeline " + p.Name() + " hosted by cdpd",
		Version:     Version,
		Metadata: map[string]string{
			"service_type": "cdp-pipeline",
			"config_file":  def.File,
			"network":      network,
			"version":      Version,
			"host":         hostname(),
			"instance":     d.cfg.Instance,
		},
	}, p)
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

// hashGauge turns a hex hash into a number a gauge holds exactly (its first 48 bits).
func hashGauge(h string) float64 {
	if len(h) < 12 {
		return 0
	}
	v, _ := strconv.ParseUint(h[:12], 16, 64)
	return float64(v)
}
