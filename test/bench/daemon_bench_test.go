package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

var (
	// scaleIdle is the number of idle pipelines of the scale benchmark.
	scaleIdle = envInt("CDPD_BENCH_IDLE", 500)
	// scaleBusyLedgers is the number of ledgers each busy pipeline processes.
	scaleBusyLedgers = envInt("CDPD_BENCH_BUSY_LEDGERS", 1000)
	// scaleIntervals is the number of heartbeat intervals the idle measurements last.
	scaleIntervals = envInt("CDPD_BENCH_INTERVALS", 5)
)

// scaleHeartbeat is the heartbeat interval of the daemon benchmarks: 1 s, ten times the
// default rate, so that a few seconds hold several intervals.
const scaleHeartbeat = time.Second

// cdpdBinary builds the real cdpd binary once per run (no race detector: it is measured).
var cdpdBin struct {
	once sync.Once
	path string
	err  error
}

func cdpdBinary(b testing.TB) string {
	b.Helper()
	cdpdBin.once.Do(func() {
		out := filepath.Join(workDir(b), "cdpd")
		t0 := time.Now()
		cmd := exec.Command("go", "build", "-o", out, "github.com/withobsrvr/cdpd/cmd/cdpd")
		if msg, err := cmd.CombinedOutput(); err != nil {
			cdpdBin.err = fmt.Errorf("building cdpd: %w\n%s", err, msg)
			return
		}
		cdpdBin.path = out
		Detail("cdpd", "built the binary in %s", time.Since(t0).Round(time.Millisecond))
	})
	if cdpdBin.err != nil {
		b.Fatal(cdpdBin.err)
	}
	return cdpdBin.path
}

// tipDatastore is a small datastore (the two real ledgers) that idle pipelines follow: they
// start after its last ledger and wait for the next file forever.
var tipDS struct {
	once sync.Once
	ds   *fixture.Datastore
	err  error
}

func tipDatastore(b testing.TB) *fixture.Datastore {
	b.Helper()
	tipDS.once.Do(func() { tipDS.ds, tipDS.err = fixture.Build(filepath.Join(workDir(b), "tip"), fixture.Options{}) })
	must(b, tipDS.err, "building the tip datastore")
	return tipDS.ds
}

// daemonProc is a running cdpd.
type daemonProc struct {
	cmd      *exec.Cmd
	pid      int
	confDir  string
	stateDir string
	http     string
	stderr   *lockedBuffer
	done     chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(b testing.TB) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err, "finding a free port")
	defer l.Close()
	return l.Addr().String()
}

// startDaemon starts cdpd on confDir (records to /dev/null, logs at warn level kept for
// failure messages) registering with the control plane at cpAddr ("" = none), and waits until
// it is ready.
func startDaemon(b testing.TB, confDir, cpAddr string) *daemonProc {
	b.Helper()
	d := &daemonProc{confDir: confDir, stateDir: b.TempDir(), http: freeAddr(b), stderr: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(cdpdBinary(b), "--config-dir", confDir, "--state-dir", d.stateDir, "--http-addr", d.http,
		"--heartbeat-interval", scaleHeartbeat.String(), "--log-level", "warn")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOWCTL_") && !strings.HasPrefix(kv, "CDPD_") {
			env = append(env, kv)
		}
	}
	if cpAddr != "" {
		env = append(env, "FLOWCTL_ENDPOINT="+cpAddr)
	}
	d.cmd.Env = env
	d.cmd.Stderr = d.stderr
	must(b, d.cmd.Start(), "starting cdpd")
	d.pid = d.cmd.Process.Pid
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	b.Cleanup(func() { d.stop(b) })
	waitFor(b, 60*time.Second, "cdpd ready", func() bool {
		resp, err := http.Get("http://" + d.http + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, d)
	return d
}

// stop ends cdpd (SIGTERM, then SIGKILL after 30 s) and waits for it; a second stop does
// nothing.
func (d *daemonProc) stop(testing.TB) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// waitFor is testutil.EventuallyWhy with what a daemon benchmark needs on top: it stops as soon
// as cdpd exits, and a failure shows the end of cdpd's stderr.
func waitFor(b testing.TB, timeout time.Duration, what string, cond func() bool, d *daemonProc) {
	b.Helper()
	if d != nil {
		defer func() {
			if b.Failed() {
				b.Logf("cdpd's stderr:\n%s", tail(d.stderr.String(), 3000))
			}
		}()
	}
	testutil.EventuallyWhy(b, timeout, what, func() (bool, string) {
		if cond() {
			return true, ""
		}
		if d != nil {
			select {
			case <-d.done:
				b.Fatalf("cdpd exited while waiting for %s", what)
			default:
			}
		}
		return false, ""
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (d *daemonProc) proc(b testing.TB) ProcSample {
	b.Helper()
	s, err := ReadProc(d.pid)
	must(b, err, "reading cdpd's /proc")
	return s
}

// writeYAML drops a pipeline file into dir the way an operator's tooling does: written under a
// dot name (ignored by the loader), then renamed into place.
func writeYAML(b testing.TB, dir, name, content string) {
	b.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	must(b, os.WriteFile(tmp, []byte(content), 0o644), "writing %s", tmp)
	must(b, os.Rename(tmp, filepath.Join(dir, name+".yaml")), "renaming %s", tmp)
}

func idleYAML(name string, tip *fixture.Datastore) string {
	return fmt.Sprintf(`pipeline:
  name: %s
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: %q, network: pubnet, start_ledger: %d}
  processors:
    - type: LatestLedger
      config: {network: pubnet}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, tip.Dir, tip.Last+1)
}

func busyYAML(name string, ds *fixture.Datastore, ledgers int) string {
	return fmt.Sprintf(`pipeline:
  name: %s
  restart: never
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: %q, network: pubnet, start_ledger: %d, end_ledger: %d}
  processors:
    - type: ContractEvent
      config: {network: pubnet}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, ds.Dir, fixture.Ledger58752000, fixture.Ledger58752000+uint32(ledgers)-1)
}

// busyRun drops n busy pipeline files into the daemon's directory at once and waits until each
// one's checkpoint reached its end_ledger; units are the ledgers processed. It also returns the
// daemon's minor page faults during the run.
func busyRun(b testing.TB, d *daemonProc, ds *fixture.Datastore, tag string, n, ledgers int) (Sample, int64) {
	b.Helper()
	cps := checkpoint.New(filepath.Join(d.stateDir, "pipelines"))
	end := fixture.Ledger58752000 + uint32(ledgers) - 1
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("busy-%s-%d", tag, i)
	}
	p0 := d.proc(b)
	s, err := Measure(func() (int64, error) {
		for _, name := range names {
			writeYAML(b, d.confDir, name, busyYAML(name, ds, ledgers))
		}
		waitFor(b, 5*time.Minute, "busy pipelines "+tag, func() bool {
			for _, name := range names {
				c, ok, err := cps.Load(name)
				if err != nil || !ok || c.Ledger < end {
					return false
				}
			}
			return true
		}, d)
		return int64(n * ledgers), nil
	})
	must(b, err, "busy run")
	p1 := d.proc(b)
	s.CPU = p1.CPU - p0.CPU // the daemon's CPU (10 ms resolution), not this process's
	for _, name := range names {
		must(b, os.Remove(filepath.Join(d.confDir, name+".yaml")), "removing %s", name)
	}
	return s, p1.MinFlt - p0.MinFlt
}

// heartbeatDelivery judges the heartbeats the control plane received from the services with
// the given ids within [from, to]: a gap of k intervals between two heartbeats (or between the
// window's edges and the first/last one) means k-1 were missed, and a silent service missed
// each of the window's whole intervals. (Counting beats against the window's length instead
// miscounts at its edges: a window of 5.01 intervals holds 4 beats of a service beating every
// interval a few milliseconds late.) It returns delivered/(delivered + missed) and the counts.
func heartbeatDelivery(beats map[string][]time.Time, ids []string, from, to time.Time, interval time.Duration) (ratio float64, got, missed int) {
	for _, id := range ids {
		prev := from
		var ts []time.Time
		for _, t := range beats[id] {
			if !t.Before(from) && !t.After(to) {
				ts = append(ts, t)
			}
		}
		gapMissed := 0
		for _, t := range append(ts, to) {
			gap := t.Sub(prev)
			// a gap up to 1.5 intervals is on time (phase and scheduling jitter).
			if k := int((gap + interval/2) / interval); k > 1 {
				gapMissed += k - 1
			}
			prev = t
		}
		if len(ts) == 0 {
			gapMissed = int(to.Sub(from) / interval)
		}
		missed += gapMissed
		got += len(ts)
	}
	if got+missed == 0 {
		return 0, 0, 0
	}
	return float64(got) / float64(got+missed), got, missed
}

// BenchmarkScale (goal 3): 500 idle pipelines (unbounded, at the tip of a small datastore) plus
// 4 busy ones in one real cdpd process with one control plane (in this process). Measures RSS
// per idle pipeline, heartbeats delivered, the daemon's CPU with only idle pipelines (with and
// without the control plane: the difference is the heartbeat path), and the busy pipelines'
// throughput next to the idle ones versus alone (A B B A, each after an uncounted first run),
// and, in a second cdpd with the same idle pipelines and no control plane, the same comparison
// once (INFO).
func BenchmarkScale(b *testing.B) {
	ds, _ := sharedDatastore(b)
	tip := tipDatastore(b)
	cp := startControlPlane(b)
	conf := b.TempDir()
	d := startDaemon(b, conf, cp.addr)
	const busy = 4
	ledgers := min(scaleBusyLedgers, benchLedgers)

	idleIDs := make([]string, scaleIdle)
	addIdle := func() time.Duration {
		t0 := time.Now()
		for i := range scaleIdle {
			name := fmt.Sprintf("idle-%03d", i)
			idleIDs[i] = control.ServiceID("", name)
			writeYAML(b, conf, name, idleYAML(name, tip))
		}
		waitFor(b, 3*time.Minute, "idle pipelines registered", func() bool {
			for _, id := range idleIDs {
				if !cp.isRegistered(id) {
					return false
				}
			}
			return true
		}, d)
		return time.Since(t0)
	}
	removeIdle := func() time.Duration {
		t0 := time.Now()
		for i := range scaleIdle {
			must(b, os.Remove(filepath.Join(conf, fmt.Sprintf("idle-%03d.yaml", i))), "removing idle %d", i)
		}
		waitFor(b, 3*time.Minute, "idle pipelines unregistered", func() bool {
			for _, id := range idleIDs {
				if cp.isRegistered(id) {
					return false
				}
			}
			return true
		}, d)
		return time.Since(t0)
	}

	// Idle pipelines first, in a fresh daemon: RSS before and after adding them, then heartbeats
	// and CPU over scaleIntervals intervals.
	time.Sleep(2 * scaleHeartbeat)
	before := d.proc(b)
	addDur := addIdle()
	time.Sleep(3 * scaleHeartbeat) // every idle pipeline heartbeated a few times, sources settled
	cp.keepBeats.Store(true)
	w0, p0 := time.Now(), d.proc(b)
	time.Sleep(time.Duration(scaleIntervals) * scaleHeartbeat)
	w1, p1 := time.Now(), d.proc(b)
	after := p1

	// Busy pipelines B A A B: next to the idle ones (heartbeats still judged), alone (idle ones
	// removed), alone, next to the idle ones again. The first busy run after each change of what
	// the daemon holds (its first ever; after the idle pipelines were removed; after they were
	// added) is not counted: it touches memory the process has not touched yet or gave back,
	// and a first touch costs a page fault (tens of microseconds each on a VM), so the runs
	// right after adding the idle pipelines paid thousands of faults the runs after removing
	// them (memory freed to reuse) did not. The detail lists every run's page faults.
	var runs []string
	run := func(d *daemonProc, tag string, counted bool) Sample {
		s, faults := busyRun(b, d, ds, tag, busy, ledgers)
		mark := ""
		if !counted {
			mark = " (not counted)"
		}
		runs = append(runs, fmt.Sprintf("%s %.0f ledger/s, %d faults%s", tag, s.Rate(), faults, mark))
		return s
	}
	run(d, "bw", false)
	with := []Sample{run(d, "b0", true)}
	w2 := time.Now()
	cp.keepBeats.Store(false)
	cp.mu.Lock()
	beats := cp.beats
	cp.beats = map[string][]time.Time{}
	cp.mu.Unlock()
	idleRatio, idleGot, idleMissed := heartbeatDelivery(beats, idleIDs, w0, w1, scaleHeartbeat)
	allRatio, allGot, allMissed := heartbeatDelivery(beats, idleIDs, w0, w2, scaleHeartbeat)
	rmDur := removeIdle()
	time.Sleep(2 * scaleHeartbeat)
	run(d, "aw", false)
	alone := []Sample{run(d, "a0", true), run(d, "a1", true)}
	addIdle()
	time.Sleep(2 * scaleHeartbeat)
	run(d, "bw1", false)
	with = append(with, run(d, "b1", true))

	// The same idle pipelines in a cdpd without a control plane: the CPU difference is the
	// heartbeat path.
	conf2 := b.TempDir()
	for i := range scaleIdle {
		name := fmt.Sprintf("idle-%03d", i)
		writeYAML(b, conf2, name, idleYAML(name, tip))
	}
	d2 := startDaemon(b, conf2, "")
	time.Sleep(3 * scaleHeartbeat)
	q0, t0 := d2.proc(b), time.Now()
	time.Sleep(time.Duration(scaleIntervals) * scaleHeartbeat)
	q1, t1 := d2.proc(b), time.Now()

	// The busy pipelines in that cdpd too, next to the idle ones and alone, each after an
	// uncounted first run: what the idle pipelines' state costs the busy ones without the
	// heartbeat path. One pair: informative, not a goal.
	run(d2, "nw", false)
	noCP := Comparison{A: []Sample{run(d2, "n1", true)}}
	for i := range scaleIdle {
		must(b, os.Remove(filepath.Join(conf2, fmt.Sprintf("idle-%03d.yaml", i))), "removing idle %d", i)
	}
	waitFor(b, 3*time.Minute, "idle pipelines removed (no control plane)", func() bool { return d2.pipelineCount(b) == 0 }, d2)
	time.Sleep(2 * scaleHeartbeat)
	run(d2, "nw2", false)
	noCP.B = []Sample{run(d2, "n2", true)}

	perIdle := float64(after.RSS-before.RSS) / float64(scaleIdle) / (1 << 20)
	Detail("scale_idle_rss", "cdpd RSS %.1f MiB before, %.1f MiB with %d idle pipelines: %.2f MiB per idle pipeline (limit 2 MiB); adding them took %s, removing %s",
		mib(before.RSS), mib(after.RSS), scaleIdle, perIdle, addDur.Round(time.Millisecond), rmDur.Round(time.Millisecond))
	Report("scale_idle_rss", perIdle/2, AtMost(1))

	Detail("scale_heartbeats", "%d idle pipelines, %s interval: idle window %d delivered, %d missed (%.4f); including a busy run %d delivered, %d missed; gaps between heartbeats of a pipeline: %s",
		scaleIdle, scaleHeartbeat, idleGot, idleMissed, idleRatio, allGot, allMissed, gapStats(beats, idleIDs, w0, w2, scaleHeartbeat))
	Report("scale_heartbeats", allRatio, AtLeast(1))

	withCPU := (p1.CPU - p0.CPU).Seconds() / w1.Sub(w0).Seconds()
	noCPU := (q1.CPU - q0.CPU).Seconds() / t1.Sub(t0).Seconds()
	hbPerSec := float64(idleGot) / w1.Sub(w0).Seconds()
	perBeat := time.Duration((withCPU - noCPU) / hbPerSec * float64(time.Second))
	Detail("scale_heartbeat_cpu", "cdpd with %d idle pipelines uses %.3f cores with the control plane (%.0f heartbeats/s), %.3f without: the heartbeat path costs %.3f cores, %s per heartbeat (at the default 10 s interval: %.4f cores)",
		scaleIdle, withCPU, hbPerSec, noCPU, withCPU-noCPU, perBeat, (withCPU-noCPU)*scaleHeartbeat.Seconds()/10)
	Report("scale_heartbeat_cpu", withCPU-noCPU, None)

	// Idle pipelines at the tip of one datastore share its reader and its one tip poller.
	Detail("scale_idle_cpu", "cdpd with %d idle pipelines at the tip of one datastore, no control plane: %.4f cores (limit 0.02)",
		scaleIdle, noCPU)
	Report("scale_idle_cpu", noCPU/0.02, AtMost(1))

	c := Comparison{A: with, B: alone}
	Detail("scale_busy_throughput", "%d busy ContractEvent pipelines of %d ledgers: %s", busy, ledgers,
		c.Describe(fmt.Sprintf("next to %d idle", scaleIdle), "alone", "ledger"))
	Report("scale_busy_throughput", c.Ratio(), AtLeast(0.95))
	Detail("scale_busy_no_control_plane", "the same without a control plane (no heartbeats): %s",
		noCP.Describe(fmt.Sprintf("next to %d idle", scaleIdle), "alone", "ledger"))
	Report("scale_busy_no_control_plane", noCP.Ratio(), None)
	Detail("scale_busy_runs", "every busy run in order (b: next to the idle ones, a: alone, n: the cdpd without a control plane): %s",
		strings.Join(runs, "; "))
}

// pipelineCount is the number of pipelines the daemon lists (GET /api/v1/pipelines).
func (d *daemonProc) pipelineCount(b testing.TB) int {
	b.Helper()
	resp, err := http.Get("http://" + d.http + "/api/v1/pipelines")
	must(b, err, "listing cdpd's pipelines")
	defer resp.Body.Close()
	var ps []json.RawMessage
	must(b, json.NewDecoder(resp.Body).Decode(&ps), "decoding cdpd's pipelines")
	return len(ps)
}

// gapStats describes the gaps between consecutive heartbeats of each service within [from, to].
func gapStats(beats map[string][]time.Time, ids []string, from, to time.Time, interval time.Duration) string {
	var gaps []time.Duration
	for _, id := range ids {
		var prev time.Time
		for _, t := range beats[id] {
			if t.Before(from) || t.After(to) {
				continue
			}
			if !prev.IsZero() {
				gaps = append(gaps, t.Sub(prev))
			}
			prev = t
		}
	}
	late := 0
	for _, g := range gaps {
		if g > interval*3/2 {
			late++
		}
	}
	return fmt.Sprintf("%d gaps, median %s, p99 %s, max %s, %d over 1.5 intervals",
		len(gaps), Percentile(gaps, 50).Round(time.Millisecond), Percentile(gaps, 99).Round(time.Millisecond),
		Percentile(gaps, 100).Round(time.Millisecond), late)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// isRegistered reports whether the service is registered now.
func (cp *controlPlane) isRegistered(id string) bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	_, ok := cp.live[id]
	return ok
}

// BenchmarkHotAdd (goal 4): with 200 pipelines hosted, the time from a pipeline file renamed into
// the config directory to the pipeline registered in the control plane, over 50 adds.
// Goal p99 < 500 ms.
func BenchmarkHotAdd(b *testing.B) {
	const goal = "hot_add_p99"
	hosted := envInt("CDPD_BENCH_HOSTED", 200)
	adds := envInt("CDPD_BENCH_ADDS", 50)
	tip := tipDatastore(b)
	cp := startControlPlane(b)
	conf := b.TempDir()
	for i := range hosted {
		name := fmt.Sprintf("hosted-%03d", i)
		writeYAML(b, conf, name, idleYAML(name, tip))
	}
	d := startDaemon(b, conf, cp.addr)
	waitFor(b, 3*time.Minute, "hosted pipelines registered", func() bool {
		for i := range hosted {
			if !cp.isRegistered(control.ServiceID("", fmt.Sprintf("hosted-%03d", i))) {
				return false
			}
		}
		return true
	}, d)
	time.Sleep(2 * scaleHeartbeat)
	lat := make([]time.Duration, 0, adds)
	for i := range adds {
		name := fmt.Sprintf("hot-%03d", i)
		id := control.ServiceID("", name)
		content := idleYAML(name, tip)
		tmp := filepath.Join(conf, "."+name+".tmp")
		must(b, os.WriteFile(tmp, []byte(content), 0o644), "writing %s", tmp)
		t0 := time.Now()
		must(b, os.Rename(tmp, filepath.Join(conf, name+".yaml")), "renaming %s", tmp)
		waitFor(b, 30*time.Second, "registration of "+name, func() bool { return cp.isRegistered(id) }, d)
		lat = append(lat, cp.registeredAt(id).Sub(t0))
		time.Sleep(50 * time.Millisecond) // adds are separate events, not one burst
	}
	p50, p99 := Percentile(lat, 50), Percentile(lat, 99)
	Detail(goal, "%d adds with %d pipelines hosted: median %s, p99 %s, max %s (limit 500ms)", adds, hosted,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), Percentile(lat, 100).Round(time.Millisecond))
	Report(goal, p99.Seconds()/0.5, AtMost(1))
	b.ReportMetric(float64(p50.Milliseconds()), "median-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
}
