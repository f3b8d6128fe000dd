package daemon

import (
	"context"
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/withobsrvr/cdpd/loader"
)

// reloadMetrics are the metrics of configuration reloads. Batches finish out of order (a slow
// drain in one, a quick change in the next: the host runs each pipeline's changes on their
// own), so each finished batch carries the sequence number it was given when it arrived, and
// the gauges take a batch only if it is newer than the one they show: they never go back to
// an older configuration.
type reloadMetrics struct {
	ok       prometheus.Gauge
	okTime   prometheus.Gauge
	hash     prometheus.Gauge
	failures *prometheus.CounterVec

	mu    sync.Mutex
	shown uint64 // sequence of the batch the gauges show (0: none yet)
}

func newReloadMetrics(f promauto.Factory) *reloadMetrics {
	return &reloadMetrics{
		ok: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_last_reload_successful",
			Help: "Whether the last configuration reload (every file parsed and every change applied) succeeded."}),
		okTime: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload."}),
		hash: f.NewGauge(prometheus.GaugeOpts{Name: "cdpd_config_hash",
			Help: "Hash of the applied configuration (first 48 bits of its SHA-256)."}),
		failures: f.NewCounterVec(prometheus.CounterOpts{Name: "cdpd_pipeline_apply_failures_total",
			Help: "Pipeline changes (add, update, remove) that failed to apply."}, []string{"kind"}),
	}
}

// finished shows batch seq's outcome unless a newer batch is shown already.
func (m *reloadMetrics) finished(seq uint64, hash string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.shown {
		return
	}
	m.shown = seq
	if ok {
		m.ok.Set(1)
		m.okTime.SetToCurrentTime()
	} else {
		m.ok.Set(0)
	}
	m.hash.Set(hashGauge(hash))
}

// hashGauge turns a hex hash into a number a gauge holds exactly (its first 48 bits).
func hashGauge(h string) float64 {
	if len(h) < 12 {
		return 0
	}
	v, _ := strconv.ParseUint(h[:12], 16, 64)
	return float64(v)
}

// onBatch hands one batch of configuration changes to the host, which applies each
// pipeline's changes in order and different pipelines' concurrently, and records the outcome
// when all are applied. The watcher calls it from its one goroutine, so batches are numbered
// in the order they arrive. The first (initial) batch is waited for: the daemon is ready after
// it. The others finish in a goroutine that d.batches owns (ctx bounds their drains).
func (d *daemon) onBatch(ctx context.Context, b loader.Batch) {
	for _, e := range b.Errors {
		d.log.Error("config error", "pipeline", e.Pipeline, "file", e.File, "line", e.Line, "err", e.Error())
	}
	d.batchSeq++
	seq := d.batchSeq
	events := d.gate(ctx, d.split(b.Events)) // only this shard's pipelines, once no other instance runs them
	applied := d.host.Submit(ctx, events...)
	finish := func() {
		ok := len(b.Errors) == 0
		for i, err := range applied.Wait() {
			ok = ok && err == nil
			d.logChange(events[i], err)
		}
		d.reload.finished(seq, b.Hash, ok)
	}
	if !b.Initial {
		d.batches.Go(finish)
		return
	}
	finish()
	names := make([]string, 0, len(events))
	for _, ev := range events {
		names = append(names, ev.Pipeline.Name)
	}
	sort.Strings(names)
	d.log.Info("initial configuration applied", "pipelines", names, "config_errors", len(b.Errors),
		"other_shards", d.foreignCount(), "shard", d.cfg.Shard.String(),
		"control_plane", endpointOrNone(d.cfg.FlowctlEndpoint))
	d.readyOnce.Do(func() { close(d.ready) })
}

// logChange logs how one change went and counts failures. Its error is also on the
// pipeline (host.Info.ApplyError), which the API shows.
func (d *daemon) logChange(ev loader.Event, err error) {
	log := d.log.With("pipeline", ev.Pipeline.Name)
	if err != nil {
		d.reload.failures.WithLabelValues(ev.Kind.String()).Inc()
		log.Error("applying pipeline change failed; the previous version (if any) keeps running",
			"change", ev.Kind.String(), "file", ev.Pipeline.File, "err", err)
		return
	}
	log.Info("pipeline change applied", "change", ev.Kind.String(), "file", ev.Pipeline.File)
	if ev.Kind != loader.Remove {
		for _, w := range ev.Pipeline.Warnings {
			log.Warn("config warning", "file", w.File, "line", w.Line, "column", w.Column, "warning", w.Msg)
		}
	}
}
