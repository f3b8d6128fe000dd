package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// Pipeline faults (issue 9 part 2). One cdpd, one control plane, six pipelines on datastores
// that an appender grows:
//
//	steady-a, steady-b   healthy; their counters must keep advancing through everything
//	panicker             a processor that panics on every ledger after the first two
//	erring               a consumer that returns an error on every ledger after the first
//	blocker              a processor that blocks forever (ignoring cancellation) on its 2nd ledger
//	vanish               a source whose datastore directory disappears and comes back
//
// Asserted: each faulty pipeline is reported UNHEALTHY or DEGRADED in `flowctl status <id>
// --json` with its cause in the health details; the failing ones restart with a growing
// backoff; the steady ones never restart and keep advancing; removing the blocker (a hung
// drain) is cut at --drain-timeout and reported in the log, while an edit of steady-b made
// during that drain is applied promptly (well before the deadline).

// flowctlView is the part of `flowctl status <id> --json` the tests read.
type flowctlView struct {
	Status  string            `json:"status"`
	Health  map[string]string `json:"health"`
	Metrics map[string]any    `json:"metrics"`
}

func flowctlStatus(t *testing.T, cp, id string) (flowctlView, string) {
	t.Helper()
	out, code := flowctl(t, cp, "status", id, "--json")
	var v flowctlView
	if code != 0 {
		return v, fmt.Sprintf("exit %d: %s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return v, fmt.Sprintf("decoding: %v: %s", err, out)
	}
	return v, out
}

// healthText joins every health detail, for "is the cause mentioned" checks.
func (v flowctlView) healthText() string {
	var b strings.Builder
	for k, val := range v.Health {
		fmt.Fprintf(&b, "%s=%s; ", k, val)
	}
	return b.String()
}

// waitReported waits until `flowctl status <id> --json` shows one of the statuses with cause
// somewhere in its health details, and returns the view and how long that took.
func waitReported(t *testing.T, cp, pipeline string, timeout time.Duration, cause string, statuses ...string) (flowctlView, time.Duration) {
	t.Helper()
	id := control.ServiceID("", pipeline)
	start := time.Now()
	var v flowctlView
	testproc.Eventually(t, timeout, fmt.Sprintf("flowctl status %s shows %v with %q", id, statuses, cause), func() (bool, string) {
		var raw string
		v, raw = flowctlStatus(t, cp, id)
		ok := false
		for _, s := range statuses {
			ok = ok || strings.EqualFold(v.Status, s)
		}
		return ok && strings.Contains(v.healthText(), cause), raw
	})
	return v, time.Since(start)
}

// restartTimes polls a pipeline's restart count for d and returns when each restart was seen.
// It may run in its own goroutine (it never fails the test).
func restartTimes(dm *daemonProc, name string, d time.Duration) []time.Time {
	var at []time.Time
	last := -1
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		code, body := dm.Get("/api/v1/pipelines/" + name)
		var p pipelineStatus
		if code != 200 || json.Unmarshal([]byte(body), &p) != nil {
			continue
		}
		if last >= 0 && p.Restarts > last {
			for i := last; i < p.Restarts; i++ {
				at = append(at, time.Now())
			}
		}
		last = p.Restarts
	}
	return at
}

func gaps(at []time.Time) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(at); i++ {
		g = append(g, at[i].Sub(at[i-1]).Round(10*time.Millisecond))
	}
	return g
}

func TestPipelineFaults(t *testing.T) {
	const drainTimeout = 4 * time.Second
	live := newDatastore(t, 5)
	app := startAppender(t, live, appendEvery)
	vanishDS := newDatastore(t, 3)
	conf := t.TempDir()
	files := map[string]PipelineSpec{
		"steady-a": {Path: live.Dir},
		"steady-b": {Path: live.Dir},
		"panicker": {Path: live.Dir, Processors: []string{"{type: FaultInjector, config: {mode: panic, after: 2}}"}},
		"erring":   {Path: live.Dir, Consumers: []string{"{type: FaultyConsumer, config: {mode: error, after: 1}}"}},
		"blocker":  {Path: live.Dir, Processors: []string{"{type: FaultInjector, config: {mode: block, after: 1}}"}},
		"vanish":   {Path: vanishDS.Dir},
	}
	for n, s := range files {
		s.Name = n
		testproc.WriteFile(t, filepath.Join(conf, n+".yaml"), pipelineYAML(s))
	}
	cp := startControlPlane(t, CPOptions{})
	dm := startDaemon(t, DaemonOptions{ConfDir: conf, Endpoint: cp.Addr, DrainTimeout: drainTimeout,
		Args: []string{"--stuck-after", "3s"}})
	// The panicker's restarts, timed from the start (the backoff doubles from 1 s).
	restarts := make(chan []time.Time, 1)
	go func() { restarts <- restartTimes(dm, "panicker", 16*time.Second) }()
	var ids []string
	for n := range files {
		ids = append(ids, control.ServiceID("", n))
	}
	cp.WaitRegistered(t, 30*time.Second, ids...)
	before := dm.Pipelines(t)
	var table []string
	defer func() {
		t.Log("pipeline faults:")
		for _, r := range table {
			t.Log("  " + r)
		}
	}()

	// Panic and error: reported with the cause, restarted with a growing backoff.
	for _, c := range []struct{ name, cause string }{
		{"panicker", "injected panic"},
		{"erring", "injected error"},
	} {
		v, took := waitReported(t, cp.Addr, c.name, 30*time.Second, c.cause, "unhealthy", "degraded")
		table = append(table, fmt.Sprintf("%-9s reported %s after %s: last_error %q", c.name, v.Status, took.Round(100*time.Millisecond), v.Health["last_error"]))
	}
	rt := <-restarts
	g := gaps(rt)
	table = append(table, fmt.Sprintf("panicker  restarts seen %d in 16s, gaps %v", len(rt), g))
	if len(g) < 2 {
		t.Errorf("panicker: %d restarts in 16 s, want a growing series (gaps %v)", len(rt), g)
	} else if g[len(g)-1] < g[0]*3/2 {
		t.Errorf("panicker: restart gaps %v do not grow (backoff)", g)
	}
	pe, _ := dm.Pipeline(t, "erring")
	table = append(table, fmt.Sprintf("erring    restarts %d, last_error %q", pe.Restarts, pe.LastError))
	if pe.Restarts < 2 {
		t.Errorf("erring: %d restarts, want >= 2", pe.Restarts)
	}

	// Blocked forever: reported with the cause while it stays running.
	v, took := waitReported(t, cp.Addr, "blocker", 45*time.Second, "stuck: Process", "degraded", "unhealthy")
	table = append(table, fmt.Sprintf("blocker   reported %s after %s: %s", v.Status, took.Round(100*time.Millisecond), v.Health["FaultInjector_status"]))

	// The datastore directory disappears: reported; it comes back: the pipeline catches up.
	moved := vanishDS.Dir + ".away"
	if err := os.Rename(vanishDS.Dir, moved); err != nil {
		t.Fatal(err)
	}
	v, took = waitReported(t, cp.Addr, "vanish", 45*time.Second, "datastore", "degraded", "unhealthy")
	table = append(table, fmt.Sprintf("vanish    reported %s %s after the directory vanished: %s", v.Status, took.Round(100*time.Millisecond), v.healthText()))
	if err := os.Rename(moved, vanishDS.Dir); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testproc.Eventually(t, 60*time.Second, "vanish healthy again", func() (bool, string) {
		v, raw := flowctlStatus(t, cp.Addr, control.ServiceID("", "vanish"))
		return v.Status == "healthy", raw
	})
	table = append(table, fmt.Sprintf("vanish    healthy again %s after the directory came back", time.Since(back).Round(100*time.Millisecond)))
	if _, err := fixture.Append(vanishDS.Dir, 2); err != nil {
		t.Fatal(err)
	}
	testproc.Eventually(t, 30*time.Second, "vanish follows the datastore again", func() (bool, string) {
		p, _ := dm.Pipeline(t, "vanish")
		return p.CurrentLedger >= vanishDS.Last+2, fmt.Sprintf("at %d", p.CurrentLedger)
	})

	// A hung drain: remove the blocker; meanwhile edit steady-b. The edit must not wait for the
	// drain; the drain is cut at the deadline and reported.
	bGen := before["steady-b"].Generation
	if err := os.Remove(filepath.Join(conf, "blocker.yaml")); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	testproc.Eventually(t, 10*time.Second, "the blocker's removal under way", func() (bool, string) {
		p, in := dm.Pipeline(t, "blocker")
		return in && p.Status == "stopping", fmt.Sprintf("listed %v, status %q", in, p.Status)
	})
	testproc.WriteFile(t, filepath.Join(conf, "steady-b.yaml"), pipelineYAML(PipelineSpec{Name: "steady-b", Path: live.Dir, Extra: "  restart: always"}))
	edited := time.Now()
	testproc.Eventually(t, drainTimeout+10*time.Second, "steady-b's edit applied", func() (bool, string) {
		p, _ := dm.Pipeline(t, "steady-b")
		return p.Generation > bGen, fmt.Sprintf("generation %d", p.Generation)
	})
	applyTook := time.Since(edited)
	testproc.Eventually(t, drainTimeout+15*time.Second, "the blocker's drain ends", func() (bool, string) {
		_, in := dm.Pipeline(t, "blocker")
		return !in, "still listed"
	})
	drainTook := time.Since(removed)
	table = append(table, fmt.Sprintf("blocker   removed: gone after %s (drain timeout %s); steady-b's edit meanwhile applied in %s",
		drainTook.Round(100*time.Millisecond), drainTimeout, applyTook.Round(100*time.Millisecond)))
	if applyTook > drainTimeout/2 {
		t.Errorf("steady-b's edit took %s during the blocker's hung drain (drain timeout %s): reloads wait for each other", applyTook, drainTimeout)
	}
	if drainTook > drainTimeout+5*time.Second {
		t.Errorf("the hung drain took %s, want it cut at the drain timeout %s", drainTook, drainTimeout)
	}
	if !strings.Contains(logLinesOf(dm.Output(), "blocker"), "deadline") {
		t.Errorf("the cut drain is not reported in the log (no line of pipeline blocker mentions the deadline)")
	}
	cp.WaitRegistered(t, 20*time.Second, control.ServiceID("", "steady-a"), control.ServiceID("", "steady-b"),
		control.ServiceID("", "panicker"), control.ServiceID("", "erring"), control.ServiceID("", "vanish"))

	// The steady pipelines never restarted (steady-b only by its edit) and kept advancing.
	tip := app.Tip()
	testproc.Eventually(t, 30*time.Second, "steady pipelines at the tip", func() (bool, string) {
		ps := dm.Pipelines(t)
		return ps["steady-a"].CurrentLedger >= tip && ps["steady-b"].CurrentLedger >= tip,
			fmt.Sprintf("a %d b %d tip %d", ps["steady-a"].CurrentLedger, ps["steady-b"].CurrentLedger, tip)
	})
	after := dm.Pipelines(t)
	for _, n := range []string{"steady-a", "steady-b"} {
		b, a := before[n], after[n]
		table = append(table, fmt.Sprintf("%-9s ledger %d -> %d, restarts %d -> %d", n, b.CurrentLedger, a.CurrentLedger, b.Restarts, a.Restarts))
		if a.Restarts != b.Restarts {
			t.Errorf("%s restarted during the other pipelines' faults: %d -> %d (%s)", n, b.Restarts, a.Restarts, a.LastError)
		}
		if a.Health != "healthy" {
			t.Errorf("%s is %s", n, a.Health)
		}
	}
	if a := after["steady-a"]; a.Generation != before["steady-a"].Generation {
		t.Errorf("steady-a's generation changed: %d -> %d", before["steady-a"].Generation, a.Generation)
	}

	app.Stop()
	if code, err := dm.Stop(60 * time.Second); err != nil || code != 0 {
		t.Errorf("cdpd after SIGTERM: code %d, %v", code, err)
	}
}

// logLinesOf returns the JSON log lines of out whose pipeline attribute is name.
func logLinesOf(out, name string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"pipeline":"`+name+`"`) {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
