package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func TestResolveShard(t *testing.T) {
	host := func(name string) func() (string, error) {
		return func() (string, error) { return name, nil }
	}
	for _, tc := range []struct {
		count   int
		index   string
		env     map[string]string
		host    func() (string, error)
		want    shard.Spec
		wantErr string
	}{
		{count: 1, index: "0", want: shard.Spec{Index: 0, Count: 1}},
		{count: 3, index: " 2 ", want: shard.Spec{Index: 2, Count: 3}},
		{count: 3, index: "3", wantErr: "shard index 3 is out of range for 3 shard(s)"},
		{count: 3, index: "-1", wantErr: "out of range"},
		{count: 3, index: "two", wantErr: `--shard-index must be a number or auto, got "two"`},
		{count: 3, index: "auto", env: map[string]string{EnvPodIndex: "2"}, host: host("x"), want: shard.Spec{Index: 2, Count: 3}},
		{count: 3, index: "AUTO", host: host("cdpd-1"), want: shard.Spec{Index: 1, Count: 3}},
		{count: 4, index: "auto", host: host("cdpd-fleet-eu-3"), want: shard.Spec{Index: 3, Count: 4}},
		// The downward API's label wins over the host name.
		{count: 4, index: "auto", env: map[string]string{EnvPodIndex: "0"}, host: host("cdpd-3"), want: shard.Spec{Index: 0, Count: 4}},
		{count: 3, index: "auto", env: map[string]string{EnvPodIndex: "5"}, host: host("cdpd-5"), wantErr: "(POD_INDEX=5): shard index 5 is out of range for 3 shard(s) (0 .. 2); is --shard-count (3) the StatefulSet's replicas?"},
		{count: 3, index: "auto", env: map[string]string{EnvPodIndex: "one"}, wantErr: `POD_INDEX="one" is not a number`},
		{count: 3, index: "auto", host: host("laptop"), wantErr: `the host name "laptop" does not end in -<index>`},
		{count: 3, index: "auto", host: host("cdpd-"), wantErr: "does not end in -<index>"},
		{count: 3, index: "auto", host: func() (string, error) { return "", errors.New("no uname") }, wantErr: "the host name is unknown: no uname"},
	} {
		name := fmt.Sprintf("%d/%s/%v", tc.count, tc.index, tc.env)
		got, err := resolveShard(tc.count, tc.index, func(k string) string { return tc.env[k] }, tc.host)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, tc.want)
		}
	}
}

func TestShardSettings(t *testing.T) {
	c, err := parseFlags(nil, []string{"CDPD_CONFIG_DIR=c", "CDPD_SHARD_COUNT=4", "CDPD_SHARD_INDEX=auto", EnvPodIndex + "=3"})
	if err != nil || c.Shard != (shard.Spec{Index: 3, Count: 4}) {
		t.Fatalf("from the environment: %v, %v", c.Shard, err)
	}
	c, err = parseFlags([]string{"--config-dir", "c", "--shard-count", "2", "--shard-index", "1"}, nil)
	if err != nil || c.Shard != (shard.Spec{Index: 1, Count: 2}) {
		t.Fatalf("from flags: %v, %v", c.Shard, err)
	}
	if _, err := parseFlags([]string{"--config-dir", "c", "--shard-count", "0"}, nil); err == nil || !strings.Contains(err.Error(), "--shard-count must be at least 1") {
		t.Errorf("--shard-count 0: %v", err)
	}
	if _, err := parseFlags([]string{"--config-dir", "c", "--shard-count", "2", "--shard-index", "2"}, nil); err == nil {
		t.Error("--shard-index 2 of 2 is accepted")
	}
}

// namesByShard returns n pipeline names, each with the shard that owns it among count.
func namesByShard(n, count int) map[string]int {
	out := map[string]int{}
	for i := 0; len(out) < n; i++ {
		name := fmt.Sprintf("p%02d", i)
		out[name] = shard.Of(name, count)
	}
	return out
}

// A sharded daemon runs exactly the pipelines of its shard; the API lists the others with the
// shard that runs them, and a removed file leaves the listing.
func TestShardedDaemonRunsOnlyItsShard(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	const count, me = 3, 1
	conf := t.TempDir()
	names := namesByShard(9, count)
	mine := 0
	for name, k := range names {
		if k == me {
			mine++
		}
		writeAtomic(t, filepath.Join(conf, name+".yaml"), pipelineYAML(name, ds.Dir, ds.First, ds.First))
	}
	if mine == 0 || mine == len(names) {
		t.Fatalf("test names put %d of %d pipelines on shard %d; want some but not all", mine, len(names), me)
	}
	base, stop := runDaemon(t, Config{ConfigDir: conf, Instance: "replica-1", Shard: shard.Spec{Index: me, Count: count}})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	list := func() map[string]PipelineStatus {
		_, body := get(base + "/api/v1/pipelines")
		var ps []PipelineStatus
		if err := json.Unmarshal([]byte(body), &ps); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		out := map[string]PipelineStatus{}
		for _, p := range ps {
			out[p.Name] = p
		}
		return out
	}
	testutil.EventuallyWhy(t, 30*time.Second, "own pipelines completed", func() (bool, string) {
		for name, p := range list() {
			if names[name] == me && p.Status != "completed" {
				return false, name + " " + p.Status
			}
		}
		return true, ""
	})
	got := list()
	if len(got) != len(names) {
		t.Fatalf("API lists %d pipelines, the directory has %d", len(got), len(names))
	}
	for name, k := range names {
		p := got[name]
		if p.AssignedShard == nil || *p.AssignedShard != k {
			t.Errorf("%s: assigned_shard %v, want %d", name, p.AssignedShard, k)
		}
		// A fleet's service ids are not prefixed by the replica's --instance.
		if p.ServiceID != "cdp-"+name {
			t.Errorf("%s: service id %q", name, p.ServiceID)
		}
		if k != me && (p.Status != StatusOtherShard || p.CurrentLedger != 0 || p.Generation != 0) {
			t.Errorf("%s (shard %d): %+v, want status %s and never started", name, k, p, StatusOtherShard)
		}
		if k == me && p.CurrentLedger != ds.First {
			t.Errorf("%s (mine): current ledger %d, want %d", name, p.CurrentLedger, ds.First)
		}
		// A bounded pipeline's progress, in the API and under the metric names flowctl reads.
		if k == me && (p.Progress == nil || p.Progress.DoneLedgers != 1 || p.Progress.TotalLedgers != 1 ||
			p.Metrics[contract.MetricProgressDone] != 1 || p.Metrics[contract.MetricProgressTotal] != 1 ||
			p.Metrics[contract.MetricProgressETA] != 0) {
			t.Errorf("%s (mine, completed): progress %+v, metrics %v", name, p.Progress, p.Metrics)
		}
	}
	// A foreign pipeline's file is removed: it leaves the listing; a new one appears.
	var foreign string
	for name, k := range names {
		if k != me && (foreign == "" || name < foreign) {
			foreign = name
		}
	}
	if err := os.Remove(filepath.Join(conf, foreign+".yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWhy(t, 10*time.Second, "removed foreign pipeline leaves the API", func() (bool, string) {
		_, ok := list()[foreign]
		return !ok, foreign + " still listed"
	})
}

func TestShardsCommand(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	names := namesByShard(12, 4)
	for name := range names {
		writeAtomic(t, filepath.Join(conf, name+".yaml"), pipelineYAML(name, ds.Dir, ds.First, ds.First))
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"shards", "--json", "--shard-count", "4", "--from", "3", conf}, &out, &errOut); code != 0 {
		t.Fatalf("shards: exit %d: %s", code, errOut.String())
	}
	var rep shardsReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.ShardCount != 4 || rep.From != 3 || len(rep.Pipelines) != len(names) {
		t.Fatalf("report %+v", rep)
	}
	var wantMoves []string
	for _, a := range rep.Pipelines {
		if a.Shard != names[a.Name] || a.From == nil || *a.From != shard.Of(a.Name, 3) {
			t.Errorf("%s: shard %d from %v, want %d from %d", a.Name, a.Shard, a.From, names[a.Name], shard.Of(a.Name, 3))
		}
		if *a.From != a.Shard {
			if a.Shard != 3 {
				t.Errorf("%s moves to %d, not to the new shard 3", a.Name, a.Shard)
			}
			wantMoves = append(wantMoves, fmt.Sprintf("%s %d->%d", a.Name, *a.From, a.Shard))
		}
	}
	sort.Strings(wantMoves)
	sort.Strings(rep.Moves)
	if strings.Join(rep.Moves, ",") != strings.Join(wantMoves, ",") {
		t.Errorf("moves %v, want %v", rep.Moves, wantMoves)
	}

	// Text: a table and one line per shard; validate prints the same grouping.
	out.Reset()
	if code := Main([]string{"shards", conf, "--shard-count", "4"}, &out, &errOut); code != 0 {
		t.Fatalf("shards text: exit %d: %s", code, errOut.String())
	}
	var validate bytes.Buffer
	if code := Main([]string{"validate", "--shard-count", "4", conf}, &validate, &errOut); code != 0 {
		t.Fatalf("validate --shard-count: exit %d: %s", code, errOut.String())
	}
	for k := 0; k < 4; k++ {
		var ns []string
		for name, s := range names {
			if s == k {
				ns = append(ns, name)
			}
		}
		sort.Strings(ns)
		line := fmt.Sprintf("shard %d (%d): %s\n", k, len(ns), strings.Join(ns, ", "))
		if !strings.Contains(out.String(), line) || !strings.Contains(validate.String(), line) {
			t.Errorf("missing %q in\nshards:\n%s\nvalidate:\n%s", line, out.String(), validate.String())
		}
	}
	if !strings.HasPrefix(out.String(), "SHARD  PIPELINE  FILE\n") {
		t.Errorf("shards table header: %q", out.String())
	}
	if code := Main([]string{"shards", conf, "--shard-count", "0"}, &out, &errOut); code != 2 {
		t.Errorf("--shard-count 0 exited %d, want 2", code)
	}
}
