package host

import (
	"sync"
	"time"
)

// Progress is how far a bounded pipeline (a source with end_ledger) is through its range,
// for people watching a backfill: the API, the heartbeats (pipeline.progress_*) and
// `flowctl status` show it. Unbounded pipelines have none.
type Progress struct {
	// DoneLedgers of TotalLedgers (end_ledger - start_ledger + 1) are behind the pipeline:
	// every consumer accepted them (or, after a restart, the checkpoint holds them).
	DoneLedgers  uint64 `json:"done_ledgers"`
	TotalLedgers uint64 `json:"total_ledgers"`
	// Percent is 100 × done / total.
	Percent float64 `json:"percent"`
	// Rate is ledgers per second over about the last minute (since the incarnation started
	// when it is younger); 0 before a second ledger.
	Rate float64 `json:"rate_ledgers_per_second"`
	// ETASeconds is the remaining ledgers at Rate; -1 while the rate is unknown, 0 once done.
	ETASeconds float64 `json:"eta_seconds"`
}

// Heartbeat metrics of a bounded pipeline's progress (contract.MetricProgress*).
const (
	metricProgressDone  = "pipeline.progress_done_ledgers"
	metricProgressTotal = "pipeline.progress_total_ledgers"
	metricProgressRate  = "pipeline.progress_rate_ledgers_per_second"
	metricProgressETA   = "pipeline.progress_eta_seconds"
)

// rateWindow is how far back the rate looks; rateSampleEvery how often a reading records a
// sample for it.
const (
	rateWindow      = time.Minute
	rateSampleEvery = 5 * time.Second
)

// rateSamples are (time, ledgers processed) pairs of one incarnation, taken by readings
// (heartbeats, API calls) at most every rateSampleEvery and kept for rateWindow: the rate is
// measured over what the pipeline did lately, not since it started hours ago.
type rateSamples struct {
	mu      sync.Mutex
	samples []rateSample // oldest first
}

type rateSample struct {
	at time.Time
	n  int64
}

// rate records (now, processed) if the last sample is old enough and returns the ledgers per
// second since the oldest sample within the window, else since start (0 when not measurable).
func (rs *rateSamples) rate(now time.Time, processed int64, start time.Time) float64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if k := len(rs.samples); k == 0 || now.Sub(rs.samples[k-1].at) >= rateSampleEvery {
		rs.samples = append(rs.samples, rateSample{now, processed})
	}
	drop := 0
	for drop < len(rs.samples)-1 && now.Sub(rs.samples[drop+1].at) >= rateWindow {
		drop++ // keep one sample at or beyond the window's start
	}
	rs.samples = rs.samples[drop:]
	from := rateSample{start, 0}
	if first := rs.samples[0]; now.Sub(first.at) >= rateSampleEvery {
		from = first
	}
	dt := now.Sub(from.at).Seconds()
	if dt <= 0 || processed <= from.n {
		return 0
	}
	return float64(processed-from.n) / dt
}

// progressOf is the progress of a reading of a bounded pipeline, nil when unbounded or before
// its first incarnation.
func (p *Pipeline) progressOf(rd reading) *Progress {
	r := rd.r
	if r == nil {
		return nil
	}
	start, end := r.source().Range()
	if end == 0 || end < start {
		return nil
	}
	total := uint64(end-start) + 1
	at := max(rd.in.CurrentLedger, rd.in.Checkpoint)
	var done uint64
	if at >= start {
		done = min(uint64(at-start)+1, total)
	}
	pr := &Progress{DoneLedgers: done, TotalLedgers: total, Percent: 100 * float64(done) / float64(total), ETASeconds: -1}
	pr.Rate = r.rates.rate(p.h.opts.Now(), r.prog.processed.Load(), r.startedAt)
	switch {
	case done == total:
		pr.ETASeconds = 0
	case pr.Rate > 0:
		pr.ETASeconds = float64(total-done) / pr.Rate
	}
	return pr
}

// Progress returns the pipeline's progress through its range, nil when it has no end_ledger.
func (p *Pipeline) Progress() *Progress { return p.progressOf(p.read()) }

// addProgress puts a bounded pipeline's progress into its flat metrics.
func addProgress(m map[string]float64, pr *Progress) {
	if pr == nil {
		return
	}
	m[metricProgressDone] = float64(pr.DoneLedgers)
	m[metricProgressTotal] = float64(pr.TotalLedgers)
	m[metricProgressRate] = pr.Rate
	m[metricProgressETA] = pr.ETASeconds
}
