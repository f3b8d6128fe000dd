package host

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// The latency histogram puts an observation in the first bucket whose bound is not below it (a
// bound is inclusive, as Prometheus' `le`), above every bound only in +Inf, and exposes
// cumulative counts, the count and the sum.
func TestLatencyHistogram(t *testing.T) {
	var l latency
	for _, d := range []time.Duration{
		100 * time.Microsecond, // le 0.0005
		500 * time.Microsecond, // le 0.0005 (on the bound)
		501 * time.Microsecond, // le 0.001
		3 * time.Millisecond,   // le 0.004
		time.Minute,            // +Inf only
	} {
		l.observe(d)
	}
	var m dto.Metric
	if err := l.metric("c", "processor", "p").Write(&m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	if h.GetSampleCount() != 5 {
		t.Errorf("count %d, want 5", h.GetSampleCount())
	}
	if want := (100*time.Microsecond + 1001*time.Microsecond + 3*time.Millisecond + time.Minute).Seconds(); h.GetSampleSum() != want {
		t.Errorf("sum %v, want %v", h.GetSampleSum(), want)
	}
	want := map[float64]uint64{0.0005: 2, 0.001: 3, 0.002: 3, 0.004: 4, latencyBuckets[numLatencyBuckets-1]: 4}
	if len(h.GetBucket()) != numLatencyBuckets {
		t.Fatalf("%d buckets, want %d", len(h.GetBucket()), numLatencyBuckets)
	}
	for _, b := range h.GetBucket() {
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("le %v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
}

// What pipelineCollector describes is what it collects (a pedantic registry checks every
// metric against the descriptions and their labels).
func TestPipelineCollectorIsConsistent(t *testing.T) {
	ds := sharedDatastore(t)
	h := newTestHost(t, newLab(), nil)
	apply(t, h, loader.Add, def("m1", fsSource(ds.Dir, first, first+1), procs(latestLedger()), procs(comp_("Record"))))
	testutil.Eventually(t, waitLong, "completed", func() bool { return status(h, "m1") == StatusCompleted })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pipelineCollector{h})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != len(pipelineDescs) {
		t.Errorf("%d families gathered, want %d", len(mfs), len(pipelineDescs))
	}
}
