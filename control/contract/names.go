package contract

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Registration metadata: keys cdpd sets on every pipeline it registers, read back by the CLI.
const (
	// MetaServiceType marks what kind of service registered; flowctl.v1 has no component
	// type for a pipeline, so cdpd's pipelines carry ServiceTypePipeline here.
	MetaServiceType = "service_type"
	MetaConfigFile  = "config_file" // the pipeline's YAML file
	MetaNetwork     = "network"     // the network its source reads (loader.Pipeline.Network)
	MetaVersion     = "version"     // cdpd's version
	MetaHost        = "host"        // the machine's host name
	MetaInstance    = "instance"    // the daemon's name in the fleet: --instance, else its host name
	MetaShard       = "shard"       // the daemon's shard index (--shard-index), "0" unsharded
	MetaShardCount  = "shard_count" // the fleet's shard count (--shard-count), "1" unsharded

	// MetaRegisteredBy is set by the control plane on every registration (a client's value
	// is replaced): who registered, as the server saw the call, "tls:<certificate subject>" or
	// "peer:<address>". `flowctl status <id> --verbose` shows it as the owner.
	MetaRegisteredBy = "registered_by"

	// ServiceTypePipeline is the service type of cdpd pipelines.
	ServiceTypePipeline = "cdp-pipeline"
)

// ServiceType is what kind of service a registration is, as the CLI's TYPE column and the
// control plane's service_type label show it: the service_type metadata (cdp-pipeline for
// cdpd's pipelines and upstream CDP processes), else the component type in lower case (source,
// processor, consumer, unspecified).
func ServiceType(info *flowctlv1.ComponentInfo) string {
	if t := info.GetMetadata()[MetaServiceType]; t != "" {
		return t
	}
	name, ok := flowctlv1.ComponentType_name[int32(info.GetType())]
	if !ok {
		return fmt.Sprintf("type(%d)", int32(info.GetType()))
	}
	return strings.ToLower(strings.TrimPrefix(name, "COMPONENT_TYPE_"))
}

// Heartbeat metrics: a pipeline's health details travel in the heartbeat's metrics map under
// HealthPrefix ("health.last_error"); everything else is a numeric metric.
const (
	HealthPrefix = "health."

	// DetailControlError is the detail the client reports when a pipeline's health or metrics
	// methods panicked.
	DetailControlError = "control_error"

	// MetricUptimeSeconds is a pipeline's own uptime as of its last heartbeat; the CLI shows it
	// as UPTIME.
	MetricUptimeSeconds = "pipeline.uptime_seconds"

	// A bounded pipeline's progress through its range (host/eta.go): ledgers done of the
	// total, the recent rate in ledgers per second and the seconds left at that rate (-1:
	// unknown yet). The CLI shows them as PROGRESS and as a bar.
	MetricProgressDone  = "pipeline.progress_done_ledgers"
	MetricProgressTotal = "pipeline.progress_total_ledgers"
	MetricProgressRate  = "pipeline.progress_rate_ledgers_per_second"
	MetricProgressETA   = "pipeline.progress_eta_seconds"

	// DetailStatus is the health detail with the pipeline's own status (running, completed,
	// restarting, ...): the CLI shows a completed pipeline as completed, not healthy.
	DetailStatus = "status"
)

// MetricText is a numeric metric as a heartbeat's string map carries it: the shortest decimal
// that reads back as v, without exponent. ok is false for NaN and ±Inf, which are not decimals
// and are left out. cdpd's client and the control plane's legacy API both write metrics so.
func MetricText(v float64) (text string, ok bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "", false
	}
	return strconv.FormatFloat(v, 'f', -1, 64), true
}

// ErrorDetails are the health detail keys that carry a pipeline's error, the most telling
// first; the CLI and the alert payloads show the first one set.
var ErrorDetails = [...]string{"last_error", "error", "message"}

// HealthKey is the heartbeat metric key of health detail name ("health." + name).
func HealthKey(name string) string { return HealthPrefix + name }

// CutHealth returns the detail name of a heartbeat metric key and whether it is a health
// detail at all.
func CutHealth(key string) (name string, ok bool) { return strings.CutPrefix(key, HealthPrefix) }

// Health-state names: a pipeline's state as its StatusProvider reports it, and the lower-case
// names of the wire statuses as the CLI, the alert conditions and the server's metrics show
// them (StatusName).
const (
	StateUnknown   = "unknown"
	StateStarting  = "starting"
	StateHealthy   = "healthy"
	StateDegraded  = "degraded"
	StateUnhealthy = "unhealthy"
	StateStopping  = "stopping"
	// StateCompleted is a bounded pipeline that reached its end ledger. flowctl.v1 has no such
	// status; it is reported as HEALTHY (it did what it was asked).
	StateCompleted = "completed"
)

// ParseState maps a state name (case-insensitive, spaces trimmed) to the wire status; ok is
// false for names it does not know (StateUnknown included).
func ParseState(s string) (st flowctlv1.HealthStatus, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case StateStarting:
		return flowctlv1.HealthStatus_HEALTH_STATUS_STARTING, true
	case StateHealthy, StateCompleted:
		return flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY, true
	case StateDegraded:
		return flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED, true
	case StateUnhealthy:
		return flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY, true
	case StateStopping:
		return flowctlv1.HealthStatus_HEALTH_STATUS_STOPPING, true
	}
	return flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN, false
}

// StatusName is the lower-case name of a wire status ("healthy", "unhealthy", ...; one of the
// State* names), or "unknown(N)" for a value flowctl.v1 does not define.
func StatusName(st flowctlv1.HealthStatus) string {
	if name, ok := flowctlv1.HealthStatus_name[int32(st)]; ok {
		return strings.ToLower(strings.TrimPrefix(name, "HEALTH_STATUS_"))
	}
	return fmt.Sprintf("unknown(%d)", int32(st))
}

// Service ownership (control/server's package doc has the rules): a client proves that it owns
// the services it registered by carrying an owner token on every call, in the gRPC metadata
// entry OwnerTokenHeader. The control plane returns the token in force in the registration's
// RegisterResponse.connection_info under ConnOwnerToken (the client's own token when it sent
// one, else one the server issued). Clients without tokens (upstream flowctl's) are identified
// by their mTLS certificate or their peer address instead.
const (
	OwnerTokenHeader = "x-flowctl-owner"
	ConnOwnerToken   = "owner_token"
	// MaxOwnerTokenLen bounds a token; longer ones are refused as invalid.
	MaxOwnerTokenLen = 256
)
