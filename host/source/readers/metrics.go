package readers

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/ledger"
)

// The registry's metrics: one series per live reader (a stopped reader leaves none), the
// budget's, and the process-wide ledger buffer pool's (host/ledger: one pool per process, as one
// registry per daemon).
var (
	descSubscribers = prometheus.NewDesc("cdpd_reader_subscribers",
		"Pipelines a shared reader hands its ledgers to.", []string{"reader", "datastore"}, nil)
	descCatchingUp = prometheus.NewDesc("cdpd_reader_catching_up",
		"1 while another reader of the same datastore is ahead of this one (it merges when it reaches it).", []string{"reader", "datastore"}, nil)
	descNext = prometheus.NewDesc("cdpd_reader_next_ledger",
		"The next ledger a shared reader hands out.", []string{"reader", "datastore"}, nil)
	descLedgers = prometheus.NewDesc("cdpd_reader_ledgers_read_total",
		"Ledgers a shared reader read (each decompressed and copied once, whatever its subscribers).", []string{"reader", "datastore"}, nil)
	descObjects = prometheus.NewDesc("cdpd_reader_objects_read_total",
		"Datastore objects a shared reader read (downloaded and decompressed once).", []string{"reader", "datastore"}, nil)
	descBytes = prometheus.NewDesc("cdpd_reader_bytes_read_total",
		"LedgerCloseMeta bytes (decompressed) a shared reader read.", []string{"reader", "datastore"}, nil)
	descPerformed = prometheus.NewDesc("cdpd_reader_decodes_performed_total",
		"Full decodes of a shared reader's ledgers (at most one per ledger, whatever the number of pipelines).", []string{"reader", "datastore"}, nil)
	descShared = prometheus.NewDesc("cdpd_reader_decodes_shared_total",
		"Times a pipeline used a decode of a shared reader's ledger that another pipeline performed.", []string{"reader", "datastore"}, nil)
	descCuts = prometheus.NewDesc("cdpd_reader_cuts_total",
		"Pipelines cut off a shared reader for holding the stream (no ledger taken within the leave timeout).", []string{"reader", "datastore"}, nil)

	descMemUsed = prometheus.NewDesc("cdpd_ledger_memory_bytes",
		"Bytes of ledgers in flight (raw, and the estimate of decoded values) charged to the --ledger-memory budget.", nil, nil)
	descMemLimit = prometheus.NewDesc("cdpd_ledger_memory_limit_bytes",
		"The --ledger-memory budget (0: unlimited).", nil, nil)
	descMemPeak = prometheus.NewDesc("cdpd_ledger_memory_peak_bytes",
		"The most bytes of ledgers in flight at once since the start.", nil, nil)
	descMemWaits = prometheus.NewDesc("cdpd_ledger_memory_waits_total",
		"Times a reader waited for the budget before reading a ledger (back pressure).", nil, nil)
	descBuffers = prometheus.NewDesc("cdpd_ledger_buffers_total",
		"Ledgers copied into the process's pool of ledger buffers.", nil, nil)
	descBuffersReused = prometheus.NewDesc("cdpd_ledger_buffers_reused_total",
		"Of cdpd_ledger_buffers_total, copies into a buffer the pool gave back (the rest were allocated).", nil, nil)
)

// Describe implements prometheus.Collector.
func (reg *Registry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscribers, descCatchingUp, descNext, descLedgers, descObjects,
		descBytes, descPerformed, descShared, descCuts, descMemUsed, descMemLimit, descMemPeak, descMemWaits, descBuffers, descBuffersReused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (reg *Registry) Collect(ch chan<- prometheus.Metric) {
	for _, r := range reg.Readers() {
		l := []string{r.ID, r.Datastore}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
		}
		gauge(descSubscribers, float64(r.Subscribers))
		catching := 0.0
		if r.CatchingUp {
			catching = 1
		}
		gauge(descCatchingUp, catching)
		gauge(descNext, float64(r.Next))
		counter(descLedgers, r.Ledgers)
		counter(descObjects, r.Objects)
		counter(descBytes, r.Bytes)
		counter(descPerformed, r.Performed)
		counter(descShared, r.Shared)
		counter(descCuts, r.Cuts)
	}
	b := reg.Budget().Stats()
	ch <- prometheus.MustNewConstMetric(descMemUsed, prometheus.GaugeValue, float64(b.Used))
	ch <- prometheus.MustNewConstMetric(descMemLimit, prometheus.GaugeValue, float64(max(b.Limit, 0)))
	ch <- prometheus.MustNewConstMetric(descMemPeak, prometheus.GaugeValue, float64(b.Peak))
	ch <- prometheus.MustNewConstMetric(descMemWaits, prometheus.CounterValue, float64(b.Waits))
	ps := ledger.ReadPoolStats()
	ch <- prometheus.MustNewConstMetric(descBuffers, prometheus.CounterValue, float64(ps.Copies))
	ch <- prometheus.MustNewConstMetric(descBuffersReused, prometheus.CounterValue, float64(ps.Reused))
}
