package control

import (
	"log/slog"
	"maps"
	"math"
	"testing"
)

// mapPipeline returns whatever its fields hold.
type mapPipeline struct {
	metrics map[string]float64
	details map[string]string
}

func (p *mapPipeline) GetMetrics() map[string]float64      { return p.metrics }
func (p *mapPipeline) IsHealthy() bool                     { return true }
func (p *mapPipeline) GetHealthDetails() map[string]string { return p.details }

// A heartbeat built from the previous one's strings carries exactly what a fresh build
// carries: changed values, no metric or detail the pipeline stopped reporting, -0 apart from 0.
func TestHeartbeatCacheFollowsThePipeline(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	p := &mapPipeline{}
	steps := []struct {
		metrics map[string]float64
		details map[string]string
	}{
		{map[string]float64{"a": 1, "b": 2.5, "nan": math.NaN()}, map[string]string{"x": "healthy", "bad\xff": "v"}},
		{map[string]float64{"a": 1, "b": 3}, map[string]string{"x": "stale", "bad\xff": "v"}},
		{map[string]float64{"a": math.Copysign(0, -1), "c": 1e21}, map[string]string{"y": "healthy"}},
		{map[string]float64{"a": 0, "c": math.Inf(1)}, map[string]string{"y": "healthy", "a": "detail"}},
		{nil, nil},
		{map[string]float64{"b": 2.5}, map[string]string{"x": "healthy"}},
	}
	hc := &hbCache{}
	for i, st := range steps {
		p.metrics, p.details = st.metrics, st.details
		got := maps.Clone(hc.build("cdp-p", p, log, "p").GetMetrics())
		fresh := &hbCache{}
		want := fresh.build("cdp-p", p, log, "p").GetMetrics()
		if !maps.Equal(got, want) {
			t.Fatalf("step %d: %v, a fresh build gives %v", i, got, want)
		}
		if len(hc.metrics) > len(st.metrics) || len(hc.details) > len(st.details) {
			t.Fatalf("step %d: the cache keeps %d metrics and %d details of %d and %d", i,
				len(hc.metrics), len(hc.details), len(st.metrics), len(st.details))
		}
	}
	p.metrics, p.details = map[string]float64{"a": math.Copysign(0, -1)}, map[string]string{"x": "bad\xfevalue"}
	if got := hc.build("cdp-p", p, log, "p").GetMetrics(); got["a"] != "-0" || got["health.x"] != "bad\uFFFDvalue" || len(got) != 2 {
		t.Fatalf("-0 and invalid UTF-8: %q", got)
	}
}
