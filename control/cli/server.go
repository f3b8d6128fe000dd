package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/withobsrvr/cdpd/control/alert"
	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/control/tlsutil"
)

// ServerConfig configures ServeControlPlane. Zero durations and sizes take the server
// package's defaults.
type ServerConfig struct {
	DBPath            string // bbolt file of the registry and the alert rules; "" = in memory
	HeartbeatTTL      time.Duration
	JanitorInterval   time.Duration
	HistoryMaxAge     time.Duration
	HistoryMaxSamples int
	MaxServices       int    // registry cap; 0 = the server package's default
	TLSCert           string // server certificate; with TLSKey turns TLS on
	TLSKey            string
	TLSCA             string // CA of client certificates: mutual TLS
	// MetricsAddr serves Prometheus /metrics on host:port when not empty.
	MetricsAddr string
	// AlertEvalInterval is how often alert rules with a duration are re-evaluated [1 s].
	AlertEvalInterval time.Duration
	// AlertClient posts alert webhooks [10 s timeout].
	AlertClient *http.Client
	Now         func() time.Time
	Logger      *slog.Logger
	// Registerer receives the control plane's metrics; nil = a new registry (served on
	// MetricsAddr when set).
	Registerer prometheus.Registerer
	// Gatherer serves MetricsAddr; defaults to the registry made for a nil Registerer.
	Gatherer prometheus.Gatherer
}

// ServeControlPlane runs cdpd's control plane on lis until ctx ends: flowctl.v1
// ControlPlaneService, cdpd.v1 HistoryService and AlertService, the gRPC health service,
// the janitor and the alert evaluator. Undelivered alert notifications get up to 5 s at
// shutdown. It closes lis and everything it opened.
func ServeControlPlane(ctx context.Context, lis net.Listener, cfg ServerConfig) (err error) {
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
	tlsConf, err := tlsutil.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
	if err != nil {
		_ = lis.Close()
		return err
	}
	if cfg.DBPath != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.DBPath), 0o755); err != nil {
			_ = lis.Close()
			return fmt.Errorf("creating the directory of the control plane database: %w", err)
		}
	}
	srv, err := server.New(server.Options{
		DBPath:            cfg.DBPath,
		HeartbeatTTL:      cfg.HeartbeatTTL,
		JanitorInterval:   cfg.JanitorInterval,
		HistoryMaxAge:     cfg.HistoryMaxAge,
		HistoryMaxSamples: cfg.HistoryMaxSamples,
		MaxServices:       cfg.MaxServices,
		Now:               cfg.Now,
		Logger:            log,
		Registerer:        reg,
	})
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if cerr := srv.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	alerts, err := alert.New(alert.Options{
		DB:           srv.DB(),
		Now:          cfg.Now,
		Client:       cfg.AlertClient,
		Logger:       log,
		Services:     srv.Services,
		EvalInterval: cfg.AlertEvalInterval,
		Registerer:   reg,
	})
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("loading alert rules: %w", err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if ferr := alerts.Flush(fctx); ferr != nil {
			log.Warn("alert notifications still pending at shutdown", "err", ferr)
		}
		cancel()
		_ = alerts.Close()
	}()
	srv.AddObserver(func(ev server.ServiceEvent) {
		alerts.Observe(alert.Event{
			ServiceID: ev.ServiceID,
			Status:    ev.Status,
			Metrics:   ev.Metrics,
			Removed:   ev.Kind == server.EventUnregistered,
			Replace:   ev.Kind == server.EventRegistered,
		})
	})
	srv.AddService(func(g grpc.ServiceRegistrar) { cdpdv1.RegisterAlertServiceServer(g, alerts) })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evalDone := make(chan struct{})
	go func() {
		defer close(evalDone)
		_ = alerts.Run(ctx)
	}()
	defer func() { cancel(); <-evalDone }()

	if cfg.MetricsAddr != "" {
		mlis, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("listening for /metrics on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(gath, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		httpDone := make(chan struct{})
		go func() {
			defer close(httpDone)
			if err := hs.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("serving /metrics", "err", err)
			}
		}()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = hs.Shutdown(sctx)
			scancel()
			<-httpDone
		}()
		log.Info("serving Prometheus metrics", "address", mlis.Addr().String())
	}
	return server.Serve(ctx, lis, srv, tlsConf)
}

// defaultDBPath is ~/.flowctl/cdpd-flowctl.db: upstream flowctl's directory, but a file name
// of our own so that the two servers never open each other's database.
func defaultDBPath() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "flowctl.db"
	}
	return filepath.Join(home, ".flowctl", "cdpd-flowctl.db")
}

func (a *App) cmdServer(ctx context.Context, args []string) int {
	fs := a.newFlagSet("server", "server [flags]")
	address := fs.String("address", "127.0.0.1", "address to listen on (upstream's default is 0.0.0.0; ours is loopback: pass 0.0.0.0 to serve other hosts)")
	port := fs.Int("port", 8080, "port to listen on (0 picks a free one)")
	dbPath := fs.String("db-path", defaultDBPath(), "bbolt file of the service registry, heartbeat history and alert rules")
	noPersist := fs.Bool("no-persistence", false, "keep everything in memory")
	ttl := fs.Duration("heartbeat-ttl", server.DefaultHeartbeatTTL, "a service without a heartbeat for this long is marked unhealthy")
	janitor := fs.Duration("janitor-interval", server.DefaultJanitorInterval, "how often silent services are looked for")
	histAge := fs.Duration("history-max-age", server.DefaultHistoryMaxAge, "heartbeat history kept per service, by age")
	histN := fs.Int("history-max-samples", server.DefaultHistoryMaxSamples, "heartbeat history kept per service, by count")
	maxServices := fs.Int("max-services", server.DefaultMaxServices, "registered services at most; new ids beyond it are refused (ResourceExhausted)")
	cert := fs.String("tls-cert", "", "server certificate `file` (TLS)")
	key := fs.String("tls-key", "", "server key `file` (TLS)")
	ca := fs.String("tls-ca-cert", "", "CA `file` of client certificates (mutual TLS)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this host:port (off when empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return a.usageErr(fs, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return a.usageErr(fs, "--log-level %q: want debug, info, warn or error", *logLevel)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(a.Stderr, &slog.HandlerOptions{Level: level})
	default:
		return a.usageErr(fs, "--log-format %q: want text or json", *logFormat)
	}
	if *port < 0 || *port > 65535 {
		return a.usageErr(fs, "--port %d: want 0-65535", *port)
	}
	if *ttl <= 0 || *janitor <= 0 || *histAge <= 0 || *histN <= 0 || *maxServices <= 0 {
		return a.usageErr(fs, "--heartbeat-ttl, --janitor-interval, --history-max-age, --history-max-samples and --max-services must be positive")
	}
	log := slog.New(handler)
	cfg := ServerConfig{
		HeartbeatTTL: *ttl, JanitorInterval: *janitor, HistoryMaxAge: *histAge, HistoryMaxSamples: *histN,
		MaxServices: *maxServices, TLSCert: *cert, TLSKey: *key, TLSCA: *ca, MetricsAddr: *metricsAddr, Now: a.Now, Logger: log,
	}
	if !*noPersist {
		cfg.DBPath = *dbPath
	}
	addr := net.JoinHostPort(*address, strconv.Itoa(*port))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("cannot listen", "address", addr, "err", err)
		return exitFail
	}
	log.Info("starting control plane", "address", lis.Addr().String(), "persistence", cfg.DBPath != "",
		"db_path", cfg.DBPath, "heartbeat_ttl", *ttl, "janitor_interval", *janitor)
	if err := ServeControlPlane(ctx, lis, cfg); err != nil {
		log.Error("control plane stopped", "err", err)
		return exitFail
	}
	log.Info("control plane stopped")
	return exitOK
}
