package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer/consumertest"
	"github.com/withobsrvr/cdpd/host/ledger"
	ttu "github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := redistest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test Redis:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var bg = context.Background()

func testLedger(t testing.TB, seq uint32) *ledger.Ledger { return consumertest.Ledger(t, seq) }

// rec is a test record.
type rec struct {
	Ledger uint32 `json:"ledger_sequence"`
	Index  int    `json:"index"`
	Value  string `json:"value"`
}

func (r rec) RecordKind() string { return "test_rows" }
func (r rec) NaturalKey() string { return fmt.Sprintf("testnet:%d:%d", r.Ledger, r.Index) }

func recs(seq uint32, n int, value string) []component.Record {
	out := make([]component.Record, n)
	for i := range out {
		out[i] = rec{Ledger: seq, Index: i, Value: value}
	}
	return out
}

// env is a component environment of pipeline p with its own registry.
func env(p string) component.Env {
	return component.Env{Pipeline: p, Name: "SaveToRedis", Metrics: prometheus.NewRegistry(), Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

func startSink[C any](t *testing.T, ctor func(*C, component.Env) (component.Consumer, error), cfg map[string]any, e component.Env) *Sink {
	t.Helper()
	c, err := component.Construct(ctor, cfg, e)
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*Sink)
	if err := s.Start(bg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(bg) })
	return s
}

// sharedRedis is the package's shared server, emptied for the test (tests do not run in
// parallel; -count=N reruns start clean).
func sharedRedis(t testing.TB) *redistest.Server {
	t.Helper()
	srv := redistest.Shared(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	defer c.Close()
	if err := c.FlushAll(bg).Err(); err != nil {
		t.Fatal(err)
	}
	return srv
}

func client(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func position(t *testing.T, s *Sink) (uint32, bool) {
	t.Helper()
	p, ok, err := s.Position(bg)
	if err != nil {
		t.Fatal(err)
	}
	return p, ok
}

// SaveToRedis stores each record's JSON under <prefix><kind>:<natural key> with ttl_hours, and
// the cursor with it; a replay at or below the cursor is skipped, a new sink resumes there.
func TestSaveToRedisRecordsCursorReplay(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	cfg := map[string]any{"redis_address": srv.Addr(), "key_prefix": "t1:"}
	e := env("p1")
	s := startSink(t, NewSaveToRedis, cfg, e)
	if _, ok := position(t, s); ok {
		t.Fatal("a fresh sink has a position")
	}
	for seq := uint32(100); seq <= 102; seq++ {
		if err := s.Consume(bg, testLedger(t, seq), recs(seq, 3, "a")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Get(bg, "t1:test_rows:testnet:101:2").Result()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(rec{Ledger: 101, Index: 2, Value: "a"})
	if got != string(want) {
		t.Fatalf("stored %s, want %s", got, want)
	}
	if ttl := c.TTL(bg, "t1:test_rows:testnet:101:2").Val(); ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("TTL %s, want 24h (ttl_hours default)", ttl)
	}
	if n := len(c.Keys(bg, "t1:test_rows:*").Val()); n != 9 {
		t.Fatalf("%d record keys, want 9", n)
	}
	if v := c.HGet(bg, "cdpd_cursors", "p1/SaveToRedis").Val(); v != "102" {
		t.Fatalf("cursor %q, want 102", v)
	}
	if p, ok := position(t, s); !ok || p != 102 {
		t.Fatalf("Position = %d, %v; want 102", p, ok)
	}
	// A replay of 101 with other values is skipped: the data of a ledger the cursor holds stays.
	if err := s.Consume(bg, testLedger(t, 101), recs(101, 3, "replayed")); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(bg, "t1:test_rows:testnet:101:0").Val(); strings.Contains(got, "replayed") {
		t.Fatalf("a replay below the cursor was written: %s", got)
	}
	st := s.Stats()
	if st["records_written"] != 9 || st["ledgers_written"] != 3 || st["ledgers_skipped"] != 1 || st["last_ledger"] != 102 {
		t.Fatalf("stats %v", st)
	}
	if v := testutil.ToFloat64(s.metrics.Records); v != 9 {
		t.Fatalf("records metric %v, want 9", v)
	}
	n, err := testutil.GatherAndCount(e.Metrics, "cdp_pipeline_consumer_records_written_total")
	if err != nil || n != 1 {
		t.Fatalf("gathered %d series of cdp_pipeline_consumer_records_written_total (%v), want 1", n, err)
	}
	if err := s.Close(bg); err != nil {
		t.Fatal(err)
	}
	// A new incarnation resumes after the cursor.
	s2 := startSink(t, NewSaveToRedis, cfg, env("p1"))
	if p, ok := position(t, s2); !ok || p != 102 {
		t.Fatalf("a new sink's Position = %d, %v; want 102", p, ok)
	}
	if err := s2.Consume(bg, testLedger(t, 102), recs(102, 1, "replayed")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Consume(bg, testLedger(t, 103), recs(103, 1, "b")); err != nil {
		t.Fatal(err)
	}
	if s2.Stats()["ledgers_skipped"] != 1 || c.HGet(bg, "cdpd_cursors", "p1/SaveToRedis").Val() != "103" {
		t.Fatalf("after resume: stats %v, cursor %s", s2.Stats(), c.HGet(bg, "cdpd_cursors", "p1/SaveToRedis").Val())
	}
	// Another pipeline has its own cursor field.
	s3 := startSink(t, NewSaveToRedis, cfg, env("p2"))
	if _, ok := position(t, s3); ok {
		t.Fatal("pipeline p2 sees p1's cursor")
	}
}

// ttl_hours: 0 keeps keys forever (upstream expired them at once); redis_url and redis_db
// select the database.
func TestSaveToRedisNoTTLAndURL(t *testing.T) {
	srv := sharedRedis(t)
	s := startSink(t, NewSaveToRedis, map[string]any{"redis_url": srv.URL(5), "key_prefix": "t2:", "ttl_hours": 0}, env("t2"))
	if err := s.Consume(bg, testLedger(t, 7), recs(7, 1, "x")); err != nil {
		t.Fatal(err)
	}
	c5 := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 5, DisableIdentity: true})
	defer c5.Close()
	if ttl := c5.TTL(bg, "t2:test_rows:testnet:7:0").Val(); ttl != -1 {
		t.Fatalf("TTL %v, want none (-1)", ttl)
	}
	if c5.HGet(bg, "cdpd_cursors", "t2/SaveToRedis").Val() != "7" {
		t.Fatal("the cursor is not in the data's database")
	}
}

// While Redis is down Consume retries (health says so) and completes once it is back; the
// ledger lands once.
func TestSaveToRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	s := startSink(t, NewSaveToRedis, map[string]any{"redis_address": srv.Addr(), "key_prefix": "t3:", "max_retry_wait": "200ms"}, env("t3"))
	if err := s.Consume(bg, testLedger(t, 1), recs(1, 2, "a")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Consume(bg, testLedger(t, 2), recs(2, 2, "b")) }()
	ttu.Eventually(t, 30*time.Second, "health reports the outage", func() bool {
		return strings.HasPrefix(s.Health(), "redis unreachable") && s.Stats()["retries"] >= 1
	})
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Consume after the outage: %v", err)
	}
	if h := s.Health(); h != "" {
		t.Fatalf("health after recovery %q", h)
	}
	c := client(t, srv)
	if n := len(c.Keys(bg, "t3:test_rows:testnet:2:*").Val()); n != 2 {
		t.Fatalf("ledger 2: %d keys, want 2", n)
	}
	if p, _ := position(t, s); p != 2 {
		t.Fatalf("cursor %d, want 2", p)
	}
}

// A cancelled context ends the retries with an error.
func TestSaveToRedisGivesUpOnCancel(t *testing.T) {
	srv := redistest.Start(t)
	s := startSink(t, NewSaveToRedis, map[string]any{"redis_address": srv.Addr(), "max_retry_wait": "50ms"}, env("t4"))
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- s.Consume(ctx, testLedger(t, 1), recs(1, 1, "a")) }()
	ttu.Eventually(t, 30*time.Second, "a retry", func() bool { return s.Stats()["retries"] >= 1 })
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Consume after cancel: %v", err)
	}
}

// An error Redis answers inside the transaction (a key of another type) fails the ledger and
// leaves the cursor where it was.
func TestWrongTypeKeepsCursor(t *testing.T) {
	srv := sharedRedis(t)
	c := client(t, srv)
	s := startSink(t, NewSavePaymentsToRedis, map[string]any{"redis_address": srv.Addr(), "key_prefix": "t5:"}, env("t5"))
	pay := func(seq uint32, src string) []component.Record {
		return []component.Record{appPayment{Source: src, Destination: "GDST", Ledger: seq, OperationID: int64(seq) << 12, AssetCode: "native", Amount: "1.0000000", Type: "payment"}}
	}
	if err := s.Consume(bg, testLedger(t, 10), pay(10, "GA")); err != nil {
		t.Fatal(err)
	}
	c.LPush(bg, "t5:source:GB", "x") // the source index of the next payment is a list
	err := s.Consume(bg, testLedger(t, 11), pay(11, "GB"))
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Consume over a list key: %v, want WRONGTYPE", err)
	}
	if v := c.HGet(bg, "cdpd_cursors", "t5/SaveToRedis").Val(); v != "10" {
		t.Fatalf("cursor %q after the failed ledger, want 10", v)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "redis_address (or redis_url) is required"},
		{map[string]any{"redis_url": "redis://h:6379", "redis_address": "h:1"}, "not both"},
		{map[string]any{"redis_url": "http://:s3cret@h/0"}, "redis_url is invalid"},
		{map[string]any{"redis_url": "redis://:s3cret@h:6379/x"}, "redis_url is invalid"},
		{map[string]any{"redis_address": "h:1", "ttl_hours": -1}, "ttl_hours"},
		{map[string]any{"redis_address": "h:1", "cursor_key": ""}, "cursor_key"},
	} {
		_, err := component.Construct(NewSaveToRedis, tt.cfg, env("cfg"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.cfg, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error quotes the password: %v", tt.cfg, err)
		}
	}
	if _, err := component.Construct(NewSavePaymentsToRedis, map[string]any{"connection_string": "redis://h:1/0", "redis_url": "redis://h:1/0"}, env("cfg")); err == nil {
		t.Error("connection_string with redis_url accepted")
	}
}
