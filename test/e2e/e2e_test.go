// Package e2e holds end-to-end tests that build and start the real binaries (bin/cdpd and
// `flowctl server`) on loopback ports, with pipelines on a fixture datastore of real pubnet
// ledgers.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// ds is the fixture datastore shared by the tests (read only).
var ds *fixture.Datastore

func TestMain(m *testing.M) {
	testproc.Main(m, "e2e", func(dir string) error {
		if err := buildBinaries(dir); err != nil {
			return err
		}
		var err error
		if ds, err = fixture.Build(filepath.Join(dir, "datastore"), fixture.Options{Count: 20}); err != nil {
			return fmt.Errorf("building the fixture datastore: %w", err)
		}
		return nil
	})
}

// latestYAML is a pipeline following the datastore tip: LatestLedger -> StdoutConsumer.
func latestYAML(name string) string {
	return fmt.Sprintf(`pipeline:
  name: %s
  source:
    type: FSBufferedStorageSourceAdapter
    config:
      path: %s
      network: pubnet
      start_ledger: %d
  processors:
    - type: LatestLedger
      config: {}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, ds.Dir, fixture.Ledger58752000)
}

func registeredNames(cp *controlPlane, t testing.TB) []string {
	var out []string
	for id, c := range cp.list(t) {
		if c.GetComponent().GetMetadata()["service_type"] == "cdp-pipeline" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func wantRegistered(t *testing.T, cp *controlPlane, want ...string) {
	t.Helper()
	sort.Strings(want)
	testproc.Eventually(t, 20*time.Second, fmt.Sprintf("control plane lists %v", want), func() (bool, string) {
		got := registeredNames(cp, t)
		return strings.Join(got, ",") == strings.Join(want, ","), strings.Join(got, ",")
	})
}

// TestDaemonLifecycle walks the operator's day: three pipelines at start, a hot-add, an edit
// that restarts only its pipeline, a delete, a broken file, and SIGTERM.
func TestDaemonLifecycle(t *testing.T) {
	cp := startControlPlane(t, 0)
	conf, state := t.TempDir(), t.TempDir()
	for _, n := range []string{"alpha", "beta", "gamma"} {
		testproc.WriteFile(t, filepath.Join(conf, n+".yaml"), latestYAML(n))
	}
	d := startDaemon(t, conf, state, cp.addr)

	// Three pipelines -> three services, each with its own id, metrics and health details.
	wantRegistered(t, cp, "cdp-alpha", "cdp-beta", "cdp-gamma")
	testproc.Eventually(t, 20*time.Second, "every pipeline heartbeats metrics and health details", func() (bool, string) {
		for id, c := range cp.list(t) {
			m := c.GetMetrics()
			if m["pipeline.uptime_seconds"] == "" || m["health.pipeline_id"] == "" || m["processor.LatestLedger.processed_ledgers"] == "" {
				return false, fmt.Sprintf("%s metrics: %v", id, m)
			}
		}
		return true, ""
	})
	if n := testproc.TCPConnsTo(t, d.Pid(), cp.port); n != 1 {
		t.Errorf("cdpd holds %d connections to the control plane, want 1", n)
	}
	testproc.Eventually(t, 30*time.Second, "every pipeline reaches the datastore tip", func() (bool, string) {
		for _, p := range d.pipelines(t) {
			if p.CurrentLedger != ds.Last {
				return false, fmt.Sprintf("%s at %d, tip %d", p.Name, p.CurrentLedger, ds.Last)
			}
		}
		return true, ""
	})

	// Hot-add: a fourth file is registered and processing.
	testproc.WriteFile(t, filepath.Join(conf, "delta.yaml"), latestYAML("delta"))
	wantRegistered(t, cp, "cdp-alpha", "cdp-beta", "cdp-gamma", "cdp-delta")
	testproc.Eventually(t, 30*time.Second, "delta processes ledgers", func() (bool, string) {
		p := d.pipelines(t)["delta"]
		return p.CurrentLedger == ds.Last, fmt.Sprintf("%+v", p)
	})

	// Edit one: only it restarts; the others' generation, uptime and counters keep going.
	before := d.pipelines(t) // uptimes are fractional seconds: a continuing one grows by the edit's time
	testproc.WriteFile(t, filepath.Join(conf, "beta.yaml"), strings.Replace(latestYAML("beta"), "config: {}\n  consumers", "config: {}\n  restart: always\n  consumers", 1))
	testproc.Eventually(t, 20*time.Second, "beta's edit applied", func() (bool, string) {
		p := d.pipelines(t)["beta"]
		return p.Generation == before["beta"].Generation+1, fmt.Sprintf("generation %d", p.Generation)
	})
	after := d.pipelines(t)
	for _, n := range []string{"alpha", "gamma", "delta"} {
		b, a := before[n], after[n]
		if a.Generation != b.Generation || a.UptimeSeconds <= b.UptimeSeconds || a.Restarts != b.Restarts {
			t.Errorf("%s was disturbed by beta's edit: before %+v after %+v", n, b, a)
		}
		if a.Metrics["processor.LatestLedger.processed_ledgers"] < b.Metrics["processor.LatestLedger.processed_ledgers"] {
			t.Errorf("%s counters went back", n)
		}
	}
	if after["beta"].ConfigHash == before["beta"].ConfigHash {
		t.Errorf("beta's config hash did not change")
	}

	// Broken file: an error in the log and the API, nothing else changes.
	testproc.WriteFile(t, filepath.Join(conf, "broken.yaml"), "pipeline:\n  name: broken\n  source: [not, a, map\n")
	testproc.Eventually(t, 10*time.Second, "broken file reported", func() (bool, string) {
		_, body := testproc.HTTPGet(d.http + "/api/v1/errors")
		return strings.Contains(body, "broken.yaml"), body
	})
	if !strings.Contains(d.Output(), "broken.yaml") {
		t.Errorf("the log does not name broken.yaml")
	}
	now := d.pipelines(t)
	for _, n := range []string{"alpha", "beta", "gamma", "delta"} {
		if now[n].Generation != after[n].Generation {
			t.Errorf("broken file changed %s: generation %d -> %d", n, after[n].Generation, now[n].Generation)
		}
	}

	// Delete: drained, unregistered, gone from /metrics.
	if err := os.Remove(filepath.Join(conf, "gamma.yaml")); err != nil {
		t.Fatal(err)
	}
	wantRegistered(t, cp, "cdp-alpha", "cdp-beta", "cdp-delta")
	testproc.Eventually(t, 10*time.Second, "gamma gone from the API and /metrics", func() (bool, string) {
		_, in := d.pipelines(t)["gamma"]
		return !in && !strings.Contains(d.metrics(t), `pipeline="gamma"`), ""
	})
	if !strings.Contains(d.metrics(t), `pipeline="alpha"`) {
		t.Errorf("/metrics lacks alpha's series")
	}

	// SIGTERM: exit 0, every pipeline unregistered, checkpoints written.
	code, err := d.Stop(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("cdpd after SIGTERM: code %d, %v", code, err)
	}
	if got := registeredNames(cp, t); len(got) != 0 {
		t.Errorf("still registered after SIGTERM: %v", got)
	}
	for _, n := range []string{"alpha", "beta", "delta"} {
		if _, err := os.Stat(filepath.Join(state, "pipelines", n, "checkpoint.json")); err != nil {
			t.Errorf("no checkpoint for %s: %v", n, err)
		}
	}
}
