package source

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/support/datastore"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/fixture/s3emu"
)

// closeTimesOf reads every ledger's close time from the fixture, one ledger at a time: the
// independent answer the datastore search is checked against.
func closeTimesOf(t *testing.T, ds *fixture.Datastore) map[uint32]time.Time {
	t.Helper()
	out := map[uint32]time.Time{}
	for _, seq := range ds.Ledgers {
		raw, err := ds.RawLedger(seq)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := xdr.LedgerCloseMetaView(raw).LedgerCloseTime()
		if err != nil {
			t.Fatal(err)
		}
		out[seq] = time.Unix(ct, 0)
	}
	return out
}

// wantStart is the first held ledger closed at or after at (0: none); wantEnd the ledger
// before the first held one closed after at (0: none), i.e. the last ledger of the chain closed
// at or before at, whether or not the datastore holds it.
func wantStart(ds *fixture.Datastore, closes map[uint32]time.Time, at time.Time) uint32 {
	for _, seq := range ds.Ledgers {
		if !closes[seq].Before(at) {
			return seq
		}
	}
	return 0
}

func wantEnd(ds *fixture.Datastore, closes map[uint32]time.Time, at time.Time) uint32 {
	for _, seq := range ds.Ledgers {
		if closes[seq].After(at) {
			return seq - 1
		}
	}
	return 0
}

// startRange constructs an FS source on ds with cfg and a clock at now, starts it and returns
// its resolved range (or the Start error).
func startRange(t *testing.T, ds *fixture.Datastore, cfg map[string]any, now time.Time, stateDir string) (uint32, uint32, error) {
	t.Helper()
	env, _, _ := testEnv(t)
	env.Now, env.StateDir = func() time.Time { return now }, stateDir
	cfg["path"], cfg["network"] = ds.Dir, "pubnet"
	s := newSource(t, "FSBufferedStorageSourceAdapter", cfg, env)
	defer s.Close()
	if err := s.(component.Starter).Start(context.Background()); err != nil {
		return 0, 0, err
	}
	start, end := s.Range()
	return start, end, nil
}

// ago is the start_time_ago / end_time_ago value (seconds) naming at, seen at now.
func ago(now, at time.Time) string { return fmt.Sprint(int64(now.Sub(at) / time.Second)) }

// The datastore search names, on the fixture datastore (two runs of ledgers with a gap
// between them; 1 and 4 ledgers per file, partitions of 2 files), the ledgers a
// ledger-by-ledger scan of the close times names: at every close time, a second before and a
// second after it.
func TestCloseTimesSearch(t *testing.T) {
	for _, k := range []uint32{1, 4} {
		t.Run(fmt.Sprintf("%d per file", k), func(t *testing.T) {
			ds := buildFixture(t, fixture.Options{Count: 8, LedgersPerFile: k, FilesPerPartition: 2})
			closes := closeTimesOf(t, ds)
			ctx := context.Background()
			store, err := datastore.NewDataStore(ctx, datastore.DataStoreConfig{Type: "Filesystem",
				Params: map[string]string{"destination_path": ds.Dir}})
			if err != nil {
				t.Fatal(err)
			}
			ct := newCloseTimes(store, ds.Schema())
			latest := ds.Ledgers[len(ds.Ledgers)-1]
			checked := 0
			for _, seq := range ds.Ledgers {
				for _, d := range []time.Duration{-time.Second, 0, time.Second} {
					at := closes[seq].Add(d)
					got, closed, found, err := ct.first(ctx, at, false, latest)
					want := wantStart(ds, closes, at)
					if err != nil || found != (want != 0) || got != want || found && closed != closes[want].Unix() {
						t.Fatalf("first ledger closed at or after the close of %d %+v: %d (%d) %v %v; want %d", seq, d, got, closed, found, err, want)
					}
					got, _, found, err = ct.first(ctx, at, true, latest)
					want = wantEnd(ds, closes, at)
					if err != nil || found != (want != 0) || found && got-1 != want {
						t.Fatalf("first ledger closed after the close of %d %+v: %d %v %v; want %d", seq, d, got, found, err, want+1)
					}
					checked += 2
				}
			}
			t.Logf("%d searches checked against the scan, %d files read", checked, ct.reads)

			// A time near the tip is found near the tip: a few listings, not the ~26 of a
			// search over all 58 million sequences.
			ct = newCloseTimes(store, ds.Schema())
			if got, _, _, err := ct.first(ctx, closes[latest-2], false, latest); err != nil || got != latest-2 || ct.lists > 12 {
				t.Errorf("a ledger near the tip: %d, %v, %d listings", got, err, ct.lists)
			}
			t.Logf("a ledger near the tip: %d listings, %d files read", ct.lists, ct.reads)
		})
	}
}

// The storage sources resolve start_time_ago / end_time_ago / start_time / end_time in Start
// with that search, with upstream's combinations and cdpd's rules at the edges.
func TestTimeRangeResolves(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 4})
	closes := closeTimesOf(t, ds)
	latest := ds.Ledgers[len(ds.Ledgers)-1]
	now := closes[latest].Add(time.Hour)
	at2 := closes[58752002]
	cases := []struct {
		name       string
		cfg        map[string]any
		start, end uint32
		err        string
	}{
		{"start_time_ago at a close time", map[string]any{"start_time_ago": ago(now, at2)}, 58752002, 0, ""},
		{"start_time_ago a second later", map[string]any{"start_time_ago": ago(now, at2.Add(time.Second))}, 58752003, 0, ""},
		{"start_time (RFC 3339)", map[string]any{"start_time": at2.UTC().Format(time.RFC3339)}, 58752002, 0, ""},
		{"start_time_ago + end_time_ago", map[string]any{"start_time_ago": ago(now, closes[58752001]),
			"end_time_ago": ago(now, at2.Add(time.Second))}, 58752001, 58752002, ""},
		{"start_ledger + end_time", map[string]any{"start_ledger": 53312000, "end_time": at2.UTC().Format(time.RFC3339)}, 53312000, 58752002, ""},
		{"end_time_ago now: the newest ledger", map[string]any{"start_time_ago": "2h", "end_time_ago": "now"},
			wantStart(ds, closes, now.Add(-2*time.Hour)), latest, ""},
		{"continuous_mode follows", map[string]any{"start_time_ago": ago(now, at2), "continuous_mode": true}, 58752002, 0, ""},
		{"before the oldest ledger: the oldest", map[string]any{"start_time_ago": "3650d"}, ds.Ledgers[0], 0, ""},
		{"after the newest ledger: the next one", map[string]any{"start_time_ago": "1m"}, latest + 1, 0, ""},
		{"an end not exported yet", map[string]any{"start_ledger": 58752000, "end_time_ago": "30m"}, 0, 0, "not exported yet"},
		{"an end before the start", map[string]any{"start_ledger": 58752000, "end_time": closes[53312000].UTC().Format(time.RFC3339)}, 0, 0, "no ledgers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start, end, err := startRange(t, ds, c.cfg, now, "")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Start = %v (range %d-%d), want an error about %q", err, start, end, c.err)
				}
				return
			}
			if err != nil || start != c.start || end != c.end {
				t.Fatalf("range %d-%d, %v; want %d-%d", start, end, err, c.start, c.end)
			}
		})
	}
}

// The resolved range streams exactly its ledgers; a restart at a later time resumes on the
// range pinned in the state directory, not on a start that moved; other keys resolve again.
func TestTimeRangeStreamsAndIsPinned(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 8})
	closes := closeTimesOf(t, ds)
	now := closes[58752007].Add(10 * time.Minute)
	cfg := func() map[string]any {
		return map[string]any{"start_time_ago": ago(now, closes[58752002]), "end_time_ago": ago(now, closes[58752004])}
	}
	env, _, _ := testEnv(t)
	env.Now = func() time.Time { return now }
	s := newSource(t, "FSBufferedStorageSourceAdapter", map[string]any{"path": ds.Dir, "network": "pubnet",
		"start_time_ago": ago(now, closes[58752002]), "end_time_ago": ago(now, closes[58752004])}, env)
	checkLedgers(t, ds, runBounded(t, s, 0), seqRange(58752002, 58752004))

	state := t.TempDir()
	if start, end, err := startRange(t, ds, cfg(), now, state); err != nil || start != 58752002 || end != 58752004 {
		t.Fatalf("first start: %d-%d, %v", start, end, err)
	}
	later := now.Add(10 * time.Second) // two ledgers later: the same keys now name 58752004-58752006
	if start, end, err := startRange(t, ds, cfg(), later, ""); err != nil || start != 58752004 || end != 58752006 {
		t.Fatalf("unpinned restart later: %d-%d, %v; want the range to have moved to 58752004-58752006", start, end, err)
	}
	if start, end, err := startRange(t, ds, cfg(), later, state); err != nil || start != 58752002 || end != 58752004 {
		t.Fatalf("pinned restart later: %d-%d, %v; want 58752002-58752004", start, end, err)
	}
	c := cfg()
	c["end_time_ago"] = "now"
	if start, end, err := startRange(t, ds, c, later, state); err != nil || start != 58752004 || end != 58752007 {
		t.Fatalf("other keys: %d-%d, %v; want 58752004-58752007 resolved again", start, end, err)
	}
	if start, end, err := startRange(t, ds, c, later.Add(time.Hour), state); err != nil || start != 58752004 || end != 58752007 {
		t.Fatalf("their pin: %d-%d, %v", start, end, err)
	}
}

// With galexie's object metadata (the SDK's S3 datastore writes it, here to gofakes3) the
// search reads only the file holding the answer; without it (the fixture's filesystem
// datastore) it reads each file it probes. Both agree with the scan.
func TestCloseTimesUseObjectMetadata(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 12, LedgersPerFile: 2})
	closes := closeTimesOf(t, ds)
	srv := s3emu.Start(t, "ledgers")
	ctx := context.Background()
	s3store, err := datastore.NewDataStore(ctx, datastore.DataStoreConfig{Type: "S3", Params: map[string]string{
		"destination_bucket_path": "ledgers/pubnet", "region": "us-east-1", "endpoint_url": srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer s3store.Close()
	objs, err := ds.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for key, b := range objs {
		md := map[string]string{}
		if low, high, err := datastore.ParseRangeFromObjectKey(filepath.Base(key)); err == nil {
			md = datastore.MetaData{StartLedger: low, EndLedger: high, StartLedgerCloseTime: closes[low].Unix(),
				EndLedgerCloseTime: closes[high].Unix()}.ToMap()
		}
		if err := s3store.PutFile(ctx, key, bytes.NewReader(b), md); err != nil {
			t.Fatal(err)
		}
	}
	fsstore, err := datastore.NewDataStore(ctx, datastore.DataStoreConfig{Type: "Filesystem",
		Params: map[string]string{"destination_path": ds.Dir}})
	if err != nil {
		t.Fatal(err)
	}
	latest := ds.Ledgers[len(ds.Ledgers)-1]
	queries, fsReads := 0, 0
	for _, seq := range slices.Concat(ds.Ledgers[:2], ds.Ledgers[len(ds.Ledgers)-6:]) {
		at := closes[seq]
		queries++
		for name, store := range map[string]datastore.DataStore{"s3 with metadata": s3store, "fs": fsstore} {
			ct := newCloseTimes(store, ds.Schema())
			got, closed, found, err := ct.first(ctx, at, false, latest)
			if err != nil || !found || got != seq || closed != at.Unix() {
				t.Fatalf("%s: first at the close of %d: %d (%d) %v %v", name, seq, got, closed, found, err)
			}
			if name == "fs" {
				fsReads += ct.reads
			} else if ct.reads != 1 {
				t.Errorf("%s: %d files read, want 1 (the one holding the answer)", name, ct.reads)
			}
		}
	}
	if fsReads <= queries {
		t.Errorf("without metadata %d files read for %d searches: the metadata made no difference to check", fsReads, queries)
	}
	t.Logf("%d searches: %d files read with metadata, %d without", queries, queries, fsReads)
}
