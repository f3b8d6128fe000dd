package server

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func getHistory(t testing.TB, r *running, req *cdpdv1.GetHistoryRequest) []*cdpdv1.HeartbeatSample {
	t.Helper()
	resp, err := r.hist.GetHistory(ctxT(t), req)
	if err != nil {
		t.Fatalf("history %s: %v", req.GetServiceId(), err)
	}
	if resp.GetServiceId() != req.GetServiceId() {
		t.Fatalf("history answered for %q", resp.GetServiceId())
	}
	return resp.GetSamples()
}

func TestHistoryBoundedByCount(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HistoryMaxSamples: 5})
	register(t, r, "svc", typeNone, nil)
	statuses := []flowctlv1.HealthStatus{starting, healthy, healthy, degraded, healthy, unknown, healthy, stopping}
	for i, st := range statuses {
		m := map[string]string{"n": strconv.Itoa(i), "const": "x"}
		if i == 1 {
			m["once"] = "sent-at-1" // merged: stays in every later sample
		}
		heartbeat(t, r, "svc", st, m)
		clock.Advance(10 * time.Second)
	}
	got := getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc"})
	if len(got) != 5 {
		t.Fatalf("%d samples, want 5", len(got))
	}
	for j, smp := range got {
		i := j + 3 // samples 3..7 are kept
		wantStatus := statuses[i]
		if wantStatus == unknown {
			wantStatus = statuses[i-1] // an UNKNOWN heartbeat keeps the stored status
		}
		want := map[string]string{"n": strconv.Itoa(i), "const": "x", "once": "sent-at-1"}
		if smp.GetStatus() != wantStatus || !maps.Equal(smp.GetMetrics(), want) {
			t.Fatalf("sample %d: %v %v, want %v %v", i, smp.GetStatus(), smp.GetMetrics(), wantStatus, want)
		}
		wantTime := newFakeClock().Now().Add(time.Duration(i) * 10 * time.Second)
		if !smp.GetTime().AsTime().Equal(wantTime) {
			t.Fatalf("sample %d at %v, want %v", i, smp.GetTime().AsTime(), wantTime)
		}
	}

	since := got[2].GetTime()
	if n := len(getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc", Since: since})); n != 3 {
		t.Fatalf("since filter: %d samples, want 3", n)
	}
	for _, smp := range getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc", MetricNames: []string{"n", "absent"}}) {
		if len(smp.GetMetrics()) != 1 || smp.GetMetrics()["n"] == "" {
			t.Fatalf("metric_names filter: %v", smp.GetMetrics())
		}
	}
}

func TestHistoryBoundedByAge(t *testing.T) {
	clock := newFakeClock()
	r := start(t, Options{Now: clock.Now, HistoryMaxAge: time.Hour, HeartbeatTTL: 10 * time.Hour})
	register(t, r, "svc", typeNone, nil)
	register(t, r, "gone", typeNone, nil)
	heartbeat(t, r, "gone", healthy, map[string]string{"x": "1"})
	for i := range 5 { // at 0, 20, 40, 60, 80 minutes
		heartbeat(t, r, "svc", healthy, map[string]string{"i": strconv.Itoa(i)})
		clock.Advance(20 * time.Minute)
	}
	// now = 100 min: samples older than 40 min are dropped by the janitor.
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "gone"}); err != nil {
		t.Fatal(err)
	}
	if n := len(getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "gone"})); n != 1 {
		t.Fatalf("an unregistered service keeps its history until it ages out: %d samples", n)
	}
	r.srv.Sweep()
	got := getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc"})
	if len(got) != 3 || got[0].GetMetrics()["i"] != "2" || got[2].GetMetrics()["i"] != "4" {
		t.Fatalf("after pruning: %v", got)
	}
	for _, id := range []string{"gone", "never-registered"} {
		_, err := r.hist.GetHistory(ctxT(t), &cdpdv1.GetHistoryRequest{ServiceId: id})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("history of %s: %v, want NotFound", id, err)
		}
	}
	// A registered service whose samples all aged out has an empty history, not NotFound.
	clock.Advance(2 * time.Hour)
	r.srv.Sweep()
	if n := len(getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc"})); n != 0 {
		t.Fatalf("aged-out history: %d samples", n)
	}
	heartbeat(t, r, "svc", degraded, map[string]string{"j": "1"})
	got = getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "svc"})
	if len(got) != 1 || !maps.Equal(got[0].GetMetrics(), map[string]string{"i": "4", "j": "1"}) || got[0].GetStatus() != degraded {
		t.Fatalf("history restarted after ageing out: %v", got)
	}
}

func TestHistoryInvalidSince(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "svc", typeNone, nil)
	_, err := r.hist.GetHistory(ctxT(t), &cdpdv1.GetHistoryRequest{ServiceId: "svc", Since: &timestamppb.Timestamp{Nanos: -1}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid since: %v", err)
	}
}

// Direct unit test of the delta encoding against a naive model, with eviction.
func TestHistoryMatchesNaiveModel(t *testing.T) {
	const max = 7
	h := newHistory("x")
	type snap struct {
		t int64
		m map[string]string
	}
	var model []snap
	state := map[string]string{}
	for i := range 40 {
		m := map[string]string{"tick": strconv.Itoa(i)}
		if i%3 == 0 {
			m["third"] = strconv.Itoa(i / 3)
		}
		if i%11 == 0 {
			m["k"+strconv.Itoa(i)] = "v"
		}
		for k, v := range m {
			state[k] = v
		}
		h.add(int64(i)*100, healthy, m, max, 1<<40)
		model = append(model, snap{int64(i) * 100, maps.Clone(state)})
		if len(model) > max {
			model = model[1:]
		}
		got := h.read(0, nil)
		if len(got) != len(model) {
			t.Fatalf("step %d: %d samples, want %d", i, len(got), len(model))
		}
		for j := range got {
			if got[j].GetTime().AsTime().UnixNano() != model[j].t || !maps.Equal(got[j].GetMetrics(), model[j].m) {
				t.Fatalf("step %d sample %d: %v, want %v", i, j, got[j].GetMetrics(), model[j].m)
			}
		}
	}
	// Same timestamps still give strictly increasing sample times.
	h.add(100*39, healthy, nil, max, 1<<40)
	got := h.read(0, nil)
	if a, b := got[len(got)-2].GetTime().AsTime(), got[len(got)-1].GetTime().AsTime(); !b.After(a) {
		t.Fatalf("sample times %v then %v", a, b)
	}
	if !proto.Equal(got[len(got)-1].GetTime(), timestamppb.New(time.Unix(0, 100*39+1))) {
		t.Fatalf("bumped time %v", got[len(got)-1].GetTime().AsTime())
	}
}
