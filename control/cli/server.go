package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/bytesize"
)

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
	ttl := fs.Duration("heartbeat-ttl", server.DefaultHeartbeatTTL, fmt.Sprintf("a service without a heartbeat for this long is marked unhealthy; rule: max(%s, %d × the clients' heartbeat interval), as cdpd's embedded control plane derives it (the default suits cdpd's default 10s interval)", server.DefaultHeartbeatTTL, server.HeartbeatTTLFactor))
	janitor := fs.Duration("janitor-interval", server.DefaultJanitorInterval, "how often silent services are looked for")
	histAge := fs.Duration("history-max-age", server.DefaultHistoryMaxAge, "heartbeat history kept per service, by age")
	histN := fs.Int("history-max-samples", server.DefaultHistoryMaxSamples, "heartbeat history kept per service, by count")
	histBytes, histTotal := bytesize.Size(server.DefaultHistoryMaxBytes), bytesize.Size(server.DefaultHistoryTotalBytes)
	fs.Var(&histBytes, "history-max-bytes", "heartbeat history kept per service, by size (oldest samples dropped first)")
	fs.Var(&histTotal, "history-total-bytes", "heartbeat history kept in all, by size: bounds the history file (DB path with -history.db) and memory; the histories themselves are kept under half of it")
	maxServices := fs.Int("max-services", server.DefaultMaxServices, "registered services at most; new ids beyond it are refused (ResourceExhausted)")
	perClient := fs.Int("max-services-per-client", server.DefaultMaxServicesPerClient, "registered services at most per client identity (mTLS certificate, else peer address); beyond it new ids of that client are refused (ResourceExhausted)")
	expiry := fs.Duration("service-expiry", server.DefaultServiceExpiry, "a service silent for this long is removed with its history (longer than --heartbeat-ttl)")
	cert := fs.String("tls-cert", "", "server certificate `file` (TLS)")
	key := fs.String("tls-key", "", "server key `file` (TLS)")
	ca := fs.String("tls-ca-cert", "", "CA `file` of client certificates (mutual TLS)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this host:port (off when empty)")
	perService := fs.Int("metrics-per-service", server.DefaultReexportMetrics, "heartbeat metrics of each service re-exported on /metrics as cdp_* gauges, with flowctl_service_up and the heartbeat age (0: none); series at most --max-services × (this + 2)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, code, ok := a.parse(fs, args)
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
	if *perService < 0 {
		return a.usageErr(fs, "--metrics-per-service %d: want 0 (none) or more", *perService)
	}
	if *ttl <= 0 || *janitor <= 0 || *histAge <= 0 || *histN <= 0 || *maxServices <= 0 || *perClient <= 0 {
		return a.usageErr(fs, "--heartbeat-ttl, --janitor-interval, --history-max-age, --history-max-samples, --max-services and --max-services-per-client must be positive")
	}
	if histBytes < server.MinHistoryBytes || histTotal < histBytes {
		return a.usageErr(fs, "--history-max-bytes must be at least %s and at most --history-total-bytes", bytesize.Size(server.MinHistoryBytes))
	}
	if *expiry <= *ttl {
		return a.usageErr(fs, "--service-expiry %s must be longer than --heartbeat-ttl %s", *expiry, *ttl)
	}
	log := slog.New(handler)
	cfg := plane.Config{
		HeartbeatTTL: *ttl, JanitorInterval: *janitor, HistoryMaxAge: *histAge, HistoryMaxSamples: *histN,
		HistoryMaxBytes: int64(histBytes), HistoryTotalBytes: int64(histTotal),
		MaxServices: *maxServices, MaxServicesPerClient: *perClient, ServiceExpiry: *expiry, ReexportMetrics: *perService,
		TLSCert: *cert, TLSKey: *key, TLSCA: *ca, Now: a.Now, Logger: log,
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
	cfg.Listener = lis
	if *metricsAddr != "" {
		if cfg.MetricsListener, err = net.Listen("tcp", *metricsAddr); err != nil {
			_ = lis.Close()
			log.Error("cannot listen for /metrics", "address", *metricsAddr, "err", err)
			return exitFail
		}
	}
	if err := plane.Run(ctx, cfg); err != nil {
		log.Error("control plane stopped", "err", err)
		return exitFail
	}
	log.Info("control plane stopped")
	return exitOK
}
