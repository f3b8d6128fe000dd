package server

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// One client cannot fill the registry: beyond MaxServicesPerClient its new ids are refused
// while another client still registers; its own ids re-register, and unregistering (or
// expiring) makes room again.
func TestRegistrationLimitPerClient(t *testing.T) {
	needSecondLoopback(t)
	r := start(t, Options{MaxServices: 100, MaxServicesPerClient: 3})
	junk := client{name: "junk", cp: r.cp}
	for i := range 3 {
		_, err := junk.register(t, fmt.Sprintf("junk-%d", i), typeNone)
		must(t, "register", err)
	}
	_, err := junk.register(t, "junk-3", typeNone)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "addr:127.0.0.1") {
		t.Fatalf("a 4th service of one client: %v, want ResourceExhausted naming the client", err)
	}
	_, err = junk.register(t, "junk-1", typeNone)
	must(t, "re-registering an own id at the limit", err)
	other := client{name: "other", cp: dialFrom(t, r.addr, "127.0.0.2", insecureCreds())}
	for i := range 3 {
		_, err := other.register(t, fmt.Sprintf("other-%d", i), typeNone)
		must(t, "another client registering", err)
	}
	must(t, "unregister", junk.unregister(t, "junk-0"))
	_, err = junk.register(t, "junk-3", typeNone)
	must(t, "registering after an unregistration", err)
}

// A service silent for longer than ServiceExpiry is removed with its history, from memory
// and from the database, and observers hear of it; a live one stays. Its slot of the
// per-client limit is free again.
func TestSilentServicesExpire(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "flowctl.db")
	clock := newFakeClock()
	opts := Options{DBPath: dbPath, Now: clock.Now, HeartbeatTTL: 30 * time.Second, JanitorInterval: time.Hour,
		ServiceExpiry: 2 * time.Hour, MaxServicesPerClient: 2}
	srv, err := New(opts)
	must(t, "New", err)
	var events eventLog
	srv.AddObserver(events.add)
	r := serveExisting(t, srv, nil, insecureCreds())
	c := client{name: "c", cp: r.cp}
	for _, id := range []string{"silent", "alive"} {
		_, err := c.register(t, id, typeNone)
		must(t, "register", err)
		must(t, "heartbeat", c.heartbeat(t, id, map[string]string{"n": "1"}))
	}
	must(t, "flush", srv.Flush())
	for range 4 { // 2 h, "alive" heartbeating every 30 min
		clock.Advance(30 * time.Minute)
		must(t, "heartbeat", c.heartbeat(t, "alive", map[string]string{"n": "2"}))
		srv.Sweep()
	}
	if st := getStatus(t, r, "silent").GetStatus(); st != unhealthy {
		t.Fatalf("silent for 2h (= the expiry): %v, want still listed as unhealthy", st)
	}
	events.take()
	clock.Advance(time.Second)
	srv.Sweep()
	if _, err := r.cp.GetComponentStatus(ctxT(t), &flowctlv1.ComponentStatusRequest{ServiceId: "silent"}); status.Code(err) != codes.NotFound {
		t.Fatalf("silent for longer than the expiry: %v, want NotFound", err)
	}
	if _, err := r.hist.GetHistory(ctxT(t), &cdpdv1.GetHistoryRequest{ServiceId: "silent"}); status.Code(err) != codes.NotFound {
		t.Fatalf("history of an expired service: %v, want NotFound", err)
	}
	getStatus(t, r, "alive")
	var expired []string
	for _, ev := range events.take() {
		if ev.Kind == EventExpired {
			expired = append(expired, ev.ServiceID)
		}
	}
	if strings.Join(expired, ",") != "silent" {
		t.Fatalf("expired events: %v", expired)
	}
	_, err = c.register(t, "newcomer", typeNone)
	must(t, "registering in the expired service's slot", err)
	r.stop(t)

	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	must(t, "open", err)
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketServices, bucketOwners} {
			if v := tx.Bucket(b).Get([]byte("silent")); v != nil {
				t.Errorf("bucket %s still holds the expired service", b)
			}
		}
		return nil
	})
	hdb, err := bbolt.Open(HistoryDBPath(dbPath), 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	must(t, "open the history", err)
	defer hdb.Close()
	_ = hdb.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketHistory).Bucket([]byte("silent")) != nil || tx.Bucket(bucketHistoryBase).Get([]byte("silent")) != nil {
			t.Error("the history database still holds the expired service's history")
		}
		if tx.Bucket(bucketHistory).Bucket([]byte("alive")) == nil {
			t.Error("the history database lost the live service's history")
		}
		return nil
	})
}
