package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// sharedReps is the number of A/B repetitions of the shared-readers comparison (each runs a
// fresh cdpd on 8 pipelines of benchLedgers ledgers).
var sharedReps = envInt("CDPD_BENCH_SHARED_REPS", 2)

// eightYAML is one file of the 8 pipelines of issue 19 over the benchmark datastore: 4
// ContractEvent and 4 TokenTransfer, read through the shared reader or (share: false) alone.
func eightYAML(name, proc string, ds *fixture.Datastore, ledgers int, share bool) string {
	return fmt.Sprintf(`pipeline:
  name: %s
  restart: never
  source:
    type: FSBufferedStorageSourceAdapter
    config: {path: %q, network: pubnet, start_ledger: %d, end_ledger: %d, share: %t}
  processors:
    - type: %s
      config: {network: pubnet}
  consumers:
    - type: StdoutConsumer
      config: {}
`, name, ds.Dir, fixture.Ledger58752000, fixture.Ledger58752000+uint32(ledgers)-1, share, proc)
}

// daemonRun is one run of a fresh cdpd on some pipelines: wall time until every checkpoint
// reached the end, the daemon's CPU time and peak RSS (VmHWM), and the objects it read.
type daemonRun struct {
	Sample
	PeakRSS int64
	Objects int64 // cdpd_reader_objects_read_total + cdp_pipeline_source_objects_read_total
}

// runDaemon starts a cdpd (no control plane) with the files, waits until every pipeline's
// checkpoint reached the end, reads its figures and stops it.
func runDaemon(b *testing.B, files map[string]string, ledgers int) daemonRun {
	b.Helper()
	conf := b.TempDir()
	d := startDaemon(b, conf, "")
	defer d.stop(b)
	cps := checkpoint.New(filepath.Join(d.stateDir, "pipelines"))
	end := fixture.Ledger58752000 + uint32(ledgers) - 1
	p0 := d.proc(b)
	s, err := Measure(func() (int64, error) {
		for name, content := range files {
			writeYAML(b, conf, name, content)
		}
		waitFor(b, 15*time.Minute, "pipelines at their end", func() bool {
			for name := range files {
				c, ok, err := cps.Load(name)
				if err != nil || !ok || c.Ledger < end {
					return false
				}
			}
			return true
		}, d)
		return int64(len(files) * ledgers), nil
	})
	must(b, err, "daemon run")
	p1 := d.proc(b)
	s.CPU = p1.CPU - p0.CPU
	return daemonRun{Sample: s, PeakRSS: d.peakRSS(b), Objects: d.objectsRead(b)}
}

// peakRSS is the daemon's VmHWM.
func (d *daemonProc) peakRSS(b *testing.B) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid))
	must(b, err, "reading cdpd's status")
	v, err := ParseStatusKB(status, "VmHWM")
	must(b, err, "reading cdpd's VmHWM")
	return v
}

// objectsRead sums the datastore objects the daemon's readers and own-stream sources read,
// from its /metrics.
func (d *daemonProc) objectsRead(b *testing.B) int64 {
	b.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	must(b, err, "scraping cdpd")
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	must(b, err, "parsing cdpd's metrics")
	var n float64
	for _, name := range []string{"cdpd_reader_objects_read_total", "cdp_pipeline_source_objects_read_total"} {
		if mf := mfs[name]; mf != nil {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int64(n)
}

// BenchmarkSharedReaders (issue 19): 8 pipelines (4 ContractEvent, 4 TokenTransfer) over one
// datastore in one cdpd, through the shared reader versus each on its own stream (share:
// false), A B B A: objects read (exactly 1x vs 8x), total CPU <= 0.35, wall <= 0.4, peak RSS not
// above the independent run's. Then the peak RSS of the 8 shared against one cdpd running one
// of them (<= 2x), and of one busy ContractEvent pipeline's cdpd (<= 60 MB).
func BenchmarkSharedReaders(b *testing.B) {
	ds, _ := sharedDatastore(b)
	ledgers := benchLedgers
	eight := func(share bool) map[string]string {
		files := map[string]string{}
		for i := range 4 {
			for _, proc := range []string{"ContractEvent", "TokenTransfer"} {
				name := fmt.Sprintf("%s-%d", strings.ToLower(proc), i)
				files[name] = eightYAML(name, proc, ds, ledgers, share)
			}
		}
		return files
	}
	var shared, own []daemonRun
	c, err := Interleave(sharedReps, func(int) (Sample, error) {
		r := runDaemon(b, eight(true), ledgers)
		shared = append(shared, r)
		return r.Sample, nil
	}, func(int) (Sample, error) {
		r := runDaemon(b, eight(false), ledgers)
		own = append(own, r)
		return r.Sample, nil
	})
	must(b, err, "shared readers")
	Detail("shared_readers", "load average %s; %s", loadAvg(), c.Describe("shared", "share: false", "ledger"))

	// Objects: exactly one read per object shared, one per pipeline alone.
	objOK := true
	for _, r := range shared {
		objOK = objOK && r.Objects == int64(ledgers)
	}
	for _, r := range own {
		objOK = objOK && r.Objects == int64(8*ledgers)
	}
	objRatio := float64(shared[0].Objects) / float64(own[0].Objects)
	Detail("shared_objects_read", "objects read per run: shared %v, share: false %v (want %d and %d exactly)",
		objects(shared), objects(own), ledgers, 8*ledgers)
	if !objOK {
		objRatio = 1
	}
	Report("shared_objects_read", objRatio, AtMost(0.125))

	cpuRatio := 1 / c.CPURatio() // shared CPU per ledger over share: false's
	Detail("shared_cpu", "CPU per ledger-pipeline shared %s, share: false %s", roundDur(Sum(c.A).CPUPerUnit()), roundDur(Sum(c.B).CPUPerUnit()))
	Report("shared_cpu", cpuRatio, AtMost(0.35))
	Report("shared_wall", 1/c.Ratio(), AtMost(0.4))

	var peakShared, peakOwn int64
	for i := range shared {
		peakShared, peakOwn = max(peakShared, shared[i].PeakRSS), max(peakOwn, own[i].PeakRSS)
	}
	Detail("shared_peak_rss", "peak RSS shared %.1f MiB, share: false %.1f MiB", mib(peakShared), mib(peakOwn))
	Report("shared_peak_rss", float64(peakShared)/float64(peakOwn), AtMost(1))

	one := func(proc string) daemonRun {
		name := strings.ToLower(proc)
		return runDaemon(b, map[string]string{name: eightYAML(name, proc, ds, ledgers, true)}, ledgers)
	}
	ce, tt := one("ContractEvent"), one("TokenTransfer")
	Detail("shared_rss_vs_one", "peak RSS of one cdpd: 8 pipelines shared %.1f MiB; one TokenTransfer %.1f MiB; one ContractEvent %.1f MiB",
		mib(peakShared), mib(tt.PeakRSS), mib(ce.PeakRSS))
	Report("shared_rss_vs_one", float64(peakShared)/float64(tt.PeakRSS), AtMost(2))
	Detail("busy_contract_event_rss", "one busy ContractEvent pipeline's cdpd: peak RSS %.1f MiB (%.1f MB) at the default --ledger-memory; limit 60 MB",
		mib(ce.PeakRSS), float64(ce.PeakRSS)/1e6)
	Report("busy_contract_event_rss", float64(ce.PeakRSS)/60e6, AtMost(1))
}

func objects(rs []daemonRun) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Objects
	}
	return out
}
