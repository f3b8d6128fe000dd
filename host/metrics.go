package host

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

type dtoMetricFamily = dto.MetricFamily

// runMetrics are the host's cdp_pipeline_* metrics of one incarnation, registered in the
// incarnation's own registry (labelled pipeline="<name>" at gather time).
type runMetrics struct {
	f       promauto.Factory
	reg     *prometheus.Registry
	in      *prometheus.CounterVec
	out     *prometheus.CounterVec
	errs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newRunMetrics(reg *prometheus.Registry) *runMetrics {
	f := promauto.With(reg)
	labels := []string{"component", "kind"}
	return &runMetrics{
		f:   f,
		reg: reg,
		in: f.NewCounterVec(prometheus.CounterOpts{
			Name: "cdp_pipeline_component_events_in_total",
			Help: "Ledgers handed to a processor or consumer.",
		}, labels),
		out: f.NewCounterVec(prometheus.CounterOpts{
			Name: "cdp_pipeline_component_events_out_total",
			Help: "Items a component produced: ledgers emitted by a source, records by a processor, ledgers accepted by a consumer.",
		}, labels),
		errs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "cdp_pipeline_component_errors_total",
			Help: "Errors (and recovered panics) of a component.",
		}, labels),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cdp_pipeline_component_latency_seconds",
			Help:    "Time a component spent per ledger (Process, Consume; for a source the time to produce the next ledger).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, labels),
	}
}

func (m *runMetrics) attach(c *comp) {
	k := string(c.kind)
	c.inC = m.in.WithLabelValues(c.name, k)
	c.outC = m.out.WithLabelValues(c.name, k)
	c.errC = m.errs.WithLabelValues(c.name, k)
	c.lat = m.latency.WithLabelValues(c.name, k)
}

// pipeline registers the pipeline-level metrics that read the incarnation and its handle.
func (m *runMetrics) pipeline(r *run) {
	m.f.NewCounterFunc(prometheus.CounterOpts{
		Name: "cdp_pipeline_ledgers_processed_total",
		Help: "Ledgers accepted by every consumer of the pipeline (this incarnation).",
	}, func() float64 { return float64(r.prog.processed.Load()) })
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_current_ledger",
		Help: "Last ledger every consumer of the pipeline accepted.",
	}, func() float64 { return float64(r.prog.current.Load()) })
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_checkpoint_ledger",
		Help: "Last ledger checkpointed (every consumer durably accepted it).",
	}, func() float64 { return float64(r.prog.checkpointed.Load()) })
	m.f.NewCounterFunc(prometheus.CounterOpts{
		Name: "cdp_pipeline_full_decodes_total",
		Help: "Full LedgerCloseMeta decodes the pipeline performed (at most one per ledger; view-only pipelines do none).",
	}, func() float64 { return float64(r.decodes.Performed.Load()) })
	m.f.NewCounterFunc(prometheus.CounterOpts{
		Name: "cdp_pipeline_decodes_shared_total",
		Help: "Ledgers whose full decode the pipeline used from another pipeline reading the same shared reader.",
	}, func() float64 { return float64(r.decodes.Shared.Load()) })
	m.f.NewCounterFunc(prometheus.CounterOpts{
		Name: "cdp_pipeline_restarts_total",
		Help: "Restarts of the pipeline after a failure (kept across restarts).",
	}, func() float64 {
		if r.p == nil {
			return 0
		}
		return float64(r.p.restartsTotal.Load())
	})
	m.f.NewCounterFunc(prometheus.CounterOpts{
		Name: "cdp_pipeline_checkpoint_errors_total",
		Help: "Failed writes of the pipeline's checkpoint (read-only or full state directory; kept across restarts).",
	}, func() float64 {
		if r.p == nil {
			return 0
		}
		return float64(r.p.checkpointErrs.Load())
	})
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_checkpoint_age_seconds",
		Help: "How long the checkpoint has lagged behind the ledgers every consumer durably accepted (0 when it is up to date): what a crash now would replay.",
	}, func() float64 { return r.prog.age().Seconds() })
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_healthy",
		Help: "1 when the pipeline is healthy (running or completed), else 0.",
	}, func() float64 {
		if r.p != nil && r.p.IsHealthy() {
			return 1
		}
		return 0
	})
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_generation",
		Help: "Version of the pipeline's definition (1 when added, +1 per applied update).",
	}, func() float64 {
		if r.p == nil {
			return 0
		}
		return float64(r.p.Info().Generation)
	})
	m.f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cdp_pipeline_current_ledger_age_seconds",
		Help: "Age of the current ledger (now - its close time): the lag behind the network when following the tip.",
	}, func() float64 {
		ct := r.prog.currentCloseTime.Load()
		if ct == 0 {
			return 0
		}
		return float64(r.h.opts.Now().Unix() - ct)
	})
}

type gathererFunc func() ([]*dto.MetricFamily, error)

func (f gathererFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

// labelled adds pipeline="<name>" to every series a registry gathers.
type labelled struct {
	name string
	g    prometheus.Gatherer
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("pipeline"), Value: proto.String(l.name)})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
	}
	return mfs, err
}
