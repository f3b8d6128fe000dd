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
func NewMetrics(reg prometheus.Registerer, name string) *Metrics {
	f := Factory(reg, name)
	c := func(n, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Name: n, Help: help})
	}
	return &Metrics{
		Records: c("records_written_total", "Records a consumer wrote (stored, published or delivered)."),
		Bytes:   c("bytes_written_total", "Payload bytes a consumer wrote."),
		Ledgers: c("ledgers_written_total", "Ledgers whose records a consumer wrote in full."),
		Errors:  c("write_errors_total", "Failed write attempts of a consumer."),
		Retries: c("retries_total", "Write attempts a consumer retried after a failure."),
		Dropped: c("records_dropped_total", "Records a consumer gave up on by design (at-most-once delivery)."),
	}
}

// Factory is promauto.With(reg) for the metrics of component name: every metric it makes
// carries the label component="<name>". Consumer-specific metrics (a stream's subscribers)
// use it with Namespace: MetricsNamespace.
func Factory(reg prometheus.Registerer, name string) promauto.Factory {
	if reg == nil {
		return promauto.With(nil)
	}
	return promauto.With(prometheus.WrapRegistererWith(prometheus.Labels{"component": name}, reg))
}
