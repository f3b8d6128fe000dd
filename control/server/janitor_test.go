package server

import (
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control/flowctlv1"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

type eventLog struct {
	mu     sync.Mutex
	events []ServiceEvent
}

func (l *eventLog) add(ev ServiceEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) take() []ServiceEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func TestJanitorMarksSilentServicesUnhealthy(t *testing.T) {
	clock := newFakeClock()
	srv, err := New(Options{Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	srv.AddObserver(log.add)
	r := serveExisting(t, srv, nil, insecureCreds())

	register(t, r, "quiet", typeNone, nil)
	register(t, r, "chatty", typeNone, nil)
	register(t, r, "degraded", typeNone, nil)
	heartbeat(t, r, "degraded", degraded, nil)
	log.take()

	clock.Advance(20 * time.Second)
	heartbeat(t, r, "chatty", healthy, nil)
	log.take()
	srv.Sweep()
	for _, id := range []string{"quiet", "chatty"} {
		if st := getStatus(t, r, id).GetStatus(); st != healthy {
			t.Fatalf("%s after 20s: %v", id, st)
		}
	}

	clock.Advance(11 * time.Second) // quiet and degraded: 31s silent; chatty: 11s
	srv.Sweep()
	want := map[string]flowctlv1.HealthStatus{"quiet": unhealthy, "degraded": unhealthy, "chatty": healthy}
	for id, w := range want {
		if st := getStatus(t, r, id).GetStatus(); st != w {
			t.Fatalf("%s after 31s: %v, want %v", id, st, w)
		}
	}
	evs := log.take()
	if len(evs) != 2 {
		t.Fatalf("events %+v, want 2 status events", evs)
	}
	for _, ev := range evs {
		if ev.Kind != EventStatus || ev.Status != unhealthy || (ev.ServiceID == "degraded") != (ev.PrevStatus == degraded) {
			t.Fatalf("event %+v", ev)
		}
	}
	// A second pass changes nothing and says nothing.
	srv.Sweep()
	if evs := log.take(); len(evs) != 0 {
		t.Fatalf("second sweep events: %+v", evs)
	}
	list, _ := r.cp.ListComponents(ctxT(t), &flowctlv1.ListComponentsRequest{})
	if got := ids(list.GetComponents()); len(got) != 1 || got[0] != "chatty" {
		t.Fatalf("healthy list: %v", got)
	}

	// Back from silence with no opinion (UNKNOWN): the status from before; with one: that one.
	heartbeat(t, r, "degraded", unknown, nil)
	heartbeat(t, r, "quiet", starting, nil)
	if st := getStatus(t, r, "degraded").GetStatus(); st != degraded {
		t.Fatalf("degraded back: %v", st)
	}
	if st := getStatus(t, r, "quiet").GetStatus(); st != starting {
		t.Fatalf("quiet back: %v", st)
	}
	evs = log.take()
	if len(evs) != 2 || evs[0].Kind != EventHeartbeat || evs[0].PrevStatus != unhealthy || evs[0].Status != degraded {
		t.Fatalf("heartbeat events: %+v", evs)
	}
}

// Run drives the janitor on its own every JanitorInterval.
func TestRunSweepsEveryInterval(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HeartbeatTTL: time.Minute, JanitorInterval: 5 * time.Millisecond})
	register(t, r, "svc", typeNone, nil)
	clock.Advance(2 * time.Minute)
	testutil.Eventually(t, 5*time.Second, "Run marks the silent service unhealthy", func() bool {
		return getStatus(t, r, "svc").GetStatus() == unhealthy
	})
}

func TestObserverEvents(t *testing.T) {
	clock := newFakeClock()
	srv, err := New(Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	srv.AddObserver(log.add)
	r := serveExisting(t, srv, nil, insecureCreds())
	register(t, r, "svc", typeNone, map[string]string{"network": "pubnet"})
	heartbeat(t, r, "svc", degraded, map[string]string{"a": "1"})
	heartbeat(t, r, "svc", unknown, map[string]string{"b": "2"})
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "svc"}); err != nil {
		t.Fatal(err)
	}
	evs := log.take()
	want := []struct {
		kind       string
		st, prev   flowctlv1.HealthStatus
		metricsLen int
	}{
		{EventRegistered, healthy, unknown, 0},
		{EventHeartbeat, degraded, healthy, 1},
		{EventHeartbeat, degraded, degraded, 2},
		{EventUnregistered, unknown, degraded, 0},
	}
	if len(evs) != len(want) {
		t.Fatalf("events: %+v", evs)
	}
	for i, w := range want {
		ev := evs[i]
		if ev.ServiceID != "svc" || ev.Kind != w.kind || ev.Status != w.st || ev.PrevStatus != w.prev ||
			len(ev.Metrics) != w.metricsLen || ev.Metadata["network"] != "pubnet" || !ev.Time.Equal(clock.Now()) {
			t.Fatalf("event %d: %+v, want %+v", i, ev, w)
		}
	}
	if len(srv.Services()) != 0 {
		t.Fatal("Services after unregister not empty")
	}
}
