package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
)

func newTestGCS(t *testing.T, cfg map[string]any) *GCS {
	t.Helper()
	full := map[string]any{"bucket_name": "bkt", "object_prefix": "payments/pubnet", "project_id": "p"}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := component.Construct(NewSaveToGCS, full, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(component.Starter).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.(*GCS)
}

// readNDJSON reads every object under the prefix through the emulator: each line must decode
// into an allTypes of a ledger inside the object's range. It returns the records (the JSON of
// each line, by natural key, failing on a line seen twice) and the object names.
func readNDJSON(t *testing.T, srv *fakestorage.Server) (map[string]string, []string) {
	t.Helper()
	lines := map[string]string{}
	var names []string
	for name, b := range gcsemu.Objects(t, srv, "bkt", "payments/pubnet/") {
		names = append(names, name)
		m := ndjsonNameRE.FindStringSubmatch(path.Base(name))
		if m == nil {
			t.Errorf("object %s: unexpected name", name)
			continue
		}
		first, _ := strconv.ParseUint(m[1], 10, 32)
		last, _ := strconv.ParseUint(m[2], 10, 32)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var r allTypes
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("object %s: line %q: %v", name, sc.Text(), err)
			}
			if uint64(r.Ledger) < first || uint64(r.Ledger) > last {
				t.Errorf("object %s holds a record of ledger %d", name, r.Ledger)
			}
			if _, dup := lines[r.NaturalKey()]; dup {
				t.Errorf("record %s written twice", r.NaturalKey())
			}
			lines[r.NaturalKey()] = sc.Text()
		}
	}
	sort.Strings(names)
	return lines, names
}

func wantLines(t *testing.T, recs []component.Record) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out[r.NaturalKey()] = string(b)
	}
	return out
}

func TestGCSWritesNDJSONObjectsByLedgerRange(t *testing.T) {
	srv := gcsemu.Start(t, "bkt")
	g := newTestGCS(t, map[string]any{"buffer_size": 4000})
	want := consumeRange(t, g, 1, 30, 3)
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, names := readNDJSON(t, srv)
	if !reflect.DeepEqual(got, wantLines(t, want)) {
		t.Errorf("the objects hold %d lines, want %d (or they differ)", len(got), len(want))
	}
	if len(names) < 2 {
		t.Errorf("buffer_size 4000 made %d objects: %v", len(names), names)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "payments/pubnet/2025/07/01/00/payments-") {
			t.Errorf("object %s is not under <object_prefix>/YYYY/MM/DD/HH/", n)
		}
	}
	if st := g.Stats(); st["objects_written"] != float64(len(names)) || st["records_written"] != float64(len(want)) || g.DurableLedger() != 30 {
		t.Errorf("stats %v, durable %d", st, g.DurableLedger())
	}
}

// A crash loses the buffered lines; the replay from the checkpoint skips the ledgers objects
// already hold and writes the rest: every record once.
func TestGCSReplayAfterCrash(t *testing.T) {
	for _, checkpoint := range []uint32{0, 7, 16} {
		t.Run(fmt.Sprint(checkpoint), func(t *testing.T) {
			srv := gcsemu.Start(t, "bkt")
			a := newTestGCS(t, map[string]any{"buffer_size": 3000})
			want := consumeRange(t, a, 1, 28, 3)
			if a.DurableLedger() < checkpoint || a.DurableLedger() == 28 {
				t.Fatalf("DurableLedger %d: the test needs one between %d and 27", a.DurableLedger(), checkpoint)
			}
			// crash: a is dropped without Close. The replay skips the ledgers its objects hold.
			_, names := readNDJSON(t, srv)
			skip := 0
			for _, n := range names {
				m := ndjsonNameRE.FindStringSubmatch(path.Base(n))
				first, _ := strconv.ParseUint(m[1], 10, 32)
				last, _ := strconv.ParseUint(m[2], 10, 32)
				if lo := max(first, uint64(checkpoint)+1); lo <= last {
					skip += int(last - lo + 1)
				}
			}
			b := newTestGCS(t, map[string]any{"buffer_size": 1000})
			consumeRange(t, b, checkpoint+1, 28, 3)
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, _ := readNDJSON(t, srv)
			if !reflect.DeepEqual(got, wantLines(t, want)) {
				t.Errorf("after the replay the objects hold %d lines, want %d (or they differ)", len(got), len(want))
			}
			if b.Stats()["ledgers_skipped"] != float64(skip) || skip == 0 {
				t.Errorf("ledgers_skipped %v, want %d (> 0)", b.Stats()["ledgers_skipped"], skip)
			}
		})
	}
}

// An object never spans two hours of ledger close time; Flush writes the buffer and the
// consumer is durable up to it.
func TestGCSHourAndFlush(t *testing.T) {
	srv := gcsemu.Start(t, "bkt")
	g := newTestGCS(t, map[string]any{"flush_interval": "3s"})
	if g.FlushInterval() != 3*time.Second {
		t.Errorf("FlushInterval %s", g.FlushInterval())
	}
	// Ledger 720 closes at 01:00:00 (consumertest.Ledger: 5 s per ledger from midnight) and
	// has no records (ConsumeRange: every fifth ledger).
	consumeRange(t, g, 716, 723, 2)
	if g.DurableLedger() != 720 {
		t.Errorf("DurableLedger %d before the flush, want 720 (the hour's object, then an empty ledger)", g.DurableLedger())
	}
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g.DurableLedger() != 723 {
		t.Errorf("DurableLedger %d after the flush, want 723", g.DurableLedger())
	}
	_, names := readNDJSON(t, srv)
	want := []string{
		"payments/pubnet/2025/07/01/00/payments-0000000716-0000000719.ndjson",
		"payments/pubnet/2025/07/01/01/payments-0000000721-0000000723.ndjson",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("objects %v, want %v", names, want)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGCSConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "bucket_name is required"},
		{map[string]any{"bucket_name": "b/p"}, "object_prefix"},
		{map[string]any{"bucket_name": "b", "object_prefix": "../x"}, "clean path"},
		{map[string]any{"bucket_name": "b", "buffer_size": 0}, "buffer_size must be positive"},
		{map[string]any{"bucket_name": "b", "flush_interval": "0s"}, "flush_interval"},
	} {
		if _, err := component.Construct(NewSaveToGCS, tc.cfg, component.Env{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	// upstream's shipped keys load; object_name (which upstream never read) is unknown.
	if _, err := component.Construct(NewSaveToGCS, map[string]any{"bucket_name": "b", "project_id": "p", "object_prefix": "x"}, component.Env{}); err != nil {
		t.Error(err)
	}
}

func TestRangeSet(t *testing.T) {
	var s rangeSet
	for _, r := range [][2]uint32{{10, 12}, {1, 3}, {20, 25}, {4, 5}, {13, 13}, {22, 30}, {40, 40}} {
		s.add(r[0], r[1])
	}
	want := rangeSet{{1, 5}, {10, 13}, {20, 30}, {40, 40}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("set %v, want %v", s, want)
	}
	for seq, in := range map[uint32]bool{0: false, 1: true, 5: true, 6: false, 9: false, 10: true, 13: true, 14: false, 30: true, 31: false, 40: true, 41: false} {
		if s.contains(seq) != in {
			t.Errorf("contains(%d) = %v", seq, !in)
		}
	}
	s.add(6, 39)
	if !reflect.DeepEqual(s, rangeSet{{1, 40}}) {
		t.Errorf("after filling the gaps: %v", s)
	}
}
