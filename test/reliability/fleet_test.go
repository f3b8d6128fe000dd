package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// fleet is N cdpd replicas on one config directory, each with its own state directory.
type fleet struct {
	t      *testing.T
	conf   string
	cp     *controlPlane
	states []string // replica k's state directory

	mu      sync.Mutex
	daemons []*daemonProc // replica k (nil before it started)
}

// start starts replica k of count shards (waiting until it is ready) and puts it in the fleet.
func (f *fleet) start(k, count int) *daemonProc {
	f.t.Helper()
	d := startDaemon(f.t, DaemonOptions{ConfDir: f.conf, StateDir: f.states[k], Endpoint: f.cp.Addr,
		Args: []string{"--shard-count", strconv.Itoa(count), "--shard-index", strconv.Itoa(k), "--instance", instanceName(k)}})
	f.mu.Lock()
	f.daemons[k] = d
	f.mu.Unlock()
	return d
}

func instanceName(k int) string { return fmt.Sprintf("cdpd-%d", k) }

// settled waits until every pipeline is registered exactly once, under the instance of its
// shard among count, processing there (and only there), and listed by every other replica as
// another shard's.
func (f *fleet) settled(names []string, count int) {
	f.t.Helper()
	testproc.Eventually(f.t, 90*time.Second, fmt.Sprintf("%d pipelines settled on %d shards", len(names), count), func() (bool, string) {
		list := f.cp.List(f.t)
		if n := len(f.cp.Registered(f.t)); n != len(names) {
			return false, fmt.Sprintf("%d services registered", n)
		}
		apis := make([]map[string]pipelineStatus, count)
		live := f.daemonsNow()
		for k := 0; k < count; k++ {
			if live[k] == nil {
				return false, instanceName(k) + " is not running"
			}
			apis[k] = live[k].Pipelines(f.t)
		}
		for _, name := range names {
			want := shard.Of(name, count)
			md := list["cdp-"+name].GetComponent().GetMetadata()
			if md[contract.MetaInstance] != instanceName(want) || md[contract.MetaShard] != strconv.Itoa(want) ||
				md[contract.MetaShardCount] != strconv.Itoa(count) {
				return false, fmt.Sprintf("%s registered as %v, want instance %s", name, md, instanceName(want))
			}
			for k := 0; k < count; k++ {
				p := apis[k][name]
				if p.AssignedShard == nil || *p.AssignedShard != want {
					return false, fmt.Sprintf("%s on %s: assigned_shard %v, want %d", name, instanceName(k), p.AssignedShard, want)
				}
				switch {
				case k == want && (p.Status != "running" || p.CurrentLedger == 0):
					return false, fmt.Sprintf("%s on its shard %d: %s at ledger %d", name, k, p.Status, p.CurrentLedger)
				case k != want && p.Status != "other_shard":
					return false, fmt.Sprintf("%s on %s (not its shard %d): %s", name, instanceName(k), want, p.Status)
				}
			}
		}
		return true, ""
	})
}

// watch polls every replica and the control plane until stop: it collects pipelines that two
// replicas report running in two consecutive rounds, and the sequence of instances each
// service is registered under.
type watch struct {
	mu        sync.Mutex
	twice     map[string]string   // pipeline -> the replicas that ran it at once
	instances map[string][]string // pipeline -> instances it was registered under, in order
	rounds    int
	stop      chan struct{}
	done      chan struct{}
}

func (f *fleet) watch(names []string) *watch {
	w := &watch{twice: map[string]string{}, instances: map[string][]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		prev := map[string][]string{}
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			running := map[string][]string{}
			for k, d := range f.daemonsNow() {
				code, _ := d.Get("/healthz")
				if code != 200 {
					continue // stopping or starting: its pipelines are in its journal
				}
				for name, p := range d.pipelinesQuiet() {
					if p.Status == "running" {
						running[name] = append(running[name], instanceName(k))
					}
				}
			}
			list := listServices(f.t, f.cp.Addr)
			w.mu.Lock()
			w.rounds++
			for _, name := range names {
				if len(running[name]) > 1 && len(prev[name]) > 1 {
					w.twice[name] = strings.Join(running[name], ",")
				}
				if c := list["cdp-"+name]; c != nil {
					inst := c.GetComponent().GetMetadata()[contract.MetaInstance]
					seq := w.instances[name]
					if len(seq) == 0 || seq[len(seq)-1] != inst {
						w.instances[name] = append(seq, inst)
					}
				}
			}
			w.mu.Unlock()
			prev = running
		}
	}()
	return w
}

func (w *watch) end() {
	close(w.stop)
	<-w.done
}

// daemonsNow is a copy of the live replicas (the test replaces them while watch reads them).
func (f *fleet) daemonsNow() map[int]*daemonProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]*daemonProc{}
	for k, d := range f.daemons {
		if d != nil && !d.Exited() {
			out[k] = d
		}
	}
	return out
}

// pipelinesQuiet is Pipelines without failing the test (a replica may be going away).
func (d *daemonProc) pipelinesQuiet() map[string]pipelineStatus {
	out := map[string]pipelineStatus{}
	code, body := d.Get("/api/v1/pipelines")
	if code != 200 {
		return out
	}
	var list []pipelineStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return out
	}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

// journal is one pipeline's JournalConsumer file: the incarnations that ran it.
type incarnation struct {
	pid         int
	open, close int64 // unix ns; close 0 while open
	ledgers     int
}

func readJournal(t *testing.T, path string) []incarnation {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	defer f.Close()
	var out []incarnation
	openAt := map[int]int{} // pid -> index of its open incarnation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		ts, _ := strconv.ParseInt(fs[0], 10, 64)
		pid, _ := strconv.Atoi(fs[1])
		switch fs[2] {
		case "open":
			openAt[pid] = len(out)
			out = append(out, incarnation{pid: pid, open: ts})
		case "ledger":
			if i, ok := openAt[pid]; ok {
				out[i].ledgers++
			}
		case "close":
			if i, ok := openAt[pid]; ok {
				out[i].close = ts
				delete(openAt, pid)
			}
		}
	}
	return out
}

// TestFleetShardsAndRescale is issue 18's fleet: one control plane, three cdpd with
// --shard-count 3 on one directory of 30 pipelines. Every pipeline runs and is registered once,
// under the instance of its shard. Then the fleet goes to 4 shards the way a StatefulSet rolls
// it out (the new replica first, then each old one restarted with the new count, highest
// ordinal first): exactly the pipelines rendezvous hashing moves to shard 3 move, and no
// pipeline runs twice at any moment, as the replicas' APIs, the control plane and the sinks'
// journals (every incarnation's open and close) show.
func TestFleetShardsAndRescale(t *testing.T) {
	ds := newDatastore(t, 10)
	app := startAppender(t, ds, 2*time.Second) // a live exporter, slow enough for 30 race-built pipelines
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testproc.FreePort(t))
	cp := startControlPlane(t, CPOptions{Extra: []string{"--metrics-addr", metricsAddr}})
	f := &fleet{t: t, conf: t.TempDir(), cp: cp, daemons: make([]*daemonProc, 4)}
	for range 4 {
		f.states = append(f.states, t.TempDir())
	}
	journals := t.TempDir()
	var names []string
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("p%02d", i)
		names = append(names, name)
		testproc.WriteFile(t, filepath.Join(f.conf, name+".yaml"), pipelineYAML(PipelineSpec{Name: name, Path: ds.Dir,
			Consumers: []string{fmt.Sprintf("{type: JournalConsumer, config: {dir: %q}}", journals)}}))
	}
	var movers []string
	for _, n := range names {
		if shard.Of(n, 3) != shard.Of(n, 4) {
			movers = append(movers, n)
		}
	}
	t.Logf("rendezvous hashing moves %d of %d pipelines from 3 to 4 shards: %v", len(movers), len(names), movers)
	if len(movers) == 0 {
		t.Fatal("no pipeline moves: the test would show nothing")
	}

	for k := 0; k < 3; k++ {
		f.start(k, 3)
	}
	f.settled(names, 3)

	// The control plane's /metrics covers the fleet: one up series per pipeline, under its
	// instance, with the re-exported heartbeat metrics.
	code, scrape := testproc.HTTPGet("http://" + metricsAddr + "/metrics")
	if code != 200 {
		t.Fatalf("control plane /metrics: %d", code)
	}
	for _, name := range names {
		inst := instanceName(shard.Of(name, 3))
		for _, series := range []string{
			fmt.Sprintf(`flowctl_service_up{instance=%q,service_id="cdp-%s",service_type="cdp-pipeline"} 1`, inst, name),
			fmt.Sprintf(`cdp_pipeline_current_ledger{instance=%q,service_id="cdp-%s",service_type="cdp-pipeline"}`, inst, name),
			fmt.Sprintf(`cdp_source_ledgers_behind_tip{component="FSBufferedStorageSourceAdapter",instance=%q,service_id="cdp-%s",service_type="cdp-pipeline"}`, inst, name),
		} {
			if !strings.Contains(scrape, series) {
				t.Errorf("control plane /metrics has no %s", series)
			}
		}
	}
	// flowctl status --instance shows each replica's share.
	for k := 0; k < 3; k++ {
		out, code := flowctl(t, cp.Addr, "status", "--instance", instanceName(k), "--json")
		want := 0
		for _, n := range names {
			if shard.Of(n, 3) == k {
				want++
			}
		}
		if code != 0 || strings.Count(out, `"id": "cdp-p`) != want {
			t.Errorf("flowctl status --instance %s: exit %d, want %d pipelines:\n%s", instanceName(k), code, want, out)
		}
	}

	// 3 -> 4 shards, as a StatefulSet with podManagementPolicy Parallel rolls it out.
	w := f.watch(names)
	d3 := f.start(3, 4)
	// The new replica holds back the movers while their old owners run them.
	waiting := 0
	for _, p := range d3.Pipelines(t) {
		if p.Status == "waiting" {
			waiting++
			if !strings.Contains(p.LastError, "still run by cdpd-") {
				t.Errorf("%s waits with last_error %q", p.Name, p.LastError)
			}
		}
	}
	if waiting != len(movers) {
		t.Errorf("the new replica waits for %d pipelines, %d move", waiting, len(movers))
	}
	for k := 2; k >= 0; k-- {
		if code, err := f.daemons[k].Stop(30 * time.Second); err != nil || code != 0 {
			t.Fatalf("stopping %s: exit %d, %v", instanceName(k), code, err)
		}
		f.start(k, 4)
	}
	f.settled(names, 4)
	w.end()

	// From the replicas' APIs: never two replicas running one pipeline.
	if len(w.twice) > 0 {
		t.Errorf("pipelines running on two replicas at once (%d polls): %v", w.rounds, w.twice)
	}
	// From the control plane: exactly the movers changed instance, once, to the new replica.
	for _, name := range names {
		seq := w.instances[name]
		want := []string{instanceName(shard.Of(name, 3))}
		if shard.Of(name, 3) != shard.Of(name, 4) {
			want = append(want, instanceName(3))
		}
		if strings.Join(seq, ",") != strings.Join(want, ",") {
			t.Errorf("%s was registered under %v, want %v", name, seq, want)
		}
	}

	// From the sinks: stop everything (every incarnation closes its journal), then no two
	// processes' incarnations of one pipeline overlap in time.
	app.Stop()
	for k, d := range f.daemonsNow() {
		if code, err := d.Stop(30 * time.Second); err != nil || code != 0 {
			t.Errorf("stopping %s: exit %d, %v", instanceName(k), code, err)
		}
	}
	for _, name := range names {
		incs := readJournal(t, filepath.Join(journals, name+".journal"))
		sort.Slice(incs, func(i, j int) bool { return incs[i].open < incs[j].open })
		pids := map[int]bool{}
		for i, in := range incs {
			pids[in.pid] = true
			if in.close == 0 {
				t.Errorf("%s: the incarnation of pid %d never closed", name, in.pid)
			}
			if i > 0 && incs[i-1].pid != in.pid && incs[i-1].close > in.open {
				t.Errorf("%s ran in pids %d and %d at once: %d opened %s before %d closed",
					name, in.pid, incs[i-1].pid, in.pid, time.Duration(incs[i-1].close-in.open), incs[i-1].pid)
			}
		}
		// Each pipeline ran on its shard of 3, then on its shard of 4 (the same replica
		// restarted, or the new one): two processes, each of which consumed ledgers.
		if len(pids) != 2 {
			t.Errorf("%s ran in %d processes, want 2 (before and after the rescale): %+v", name, len(pids), incs)
		}
		for _, in := range incs {
			if in.ledgers == 0 && in.close-in.open > int64(5*time.Second) {
				t.Errorf("%s: pid %d ran %s and consumed nothing", name, in.pid, time.Duration(in.close-in.open))
			}
		}
	}
}
