package consumer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// MetricsNamespace prefixes every consumer's own metrics (cdp_pipeline_consumer_*).
const MetricsNamespace = "cdp_pipeline_consumer"

// Metrics are the counters every consumer of the domain packages (host/consumer/kv, stream,
// ...) reports in its pipeline's registry, labelled component="<its component name>" (unique
// in a pipeline, so two consumers of one pipeline share the series names).
type Metrics struct {
	Records prometheus.Counter // records written (published, stored, delivered)
	Bytes   prometheus.Counter // payload bytes written
	Ledgers prometheus.Counter // ledgers whose records are all written
	Errors  prometheus.Counter // failed write attempts
	Retries prometheus.Counter // attempts retried after a failure
	Dropped prometheus.Counter // records given up on by design (at-most-once consumers)
}

// NewMetrics registers the cdp_pipeline_consumer_* counters of component name in reg (the
// pipeline incarnation's registry, Env.Metrics; nil registers nothing).
func NewMetrics(reg *prometheus.Registry, name string) *Metrics {
	f := Factory(reg, name)
	// Each name is written out: the deploy drift tests read metric names from the source.
	return &Metrics{
		Records: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "records_written_total",
			Help: "Records a consumer wrote (stored, published or delivered)."}),
		Bytes: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "bytes_written_total",
			Help: "Payload bytes a consumer wrote."}),
		Ledgers: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "ledgers_written_total",
			Help: "Ledgers whose records a consumer wrote in full."}),
		Errors: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "write_errors_total",
			Help: "Failed write attempts of a consumer."}),
		Retries: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "retries_total",
			Help: "Write attempts a consumer retried after a failure."}),
		Dropped: f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: "records_dropped_total",
			Help: "Records a consumer gave up on by design (at-most-once delivery)."}),
	}
}

// Factory is promauto.With(reg) for the metrics of component name: every metric it makes
// carries the label component="<name>". Consumer-specific metrics (a stream's subscribers)
// use it with Namespace: MetricsNamespace.
func Factory(reg *prometheus.Registry, name string) promauto.Factory {
	if reg == nil {
		return promauto.With(nil)
	}
	return promauto.With(prometheus.WrapRegistererWith(prometheus.Labels{"component": name}, reg))
}
