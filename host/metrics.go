package host

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

type dtoMetricFamily = dto.MetricFamily

// The host's cdp_pipeline_* metrics are read from each live pipeline's current incarnation when
// /metrics is scraped (pipelineCollector): one set of descriptions for all pipelines, and per
// component only the atomic counters the host keeps anyway (comp.in, out, errs, lat). A registry
// with its own vecs, children and func metrics per incarnation was most of an idle pipeline's
// heap, and so of what every garbage collection marks next to the busy pipelines (BENCHMARKS.md,
// "scale_busy_throughput").
var (
	compLabels = []string{"component", "kind", "pipeline"}
	pipeLabels = []string{"pipeline"}

	descIn = prometheus.NewDesc("cdp_pipeline_component_events_in_total",
		"Ledgers handed to a processor or consumer.", compLabels, nil)
	descOut = prometheus.NewDesc("cdp_pipeline_component_events_out_total",
		"Items a component produced: ledgers emitted by a source, records by a processor, ledgers accepted by a consumer.", compLabels, nil)
	descErrs = prometheus.NewDesc("cdp_pipeline_component_errors_total",
		"Errors (and recovered panics) of a component.", compLabels, nil)
	descLatency = prometheus.NewDesc("cdp_pipeline_component_latency_seconds",
		"Time a component spent per ledger (Process, Consume; for a source the time to produce the next ledger).", compLabels, nil)

	descProcessed = prometheus.NewDesc("cdp_pipeline_ledgers_processed_total",
		"Ledgers accepted by every consumer of the pipeline (this incarnation).", pipeLabels, nil)
	descCurrent = prometheus.NewDesc("cdp_pipeline_current_ledger",
		"Last ledger every consumer of the pipeline accepted.", pipeLabels, nil)
	descCheckpoint = prometheus.NewDesc("cdp_pipeline_checkpoint_ledger",
		"Last ledger checkpointed (every consumer durably accepted it).", pipeLabels, nil)
	descDecodes = prometheus.NewDesc("cdp_pipeline_full_decodes_total",
		"Full LedgerCloseMeta decodes the pipeline performed (at most one per ledger; view-only pipelines do none).", pipeLabels, nil)
	descShared = prometheus.NewDesc("cdp_pipeline_decodes_shared_total",
		"Ledgers whose full decode the pipeline used from another pipeline reading the same shared reader.", pipeLabels, nil)
	descRestarts = prometheus.NewDesc("cdp_pipeline_restarts_total",
		"Restarts of the pipeline after a failure (kept across restarts).", pipeLabels, nil)
	descCheckpointErrs = prometheus.NewDesc("cdp_pipeline_checkpoint_errors_total",
		"Failed writes of the pipeline's checkpoint (read-only or full state directory; kept across restarts).", pipeLabels, nil)
	descCheckpointAge = prometheus.NewDesc("cdp_pipeline_checkpoint_age_seconds",
		"How long the checkpoint has lagged behind the ledgers every consumer durably accepted (0 when it is up to date): what a crash now would replay.", pipeLabels, nil)
	descHealthy = prometheus.NewDesc("cdp_pipeline_healthy",
		"1 when the pipeline is healthy (running or completed), else 0.", pipeLabels, nil)
	descGeneration = prometheus.NewDesc("cdp_pipeline_generation",
		"Version of the pipeline's definition (1 when added, +1 per applied update).", pipeLabels, nil)
	descLedgerAge = prometheus.NewDesc("cdp_pipeline_current_ledger_age_seconds",
		"Age of the current ledger (now - its close time): the lag behind the network when following the tip.", pipeLabels, nil)

	pipelineDescs = []*prometheus.Desc{descIn, descOut, descErrs, descLatency, descProcessed, descCurrent,
		descCheckpoint, descDecodes, descShared, descRestarts, descCheckpointErrs, descCheckpointAge, descHealthy,
		descGeneration, descLedgerAge}
)

// numLatencyBuckets is the number of bounds of cdp_pipeline_component_latency_seconds.
const numLatencyBuckets = 16

// latencyBuckets are the upper bounds of cdp_pipeline_component_latency_seconds: 0.5 ms
// doubling to ~16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, numLatencyBuckets)

// latency is one component's cdp_pipeline_component_latency_seconds: a count per bucket (the
// last one above every bound) and the sum, observed per ledger and exposed as a constant
// histogram when scraped.
type latency struct {
	counts [numLatencyBuckets + 1]atomic.Uint64
	sumNS  atomic.Int64
}

func (l *latency) observe(d time.Duration) {
	l.counts[sort.SearchFloat64s(latencyBuckets, d.Seconds())].Add(1)
	l.sumNS.Add(int64(d))
}

func (l *latency) metric(labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var n uint64
	for i, le := range latencyBuckets {
		n += l.counts[i].Load()
		buckets[le] = n
	}
	n += l.counts[len(latencyBuckets)].Load()
	return prometheus.MustNewConstHistogram(descLatency, n, float64(l.sumNS.Load())/1e9, buckets, labels...)
}

// pipelineCollector collects the cdp_pipeline_* metrics of every live pipeline's current
// incarnation. A removed pipeline leaves no series.
type pipelineCollector struct{ h *Host }

func (c pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range pipelineDescs {
		ch <- d
	}
}

func (c pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.h.Pipelines() {
		if r := p.liveRun(); r != nil {
			r.collect(ch)
		}
	}
}

func (r *run) collect(ch chan<- prometheus.Metric) {
	name := r.def.Name
	for _, c := range r.comps {
		k := string(c.kind)
		ch <- prometheus.MustNewConstMetric(descIn, prometheus.CounterValue, float64(c.in.Load()), c.name, k, name)
		ch <- prometheus.MustNewConstMetric(descOut, prometheus.CounterValue, float64(c.out.Load()), c.name, k, name)
		ch <- prometheus.MustNewConstMetric(descErrs, prometheus.CounterValue, float64(c.errs.Load()), c.name, k, name)
		ch <- c.lat.metric(c.name, k, name)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
	}
	counter(descProcessed, float64(r.prog.processed.Load()))
	gauge(descCurrent, float64(r.prog.current.Load()))
	gauge(descCheckpoint, float64(r.prog.checkpointed.Load()))
	counter(descDecodes, float64(r.decodes.Performed.Load()))
	counter(descShared, float64(r.decodes.Shared.Load()))
	gauge(descCheckpointAge, r.prog.age().Seconds())
	ledgerAge := 0.0
	if ct := r.prog.currentCloseTime.Load(); ct != 0 {
		ledgerAge = float64(r.h.opts.Now().Unix() - ct)
	}
	gauge(descLedgerAge, ledgerAge)
	var restarts, ckErrs, healthy, gen float64
	if p := r.p; p != nil {
		restarts, ckErrs = float64(p.restartsTotal.Load()), float64(p.checkpointErrs.Load())
		rd := p.read() // one read of the pipeline's state for both
		if p.healthState(rd) == HealthHealthy {
			healthy = 1
		}
		gen = float64(rd.in.Generation)
	}
	counter(descRestarts, restarts)
	counter(descCheckpointErrs, ckErrs)
	gauge(descHealthy, healthy)
	gauge(descGeneration, gen)
}

type gathererFunc func() ([]*dto.MetricFamily, error)

func (f gathererFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

// labelled adds pipeline="<name>" to every series a registry gathers (the metrics the
// components of one incarnation registered in its Env.Metrics).
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
