package server

import (
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

func TestPersistenceSurvivesRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	clock := newFakeClock()
	opts := Options{DBPath: dbPath, Now: clock.Now, HistoryMaxSamples: 4, JanitorInterval: time.Hour}

	r := start(t, opts)
	register(t, r, "cdp-a", typeNone, map[string]string{"service_type": "cdp-pipeline"})
	register(t, r, "cdp-b", typeSource, nil)
	register(t, r, "cdp-c", typeNone, nil)
	for i := range 7 {
		st := healthy
		if i == 6 {
			st = degraded
		}
		heartbeat(t, r, "cdp-a", st, map[string]string{"n": strconv.Itoa(i), "fixed": "f", "odd": strconv.Itoa(i | 1)})
		if i%2 == 0 { // flush at several points: base rewrites and deletion of evicted samples
			if err := r.srv.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(10 * time.Second)
	}
	heartbeat(t, r, "cdp-c", healthy, map[string]string{"c": "1"})
	if _, err := r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: "cdp-c"}); err != nil {
		t.Fatal(err)
	}
	wantA := getStatus(t, r, "cdp-a")
	wantB := getStatus(t, r, "cdp-b")
	wantHistA := getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "cdp-a"})
	wantHistC := getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "cdp-c"})
	r.stop(t) // Close flushes the last heartbeats

	// The history database holds exactly the kept samples.
	db, err := bbolt.Open(HistoryDBPath(dbPath), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketHistory).Bucket([]byte("cdp-a")).Stats().KeyN; n != 4 {
			t.Errorf("stored samples of cdp-a: %d, want 4", n)
		}
		return nil
	})
	db.Close()

	clock.Advance(time.Hour) // the server was down for an hour
	r2 := start(t, opts)
	for _, want := range []*flowctlv1.ComponentStatusResponse{wantA, wantB} {
		got := getStatus(t, r2, want.GetComponent().GetId())
		if !proto.Equal(got, want) {
			t.Fatalf("after restart:\n got %v\nwant %v", got, want)
		}
	}
	if _, err := r2.cp.GetComponentStatus(ctxT(t), &flowctlv1.ComponentStatusRequest{ServiceId: "cdp-c"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unregistered service after restart: %v", err)
	}
	for id, want := range map[string][]*cdpdv1.HeartbeatSample{"cdp-a": wantHistA, "cdp-c": wantHistC} {
		got := getHistory(t, r2, &cdpdv1.GetHistoryRequest{ServiceId: id})
		if len(got) != len(want) {
			t.Fatalf("history of %s after restart: %d samples, want %d", id, len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("history of %s sample %d:\n got %v\nwant %v", id, i, got[i], want[i])
			}
		}
	}

	// One TTL of grace after the restart, then the janitor judges the silent ones.
	r2.srv.Sweep()
	if st := getStatus(t, r2, "cdp-b").GetStatus(); st != healthy {
		t.Fatalf("right after restart: %v", st)
	}
	heartbeat(t, r2, "cdp-a", unknown, map[string]string{"n": "7"}) // no re-registration needed
	clock.Advance(DefaultHeartbeatTTL + time.Second)
	r2.srv.Sweep()
	if st := getStatus(t, r2, "cdp-b").GetStatus(); st != unhealthy {
		t.Fatalf("silent after the grace: %v", st)
	}
	if m := getStatus(t, r2, "cdp-a").GetMetrics(); m["n"] != "7" || m["fixed"] != "f" {
		t.Fatalf("metrics after restart and heartbeat: %v", m)
	}
	got := getHistory(t, r2, &cdpdv1.GetHistoryRequest{ServiceId: "cdp-a"})
	if len(got) != 4 || got[3].GetMetrics()["n"] != "7" || got[3].GetMetrics()["odd"] != "7" || got[3].GetStatus() != degraded {
		t.Fatalf("history continued after restart: %v", got[len(got)-1])
	}
}

func TestHeartbeatsFlushedPeriodically(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	r := start(t, Options{DBPath: dbPath, FlushInterval: 5 * time.Millisecond})
	register(t, r, "svc", typeNone, nil)
	heartbeat(t, r, "svc", degraded, map[string]string{"ledgers": "42"})
	testutil.EventuallyWhy(t, 5*time.Second, "the heartbeat is flushed", func() (bool, string) {
		var rec flowctlv1.ComponentStatusResponse
		err := r.srv.DB().View(func(tx *bbolt.Tx) error {
			return proto.Unmarshal(tx.Bucket(bucketServices).Get([]byte("svc")), &rec)
		})
		if err != nil {
			t.Fatal(err)
		}
		return rec.GetMetrics()["ledgers"] == "42" && rec.GetStatus() == degraded, rec.String()
	})
}

func TestDBIsOwnedByOneServer(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	a, err := New(Options{DBPath: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.DB() == nil {
		t.Fatal("DB() is nil with persistence")
	}
	start := time.Now()
	if _, err := New(Options{DBPath: dbPath}); err == nil {
		t.Fatal("a second server opened a database in use")
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("opening a locked database hung")
	}
	mem, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mem.DB() != nil {
		t.Fatal("DB() without persistence is not nil")
	}
	mem.Close()
}

// Registrations, heartbeats, unregistrations and flushes racing each other: after Close the
// database holds exactly what memory held (no resurrected or stale records).
func TestConcurrentChangesPersistConsistently(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	opts := Options{DBPath: dbPath, FlushInterval: time.Millisecond, HistoryMaxSamples: 3}
	r := start(t, opts)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				id := "svc-" + strconv.Itoa((w*7+i)%10)
				switch i % 4 {
				case 0, 2:
					_, _ = r.cp.RegisterComponent(ctxT(t), &flowctlv1.RegisterRequest{ComponentId: id, Component: &flowctlv1.ComponentInfo{Name: strconv.Itoa(i)}})
				case 1:
					_, _ = r.cp.Heartbeat(ctxT(t), &flowctlv1.HeartbeatRequest{ServiceId: id, Status: degraded, Metrics: map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)}})
				case 3:
					_, _ = r.cp.UnregisterComponent(ctxT(t), &flowctlv1.UnregisterRequest{ServiceId: id})
				}
			}
		}()
	}
	wg.Wait()
	want := r.srv.Services()
	r.stop(t)

	r2 := start(t, opts)
	got := r2.srv.Services()
	if len(got) != len(want) {
		t.Fatalf("%d services after restart, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("after restart:\n got %v\nwant %v", got[i], want[i])
		}
	}
}
