package control

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// hbCache is what the previous heartbeat of one pipeline built: the text of
// each metric and health detail with the value it was made from, and the
// request's Metrics map. The next heartbeat reuses the strings of everything
// that did not change (an idle pipeline's figures hardly do) and the map,
// rather than formatting, concatenating and allocating them again. An entry
// runs one exchange at a time, and the map is refilled only after the previous
// Invoke returned (gRPC has marshalled the request by then), so it needs no lock.
type hbCache struct {
	metrics map[string]hbText // by the pipeline's metric name
	details map[string]hbText // by the pipeline's health detail name
	out     map[string]string // the Metrics of the last request
}

// hbText is one metric or detail as sent: its key on the wire, the value it
// was made from and the value's text. The maps hold them by value: a few hundred
// idle pipelines' heartbeat caches are otherwise tens of thousands of small
// objects for every garbage collection to mark.
type hbText struct {
	key  string
	num  uint64 // a metric's float64 bits
	str  string // a detail's value
	text string
}

// build builds a pipeline's heartbeat: its status, its metrics (NaN and
// infinities left out) and its health details under "health."; names and values
// with invalid UTF-8 are repaired and detail values cut at MaxDetailLen. A
// panic in the pipeline's methods is reported as UNHEALTHY with the panic in
// health.control_error rather than taking the daemon down. The request's
// Metrics map belongs to hc: it is refilled by the next build.
func (hc *hbCache) build(id string, p Pipeline, log *slog.Logger, name string) (req *flowctlv1.HeartbeatRequest) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("pipeline health or metrics panicked", "pipeline", name, "panic", fmt.Sprint(r))
			req = &flowctlv1.HeartbeatRequest{
				ServiceId: id,
				Status:    flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY,
				Metrics:   map[string]string{contract.HealthKey(contract.DetailControlError): fmt.Sprintf("health/metrics panicked: %v", r)},
			}
		}
	}()
	st := HealthStatusOf(p)
	metrics := p.GetMetrics()
	details := p.GetHealthDetails()
	if hc.metrics == nil {
		hc.metrics = make(map[string]hbText, len(metrics))
		hc.details = make(map[string]hbText, len(details))
		hc.out = make(map[string]string, len(metrics)+len(details))
	}
	m := hc.out
	clear(m)
	for k, v := range metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		t, ok := hc.metrics[k]
		bits := math.Float64bits(v)
		switch {
		case !ok:
			text, _ := contract.MetricText(v)
			t = hbText{key: validUTF8(k), num: bits, text: text}
			hc.metrics[k] = t
		case t.num != bits:
			t.num = bits
			t.text, _ = contract.MetricText(v)
			hc.metrics[k] = t
		}
		m[t.key] = t.text
	}
	for k, v := range details {
		t, ok := hc.details[k]
		switch {
		case !ok:
			t = hbText{key: contract.HealthKey(validUTF8(k)), str: v, text: truncate(validUTF8(v), MaxDetailLen)}
			hc.details[k] = t
		case t.str != v:
			t.str, t.text = v, truncate(validUTF8(v), MaxDetailLen)
			hc.details[k] = t
		}
		m[t.key] = t.text
	}
	// Forget names the pipeline no longer reports (a new version's components).
	if len(hc.metrics) > len(metrics) {
		prune(hc.metrics, metrics)
	}
	if len(hc.details) > len(details) {
		prune(hc.details, details)
	}
	return &flowctlv1.HeartbeatRequest{ServiceId: id, Status: st, Metrics: m}
}

// prune forgets the texts of names no longer in current.
func prune[V any](texts map[string]hbText, current map[string]V) {
	for k := range texts {
		if _, ok := current[k]; !ok {
			delete(texts, k)
		}
	}
}

// MaxDetailLen bounds a health detail value in a heartbeat (bytes); longer
// values (a long error message) are cut and end in "…", so that one detail
// cannot get the whole heartbeat rejected by a server with value limits.
const MaxDetailLen = 1024

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// validUTF8 replaces invalid UTF-8, which protobuf strings cannot carry.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
