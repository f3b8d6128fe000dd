package host

import (
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// A snapshot carries what Info, HealthState, GetMetrics and GetHealthDetails say, read once.
func TestSnapshot(t *testing.T) {
	l := newLab()
	now := time.Unix(1_800_000_000, 0)
	var clock atomic.Int64 // unix nanoseconds of the injected clock
	clock.Store(now.UnixNano())
	h := newTestHost(t, l, func(o *Options) { o.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	apply(t, h, loader.Add, def("s", comp_("MemSource", "start_ledger", first, "end_ledger", first+2), nil, procs(comp_("Record"))))
	p, _ := h.Get("s")
	testutil.Eventually(t, waitLong, "s completed", func() bool { return p.Info().Status == StatusCompleted })
	clock.Store(now.Add(90 * time.Second).UnixNano())
	s := p.Snapshot()
	if s.Info != p.Info() || s.Health != p.HealthState() || !maps.Equal(s.Metrics, p.GetMetrics()) ||
		!maps.Equal(s.HealthDetails, p.GetHealthDetails()) {
		t.Errorf("snapshot %+v\ndiffers from the separate reads", s)
	}
	if s.Name != "s" || s.Status != StatusCompleted || s.Health != HealthHealthy || s.CurrentLedger != first+2 ||
		s.Metrics["consumer.Record.events_out"] != 3 || s.HealthDetails["Record_status"] != StatusCompleted {
		t.Errorf("snapshot %+v", s)
	}
	if s.Uptime != 90*time.Second {
		t.Errorf("uptime %s, want 1m30s since the run started", s.Uptime)
	}
}

// A component's `name:` names its stats and health detail instead of its type; the loader's
// warnings about the definition are in the snapshot.
func TestComponentNameAndWarningsInSnapshot(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	sink := comp_("Record")
	sink.Name = "archive"
	d := def("named", comp_("MemSource", "start_ledger", first, "end_ledger", first+1), nil, procs(sink, comp_("Record")))
	d.Warnings = []*loader.Error{{File: d.File, Line: 4, Column: 7, Pipeline: "named", Msg: `consumer 1 (Record): unknown config key "format", ignored`}}
	apply(t, h, loader.Add, d)
	p, _ := h.Get("named")
	testutil.Eventually(t, waitLong, "named completed", func() bool { return p.Info().Status == StatusCompleted })
	s := p.Snapshot()
	if s.Metrics["consumer.archive.events_out"] != 2 || s.Metrics["consumer.Record.events_out"] != 2 || s.HealthDetails["archive_status"] == "" {
		t.Errorf("metrics %v / details %v: want the named consumer as archive and the other as Record", s.Metrics, s.HealthDetails)
	}
	if len(s.Warnings) != 1 || s.Warnings[0] != `configs/named.yaml:4:7: pipeline named: consumer 1 (Record): unknown config key "format", ignored` {
		t.Errorf("warnings %q", s.Warnings)
	}
}
