package host

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/loader"
)

// Stats returns every component's stats: its own (StatsReporter) plus the host-measured
// events_in, events_out and errors; Updated is the last time any of them changed.
func (p *Pipeline) Stats() []component.Stats {
	r := p.currentRun()
	if r == nil {
		return nil
	}
	now := p.h.opts.Now()
	out := make([]component.Stats, 0, len(r.comps))
	for _, c := range r.comps {
		out = append(out, c.stats(now))
	}
	return out
}

// Snapshot is everything the host knows about one pipeline at one moment, from one read of
// its state: what GET /api/v1/pipelines shows of it.
type Snapshot struct {
	Info
	Health        string             // HealthState
	Uptime        time.Duration      // since the current (or last) incarnation started; 0 before any
	Metrics       map[string]float64 // GetMetrics
	HealthDetails map[string]string  // GetHealthDetails
	// Warnings are the loader's warnings about the applied definition (config keys a component
	// does not know, no consumers), each naming file:line:column.
	Warnings []string
	// Progress through the range of a bounded pipeline (end_ledger); nil when unbounded.
	Progress *Progress
}

// Snapshot returns the pipeline's state, health, metrics and health details, all from one read.
func (p *Pipeline) Snapshot() Snapshot {
	rd := p.read()
	s := Snapshot{Info: rd.in, Health: p.healthState(rd), Metrics: p.metrics(rd), HealthDetails: p.healthDetails(rd),
		Progress: p.progressOf(rd)}
	for _, w := range rd.def.Warnings {
		s.Warnings = append(s.Warnings, w.Error())
	}
	if !rd.in.StartedAt.IsZero() {
		s.Uptime = p.h.opts.Now().Sub(rd.in.StartedAt)
	}
	return s
}

// GetMetrics returns the flat metrics of docs/design.md "The wire contract": pipeline.uptime_seconds,
// pipeline.component_count, pipeline.current_ledger, pipeline.checkpoint_ledger,
// pipeline.restarts, pipeline.generation, pipeline.ledgers_processed,
// pipeline.full_decodes, a bounded pipeline's pipeline.progress_* (eta.go) and
// <kind>.<Name>.<key> for every component stat.
func (p *Pipeline) GetMetrics() map[string]float64 { return p.metrics(p.read()) }

func (p *Pipeline) metrics(rd reading) map[string]float64 {
	in, r := rd.in, rd.r
	// Each component's values as Stats() returns them, without the copy (only read here),
	// gathered first so that the map is made at its final size.
	var buf [8]map[string]float64
	vals, n := buf[:0], 8
	if r != nil {
		now := p.h.opts.Now()
		for _, c := range r.comps {
			v, _ := c.values(now)
			vals, n = append(vals, v), n+len(v)
		}
	}
	m := make(map[string]float64, n)
	m["pipeline.uptime_seconds"] = p.uptime(in).Seconds()
	m["pipeline.current_ledger"] = float64(in.CurrentLedger)
	m["pipeline.checkpoint_ledger"] = float64(in.Checkpoint)
	m["pipeline.restarts"] = float64(in.Restarts)
	m["pipeline.generation"] = float64(in.Generation)
	if r == nil {
		m["pipeline.component_count"] = float64(defComponentCount(rd.def))
		return m
	}
	m["pipeline.component_count"] = float64(len(r.comps))
	m["pipeline.ledgers_processed"] = float64(r.prog.processed.Load())
	m["pipeline.full_decodes"] = float64(r.decodes.Load())
	addProgress(m, p.progressOf(rd))
	for i, c := range r.comps {
		names := namesOf(c.kind, c.name)
		for k, v := range vals[i] {
			m[names.name(k)] = v
		}
	}
	return m
}

// flatNames memoizes the flat names of component stats and health details
// ("source.FSBufferedStorageSourceAdapter.processed_ledgers", "LatestLedger_status"): every
// heartbeat of every pipeline needs the same few, so they are built once rather than
// allocated per call. They are few (component names times stat names) but come from config:
// past maxFlatNames, new ones are built per call instead.
var flatNames struct {
	mu    sync.RWMutex
	comps map[flatPrefix]*compNames
	n     int // names held, over all comps
}

const maxFlatNames = 1 << 14

// flatPrefix identifies a component's names: kind "" is its health detail (<name>_status).
type flatPrefix struct {
	kind component.Kind
	name string
}

type compNames struct {
	prefix flatPrefix
	mu     sync.RWMutex
	names  map[string]string // stat key -> flat name
}

func namesOf(kind component.Kind, name string) *compNames {
	k := flatPrefix{kind, name}
	flatNames.mu.RLock()
	cn := flatNames.comps[k]
	flatNames.mu.RUnlock()
	if cn != nil {
		return cn
	}
	flatNames.mu.Lock()
	defer flatNames.mu.Unlock()
	if cn = flatNames.comps[k]; cn == nil {
		if flatNames.comps == nil {
			flatNames.comps = make(map[flatPrefix]*compNames)
		}
		cn = &compNames{prefix: k, names: make(map[string]string)}
		flatNames.comps[k] = cn
	}
	return cn
}

// name is the flat name of stat key k (<kind>.<name>.<k>), or the health detail name
// (<name>_status) for the detail prefix.
func (cn *compNames) name(k string) string {
	cn.mu.RLock()
	s, ok := cn.names[k]
	cn.mu.RUnlock()
	if ok {
		return s
	}
	if cn.prefix.kind == "" {
		s = cn.prefix.name + "_status"
	} else {
		s = string(cn.prefix.kind) + "." + cn.prefix.name + "." + k
	}
	flatNames.mu.Lock()
	full := flatNames.n >= maxFlatNames
	if !full {
		flatNames.n++
	}
	flatNames.mu.Unlock()
	if !full {
		cn.mu.Lock()
		cn.names[k] = s
		cn.mu.Unlock()
	}
	return s
}

// defComponentCount counts the components of a definition.
func defComponentCount(def *loader.Pipeline) int {
	return 1 + len(def.Processors) + len(def.Consumers)
}

func (p *Pipeline) uptime(in Info) time.Duration {
	if in.StartedAt.IsZero() || in.Status != StatusRunning {
		return 0
	}
	return p.h.opts.Now().Sub(in.StartedAt)
}

// HealthState is starting|healthy|degraded|unhealthy|stopping. A running pipeline is degraded
// when a component reports itself unhealthy (component.HealthReporter) or is stuck (one call on
// one ledger running longer than Options.StuckAfter); a completed one is
// healthy; restarting and failed ones are unhealthy.
func (p *Pipeline) HealthState() string { return p.healthState(p.read()) }

func (p *Pipeline) healthState(rd reading) string {
	switch rd.in.Status {
	case StatusStarting:
		return HealthStarting
	case StatusRunning:
		if r := rd.r; r != nil {
			for _, c := range r.comps {
				if c.stuck(p.h.opts.StuckAfter) != "" {
					return HealthDegraded
				}
				if h := c.health(); h != "" && h != "healthy" {
					return HealthDegraded
				}
			}
		}
		return HealthHealthy
	case StatusCompleted:
		return HealthHealthy
	case StatusRestarting, StatusFailed:
		return HealthUnhealthy
	}
	return HealthStopping
}

// IsHealthy reports whether HealthState is healthy.
func (p *Pipeline) IsHealthy() bool { return p.HealthState() == HealthHealthy }

// GetHealthDetails returns pipeline_id, uptime, component_count, <Name>_status (healthy,
// stale, error, the component's own health reason, or the pipeline status when it is not
// running), last_error, status, restarts, generation, current_ledger and checkpoint.
func (p *Pipeline) GetHealthDetails() map[string]string { return p.healthDetails(p.read()) }

func (p *Pipeline) healthDetails(rd reading) map[string]string {
	in, r := rd.in, rd.r
	n := 9
	if r != nil {
		n += len(r.comps)
	}
	d := make(map[string]string, n)
	d["pipeline_id"] = p.name
	d["uptime"] = p.uptime(in).Truncate(time.Second).String()
	d["status"] = in.Status
	d["restarts"] = strconv.Itoa(in.Restarts)
	d["generation"] = strconv.FormatInt(in.Generation, 10)
	d["last_error"] = in.LastError
	d["current_ledger"] = strconv.FormatUint(uint64(in.CurrentLedger), 10)
	d["checkpoint"] = strconv.FormatUint(uint64(in.Checkpoint), 10)
	if r == nil {
		d["component_count"] = strconv.Itoa(defComponentCount(rd.def))
		return d
	}
	d["component_count"] = strconv.Itoa(len(r.comps))
	now := p.h.opts.Now()
	for _, c := range r.comps {
		d[namesOf("", c.name).name("")] = c.status(in.Status, now, r.startedAt, p.h.opts.StuckAfter)
	}
	return d
}

// stuck describes a processor's or consumer's current call on one ledger when it has run
// longer than after ("stuck: Process on ledger 58752001 for 1m2s"), else "". A hung call never
// returns, so neither an error nor staleness would ever report it. (The source's Run is one
// long call by design: it is not judged here.)
func (c *comp) stuck(after time.Duration) string {
	if c.kind == component.KindSource {
		return ""
	}
	since, seq := c.busySince.Load(), c.busyLedger.Load()
	if since == 0 || seq == 0 {
		return ""
	}
	d := time.Since(time.Unix(0, since)) // busySince is wall clock (see run.guard)
	if d <= after {
		return ""
	}
	what, _ := c.busyCall.Load().(string)
	return fmt.Sprintf("stuck: %s on ledger %d for %s", what, seq, d.Truncate(time.Second))
}

// stats merges a component's own stats with the host-measured ones.
func (c *comp) stats(now time.Time) component.Stats {
	vals, updated := c.values(now)
	return component.Stats{Kind: c.kind, Type: c.typ, Name: c.name, Values: maps.Clone(vals), Updated: updated}
}

// values is stats without the copy: vals must not be modified (it may become c.prev).
func (c *comp) values(now time.Time) (vals map[string]float64, updated time.Time) {
	var own map[string]float64
	ownErr := false
	sr, reports := c.impl.(component.StatsReporter)
	if reports {
		var err error
		own, err = safeStats(sr)
		ownErr = err != nil
	}
	vals = make(map[string]float64, len(own)+4)
	vals["events_out"] = float64(c.out.Load())
	vals["errors"] = float64(c.errs.Load())
	if c.kind != component.KindSource {
		vals["events_in"] = float64(c.in.Load())
	}
	if reports {
		if !ownErr {
			maps.Copy(vals, own)
		} else {
			vals["stats_errors"] = 1
		}
	}
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if !maps.Equal(vals, c.prev) {
		c.prev = vals
		c.updated = now
	}
	if last := c.last.Load(); last != 0 && time.Unix(0, last).After(c.updated) {
		c.updated = time.Unix(0, last)
	}
	return vals, c.updated
}

func (c *comp) health() string {
	hr, ok := c.impl.(component.HealthReporter)
	if !ok {
		return ""
	}
	h, err := safeHealth(hr)
	if err != nil {
		return err.Error()
	}
	return h
}

func (c *comp) status(pipelineStatus string, now, runStarted time.Time, stuckAfter time.Duration) string {
	if c.failed.Load() {
		return "error"
	}
	if pipelineStatus != StatusRunning {
		return pipelineStatus
	}
	if s := c.stuck(stuckAfter); s != "" {
		return s
	}
	if h := c.health(); h != "" && h != "healthy" {
		return h
	}
	last := runStarted
	if l := c.last.Load(); l != 0 {
		last = time.Unix(0, l)
	}
	if now.Sub(last) > StaleAfter {
		return "stale"
	}
	return "healthy"
}
