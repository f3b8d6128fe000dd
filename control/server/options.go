package server

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	// DefaultHeartbeatTTL is HeartbeatTTLFor(10 s), cdpd's default heartbeat interval.
	DefaultHeartbeatTTL      = 30 * time.Second
	DefaultJanitorInterval   = 10 * time.Second
	DefaultHistoryMaxAge     = 24 * time.Hour
	DefaultHistoryMaxSamples = 8640 // 24 h of heartbeats every 10 s
	// DefaultHistoryMaxBytes is the history budget of one service: a day of a cdpd pipeline's
	// heartbeats (about 250 accounted bytes each) fits twice.
	DefaultHistoryMaxBytes = 4 << 20
	// DefaultHistoryTotalBytes is the history budget of the whole server, in memory and in
	// its history file.
	DefaultHistoryTotalBytes = 256 << 20
	// MinHistoryBytes is the smallest history budget accepted: a few samples of the largest
	// heartbeat (MaxMetricBytes of changing metrics).
	MinHistoryBytes      = 256 << 10
	DefaultFlushInterval = time.Second
	DefaultMaxServices   = 10000
	// DefaultMaxServicesPerClient caps the services one client identity (an mTLS identity, else
	// a peer address) may have registered at once.
	DefaultMaxServicesPerClient = 2000
	// DefaultServiceExpiry: a service silent for this long is removed, with its history.
	DefaultServiceExpiry = 24 * time.Hour
)

// Options configure a Server. The zero value is a working in-memory server.
type Options struct {
	DBPath            string        // bbolt file; "" = no persistence
	HeartbeatTTL      time.Duration // default 30s; HeartbeatTTLFor gives it for a heartbeat interval
	JanitorInterval   time.Duration // default 10s
	HistoryMaxAge     time.Duration // default 24h
	HistoryMaxSamples int           // default 8640
	// HistoryMaxBytes is one service's history budget (default 4 MiB) and HistoryTotalBytes
	// the whole server's (default 256 MiB), in accounted bytes (see the package doc): beyond
	// them the oldest samples go first (of the service; of all services for the total).
	HistoryMaxBytes   int64
	HistoryTotalBytes int64
	FlushInterval     time.Duration // heartbeat batch persistence period, default 1s
	Now               func() time.Time
	Logger            *slog.Logger
	Registerer        prometheus.Registerer // may be nil
	// MaxServices caps the registry (default 10,000): registering a new id beyond it, or while
	// 2 × MaxServices histories are kept, is refused with codes.ResourceExhausted, so that a
	// flood of registrations cannot grow the server's memory without bound.
	MaxServices int
	// MaxServicesPerClient caps the services registered by one client identity (the principal
	// of the package doc: an mTLS identity, else the peer's IP address; default 2,000), so that
	// one client cannot fill the registry for everyone.
	MaxServicesPerClient int
	// ServiceExpiry removes a service (and its history) that has been silent for this long
	// (default 24 h, or twice HeartbeatTTL if that is longer); it must be longer than
	// HeartbeatTTL.
	ServiceExpiry time.Duration

	// noSync skips fsync (tests that write a lot and never crash the machine).
	noSync bool
	// ReexportMetrics, when above 0 (and Registerer is set), re-exports every service's latest
	// heartbeat metrics on Registerer, at most this many per service, with flowctl_service_up
	// and the heartbeat age (fleet.go). 0: off (cdpd's embedded plane: its pipelines' metrics
	// are on cdpd's own /metrics already).
	ReexportMetrics int
}
