package server

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/contract"
)

// The fleet on the control plane's /metrics (Options.ReexportMetrics): one scrape of the
// control plane covers every registered service, whichever daemon or process runs it.
//
// Per registered service, labelled service_id, service_type (contract.ServiceType) and
// instance (metadata instance, else host, else empty):
//
//	flowctl_service_up                          1 while the service's status is HEALTHY, else 0
//	flowctl_service_last_heartbeat_age_seconds  now minus its last heartbeat (its registration
//	                                            before the first)
//	cdp_<...>                                   its latest heartbeat metrics, as gauges named
//	                                            by PromName
//
// and flowctl_reexport_dropped_metrics, the values the last scrape left out (over the cap, or
// a name that collides). The series are built from the registry at scrape time, so a service's
// series vanish with it (unregistered, or removed when it expires).
//
// Cardinality is bounded: at most ReexportMetrics heartbeat metrics per service (the first in
// key order; cdpd's pipelines send 15-30, so the default of 100 keeps them all), so at most
// MaxServices × (ReexportMetrics + 2) series.

// Names of the fleet series.
const (
	FleetUp      = "flowctl_service_up"
	FleetHBAge   = "flowctl_service_last_heartbeat_age_seconds"
	FleetDropped = "flowctl_reexport_dropped_metrics"
	// DefaultReexportMetrics is the default per-service cap (flowctl server --metrics-per-service).
	DefaultReexportMetrics = 100
	// reexportPrefix starts every re-exported heartbeat metric; the control plane's own metrics
	// are cdp_control_*, which PromName never yields.
	reexportPrefix = "cdp_"
	ownPrefix      = "cdp_control_"
)

var fleetLabels = []string{"service_id", "service_type", "instance"}

var (
	upDesc = prometheus.NewDesc(FleetUp,
		"1 while the service's status in the control plane is healthy, else 0 (unhealthy, degraded, silent past the heartbeat TTL, ...).", fleetLabels, nil)
	hbAgeDesc = prometheus.NewDesc(FleetHBAge,
		"Seconds since the service's last heartbeat (since its registration before the first).", fleetLabels, nil)
	droppedDesc = prometheus.NewDesc(FleetDropped,
		"Heartbeat metric values the last scrape did not re-export: beyond the per-service cap (flowctl server --metrics-per-service) or colliding with another's name.", nil, nil)
)

// componentKinds are the first word of a component's heartbeat metrics:
// <kind>.<Name>.<key> (cdpd, upstream CDP: "sink" for consumers).
var componentKinds = map[string]bool{"source": true, "processor": true, "consumer": true, "sink": true}

// PromName maps a heartbeat metric key to the name of the gauge the control plane re-exports
// it as, and the component label it carries (empty when none). It is the one mapping:
//
//   - health.* keys are text details, not metrics: ok is false;
//   - every dot-separated word is lower-cased and each run of characters outside [a-z0-9_]
//     becomes "_";
//   - <kind>.<Name>.<key...> with kind source, processor, consumer or sink (a component's
//     stat) becomes cdp_<kind>_<key...> with component="<Name>", so that one family holds
//     the stat of every component type: source.FSBufferedStorageSourceAdapter.ledgers_behind_tip
//     is cdp_source_ledgers_behind_tip{component="FSBufferedStorageSourceAdapter"};
//   - anything else becomes cdp_<words joined by _>: pipeline.current_ledger is
//     cdp_pipeline_current_ledger;
//   - a name that would fall among the control plane's own metrics (cdp_control_*) is not
//     re-exported: ok is false.
func PromName(key string) (name, component string, ok bool) {
	if _, detail := contract.CutHealth(key); detail {
		return "", "", false
	}
	words := strings.Split(key, ".")
	if len(words) >= 3 && componentKinds[strings.ToLower(words[0])] {
		component = words[1]
		words = append(words[:1:1], words[2:]...)
	}
	var b strings.Builder
	b.WriteString(reexportPrefix)
	n := b.Len()
	for _, w := range words {
		if s := promWord(w); s != "" {
			if b.Len() > n {
				b.WriteByte('_')
			}
			b.WriteString(s)
		}
	}
	name = b.String()
	if b.Len() == n || strings.HasPrefix(name, ownPrefix) {
		return "", "", false
	}
	return name, component, true
}

// promWord lower-cases w and turns each run of characters outside [a-z0-9_] into one "_",
// trimmed at both ends.
func promWord(w string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(w) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
			under = r == '_'
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.Trim(b.String(), "_")
}

// fleetCollector is the re-export; Collect reads the registry at scrape time.
//
// A scrape of 5,000 cdpd pipelines is about 150,000 series (BENCHMARKS.md), so Collect avoids
// per-series work that client_golang's const metrics do: each service's label pairs are built
// once and shared by its series (fleetMetric), the heartbeat key -> family name mapping is
// memoized, and services are emitted in the order the registry sorts series in (instance,
// then service id), so that its sort finds them sorted.
type fleetCollector struct {
	s   *Server
	max int // per-service cap

	mu    sync.Mutex
	descs map[fleetDescKey]*prometheus.Desc // kept between scrapes
	names map[string]promName               // PromName memo, kept between scrapes
}

type promName struct {
	name, component string
	ok              bool
}

const (
	maxFleetDescs = 1 << 14 // family descs kept between scrapes; beyond, built per scrape
	maxFleetNames = 1 << 16 // memoized key mappings; beyond, mapped per scrape
)

// Describe sends nothing: the families depend on what services report (an unchecked collector).
func (c *fleetCollector) Describe(chan<- *prometheus.Desc) {}

// fleetSample is what Collect reads of one service under its lock.
type fleetSample struct {
	id, typ, instance string
	up                bool
	age               float64
	keys              []string
	vals              []float64
}

// fleetMetric is one gauge of the re-export; its label pairs are shared with the other series
// of its service (they are never modified after Collect built them).
type fleetMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
}

func (m fleetMetric) Desc() *prometheus.Desc { return m.desc }

func (m fleetMetric) Write(out *dto.Metric) error {
	out.Label = m.labels[:len(m.labels):len(m.labels)]
	out.Gauge = &dto.Gauge{Value: proto.Float64(m.value)}
	return nil
}

// labelPairs are a service's label pairs, sorted by name as the registry wants them:
// [component,] instance, service_id, service_type.
func labelPairs(component, instance, id, typ string) []*dto.LabelPair {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	out := make([]*dto.LabelPair, 0, 4)
	if component != "" {
		out = append(out, lp("component", component))
	}
	return append(out, lp("instance", instance), lp("service_id", id), lp("service_type", typ))
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.now()
	es := c.s.sortedEntries()
	smps := make([]fleetSample, len(es))
	for i, e := range es {
		smps[i] = c.read(e, now)
	}
	sort.SliceStable(smps, func(i, j int) bool { return smps[i].instance < smps[j].instance })
	dropped := 0
	// One family name has one label shape (with or without component) and one series per
	// label values: the first in (instance, service id, key) order wins, later clashes are
	// dropped. Series of different services never clash (service_id differs), so the clashes
	// are looked for per service.
	type seriesKey struct{ name, component string }
	seen := make(map[seriesKey]struct{}, 64)
	withComp := make(map[string][]*dto.LabelPair, 8)
	shapes := make(map[string]bool)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, smp := range smps {
		base := labelPairs("", smp.instance, smp.id, smp.typ)
		ch <- fleetMetric{upDesc, base, boolGauge(smp.up)}
		ch <- fleetMetric{hbAgeDesc, base, smp.age}
		clear(seen)
		clear(withComp)
		sent := 0
		for i, k := range smp.keys {
			pn := c.promName(k)
			if !pn.ok {
				continue
			}
			if sent >= c.max {
				dropped++
				continue
			}
			sk := seriesKey{pn.name, pn.component}
			if _, dup := seen[sk]; dup {
				dropped++
				continue
			}
			d := c.desc(pn.name, pn.component != "", shapes)
			if d == nil {
				dropped++ // the family exists with the other label shape
				continue
			}
			seen[sk] = struct{}{}
			sent++
			labels := base
			if pn.component != "" {
				if labels = withComp[pn.component]; labels == nil {
					labels = labelPairs(pn.component, smp.instance, smp.id, smp.typ)
					withComp[pn.component] = labels
				}
			}
			ch <- fleetMetric{d, labels, smp.vals[i]}
		}
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.GaugeValue, float64(dropped))
}

// promName is PromName, memoized (c.mu held).
func (c *fleetCollector) promName(key string) promName {
	if pn, ok := c.names[key]; ok {
		return pn
	}
	var pn promName
	pn.name, pn.component, pn.ok = PromName(key)
	if len(c.names) < maxFleetNames {
		c.names[key] = pn
	}
	return pn
}

// read takes one service's labels, status and numeric metrics (sorted by key).
func (c *fleetCollector) read(e *entry, now time.Time) fleetSample {
	e.mu.Lock()
	defer e.mu.Unlock()
	md := e.info.GetMetadata()
	inst := md[contract.MetaInstance]
	if inst == "" {
		inst = md[contract.MetaHost]
	}
	smp := fleetSample{id: e.id, typ: contract.ServiceType(e.info), instance: inst,
		up: e.status == statusHealthy, age: now.Sub(e.lastHB).Seconds()}
	if smp.age < 0 {
		smp.age = 0
	}
	smp.keys = make([]string, 0, len(e.metrics))
	for k := range e.metrics {
		smp.keys = append(smp.keys, k)
	}
	sort.Strings(smp.keys)
	smp.vals = make([]float64, len(smp.keys))
	n := 0
	for _, k := range smp.keys {
		v, err := strconv.ParseFloat(e.metrics[k], 64)
		if err != nil {
			continue // text (a health detail, a version string): not a gauge
		}
		smp.keys[n], smp.vals[n] = k, v
		n++
	}
	smp.keys, smp.vals = smp.keys[:n], smp.vals[:n]
	return smp
}

// desc is the family's desc with or without the component label (c.mu held); nil when this
// scrape already made the family with the other shape (shapes: family name -> with component).
func (c *fleetCollector) desc(name string, withComponent bool, shapes map[string]bool) *prometheus.Desc {
	if w, ok := shapes[name]; ok && w != withComponent {
		return nil
	}
	shapes[name] = withComponent
	key := fleetDescKey{name, withComponent}
	if d, ok := c.descs[key]; ok {
		return d
	}
	labels := fleetLabels
	if withComponent {
		labels = append(append([]string{}, fleetLabels...), "component")
	}
	d := prometheus.NewDesc(name, "Latest heartbeat value of each registered service, re-exported by the flowctl control plane (see control/server PromName).", labels, nil)
	if len(c.descs) < maxFleetDescs {
		c.descs[key] = d
	}
	return d
}

type fleetDescKey struct {
	name          string
	withComponent bool
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
