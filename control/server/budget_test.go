package server

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/bbolt"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// bombMetrics is a ~60 KB heartbeat whose every value changes with n (the probe's bomb: 60
// metrics of 1 KB; the race detector makes a thousand small ones too slow for make test).
func bombMetrics(n int) map[string]string {
	m := make(map[string]string, len(bombKeys))
	for k, key := range bombKeys {
		m[key] = bombValue(n*len(bombKeys) + k)
	}
	return m
}

// bombValue is v in decimal, zero-padded to 1,000 digits.
func bombValue(v int) string {
	d := strconv.Itoa(v)
	return bombZeros[:1000-len(d)] + d
}

var bombZeros = strings.Repeat("0", 1000)

var bombKeys = func() []string {
	k := make([]string, 60)
	for i := range k {
		k[i] = fmt.Sprintf("metric.%06d", i)
	}
	return k
}()

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// The probe's bomb, 4,500 heartbeats of ~60 KB of changing metrics (it took a server from
// 137 to 681 MB of RSS and its database to 270 MB; 1,500 under the race detector, still 15
// times the budget), spread over 4 services: the accounted
// history stays within the total budget and each service's within its own, the history file
// stays within the total budget after every flush (compacted when it outgrows it), the
// oldest samples go first across services, and a restart loads what was kept.
func TestHistoryByteBudget(t *testing.T) {
	const (
		perService = 2 << 20
		total      = 6 << 20
		services   = 4
	)
	beats := 4500
	if raceEnabled {
		beats = 1500
	}
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	clock := newFakeClock()
	opts := Options{DBPath: dbPath, Now: clock.Now, FlushInterval: time.Hour, JanitorInterval: time.Hour,
		HeartbeatTTL: time.Hour, HistoryMaxBytes: perService, HistoryTotalBytes: total, noSync: true}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	srv, err := New(opts)
	opts.Registerer = nil
	must(t, "New", err)
	ctx := ctxT(t)
	for i := range services {
		id := fmt.Sprintf("bomb-%d", i)
		_, err := srv.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: id, Component: &flowctlv1.ComponentInfo{Name: id}})
		must(t, "register", err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var maxFile, maxAccounted int64
	for n := range beats {
		id := fmt.Sprintf("bomb-%d", n%services)
		clock.Advance(time.Second)
		_, err := srv.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: id, Status: healthy, Metrics: bombMetrics(n)})
		must(t, "heartbeat", err)
		if got := srv.HistoryBytes(); got > total {
			t.Fatalf("heartbeat %d: %d bytes of history accounted, over the total budget %d", n, got, total)
		}
		maxAccounted = max(maxAccounted, srv.HistoryBytes())
		if n%10 == 9 { // 600 KB between flushes
			must(t, "flush", srv.Flush())
			size := fileSize(t, HistoryDBPath(dbPath))
			if size > total {
				t.Fatalf("heartbeat %d: the history file is %d bytes, over the budget %d", n, size, total)
			}
			maxFile = max(maxFile, size)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d heartbeats of ~60 KB over %d services: history accounted at most %.1f MiB, history file at most %.1f MiB (budget %.0f MiB, %v compactions), database %.2f MiB, heap in use %+.1f MiB",
		beats, services, float64(maxAccounted)/(1<<20), float64(maxFile)/(1<<20), float64(total)/(1<<20),
		counterValue(t, srv.compactions), float64(fileSize(t, dbPath))/(1<<20), (float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20))

	kept := func(s *Server) map[string][]*cdpdv1.HeartbeatSample {
		out := map[string][]*cdpdv1.HeartbeatSample{}
		for i := range services {
			id := fmt.Sprintf("bomb-%d", i)
			resp, err := s.GetHistory(ctx, &cdpdv1.GetHistoryRequest{ServiceId: id, MetricNames: []string{"metric.000000"}})
			must(t, "history", err)
			out[id] = resp.GetSamples()
		}
		return out
	}
	got := kept(srv)
	var firstMin, firstMax time.Time
	for id, samples := range got {
		if len(samples) < 5 {
			t.Fatalf("%s keeps %d samples", id, len(samples))
		}
		// The newest samples are kept, without a gap: the oldest went first.
		for j := 1; j < len(samples); j++ {
			if d := samples[j].GetTime().AsTime().Sub(samples[j-1].GetTime().AsTime()); d != services*time.Second {
				t.Fatalf("%s: a gap of %v between kept samples %d and %d", id, d, j-1, j)
			}
		}
		last := samples[len(samples)-1].GetTime().AsTime()
		if clock.Now().Sub(last) >= services*time.Second {
			t.Fatalf("%s: the newest sample (%v) is not the last heartbeat (%v)", id, last, clock.Now())
		}
		first := samples[0].GetTime().AsTime()
		if firstMin.IsZero() || first.Before(firstMin) {
			firstMin = first
		}
		if first.After(firstMax) {
			firstMax = first
		}
	}
	// Oldest first across services: every service's history starts at about the same time.
	if spread := firstMax.Sub(firstMin); spread > 3*services*time.Second {
		t.Fatalf("the oldest kept samples of the services are %v apart: the total budget did not trim oldest first", spread)
	}

	must(t, "close", srv.Close())
	srv2, err := New(opts)
	must(t, "reopen", err)
	defer srv2.Close()
	if b := srv2.HistoryBytes(); b > total || b == 0 {
		t.Fatalf("after a restart: %d bytes of history accounted (budget %d)", b, total)
	}
	for id, want := range kept(srv2) {
		if len(want) != len(got[id]) || !want[len(want)-1].GetTime().AsTime().Equal(got[id][len(got[id])-1].GetTime().AsTime()) {
			t.Fatalf("%s after a restart: %d samples, want %d", id, len(want), len(got[id]))
		}
	}
}

// One service's budget: a service heartbeating ~60 KB keeps only its newest samples within
// HistoryMaxBytes.
func TestHistoryBudgetPerService(t *testing.T) {
	r := start(t, Options{HistoryMaxBytes: 1 << 20, HistoryTotalBytes: 64 << 20})
	register(t, r, "big", typeNone, nil)
	for n := range 100 {
		heartbeat(t, r, "big", healthy, bombMetrics(n))
	}
	if b := r.srv.HistoryBytes(); b > 1<<20 {
		t.Fatalf("%d bytes accounted for one service, over its budget", b)
	}
	samples := getHistory(t, r, &cdpdv1.GetHistoryRequest{ServiceId: "big"})
	if len(samples) < 10 || len(samples) > 17 {
		t.Fatalf("%d samples of ~60 KB kept within 1 MiB", len(samples))
	}
	if v := samples[len(samples)-1].GetMetrics()["metric.000000"]; v != bombValue(99*len(bombKeys)) {
		t.Fatalf("the newest sample is not the last heartbeat: %s", v)
	}
}

func TestHistoryBudgetLimits(t *testing.T) {
	for _, o := range []Options{
		{HistoryMaxBytes: 64 << 10},
		{HistoryTotalBytes: 128 << 10},
		{HistoryMaxBytes: 8 << 20, HistoryTotalBytes: 4 << 20},
	} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), "history") {
			t.Errorf("New(%+v): %v, want an error about the history budget", o, err)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	must(t, "reading a counter", c.Write(&m))
	return m.GetCounter().GetValue()
}

// A database written before the history had a file of its own (its history buckets in the
// main file, which the probe's bomb had grown to 270 MB): opening it moves the history to the
// history file and compacts the main file.
func TestLegacyHistoryMoved(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	must(t, "open", err)
	h := newHistory("old")
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucket(bucketServices); err != nil {
			return err
		}
		hb, err := tx.CreateBucket(bucketHistory)
		if err != nil {
			return err
		}
		bb, err := tx.CreateBucket(bucketHistoryBase)
		if err != nil {
			return err
		}
		b, err := hb.CreateBucket([]byte("old"))
		if err != nil {
			return err
		}
		for n := range 300 { // 18 MB, of which the budget keeps the newest
			h.add(int64(n+1)*int64(time.Second), healthy, bombMetrics(n), 1<<20, 1<<40)
			if err := b.Put(timeKey(h.at(h.n-1).t), h.encodeSample(h.at(h.n-1))); err != nil {
				return err
			}
		}
		return bb.Put([]byte("old"), h.encodeBase())
	})
	must(t, "writing an old-format database", err)
	must(t, "close", db.Close())
	before := fileSize(t, dbPath)

	srv, err := New(Options{DBPath: dbPath, HistoryMaxBytes: 2 << 20, HistoryTotalBytes: 8 << 20, noSync: true})
	must(t, "opening an old-format database", err)
	resp, err := srv.GetHistory(ctxT(t), &cdpdv1.GetHistoryRequest{ServiceId: "old", MetricNames: []string{"metric.000000"}})
	must(t, "history after the move", err)
	samples := resp.GetSamples()
	if len(samples) == 0 || samples[len(samples)-1].GetMetrics()["metric.000000"] != bombValue(299*len(bombKeys)) {
		t.Fatalf("the moved history lost its newest samples: %d samples", len(samples))
	}
	if srv.HistoryBytes() > 2<<20 {
		t.Fatalf("%d bytes of history loaded, over the service's budget", srv.HistoryBytes())
	}
	must(t, "close", srv.Close())
	after := fileSize(t, dbPath)
	if after > 1<<20 || after*8 > before {
		t.Fatalf("the main database is %d bytes after the move (%d before): not compacted", after, before)
	}
	if hs := fileSize(t, HistoryDBPath(dbPath)); hs > 8<<20 {
		t.Fatalf("the history file is %d bytes, over the budget", hs)
	}
	db, err = bbolt.Open(dbPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	must(t, "open", err)
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketHistory) != nil || tx.Bucket(bucketHistoryBase) != nil {
			t.Error("the main database still has history buckets")
		}
		return nil
	})
	t.Logf("main database %.1f MiB -> %.2f MiB, %d samples moved to %s", float64(before)/(1<<20), float64(after)/(1<<20), len(samples), filepath.Base(HistoryDBPath(dbPath)))
}
