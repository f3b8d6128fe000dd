// Package bench owns cdpd's performance suite (`make bench`, issue 8; the fast path it measures
// is docs/design.md "Pooled ledger buffers"): the benchmarks in this package's _test files and
// the harness they share, defined here.
//
// Every goal is measured as a ratio within one run, with the two sides interleaved (A B B A ...)
// so that noise from other processes on a shared machine hits both sides, and printed as one line
// on standard output:
//
//	NAME ratio=R goal=>=G PASS|FAIL
//
// Lines starting with two spaces are details (absolute figures) of the goal line that follows.
// Goals without a threshold (scaling figures) print INFO instead of PASS or FAIL.
//
// The harness: Goal and Report (the lines), Interleave (A/B repetitions and their ratios), the
// Discard consumer (a sink that counts and optionally digests what a pipeline produced, so a
// pipeline's output can be compared with a bare loop's), Digest (an order-sensitive checksum of
// contract events), and readers of a process's RSS and CPU time (/proc, Linux).
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/payment"
)

// Goal is a threshold on a ratio: AtLeast (ratio >= Value) or at most (ratio <= Value). The zero
// Goal has no threshold (the figure is reported for information).
type Goal struct {
	AtLeast bool
	Value   float64
}

// AtLeast is the goal ratio >= v.
func AtLeast(v float64) Goal { return Goal{AtLeast: true, Value: v} }

// AtMost is the goal ratio <= v.
func AtMost(v float64) Goal { return Goal{Value: v} }

// None is a figure without a goal.
var None = Goal{}

func (g Goal) String() string {
	switch {
	case g == None:
		return "none"
	case g.AtLeast:
		return ">=" + fmtNum(g.Value)
	default:
		return "<=" + fmtNum(g.Value)
	}
}

// Met reports whether r meets the goal (true for None). NaN never meets a goal.
func (g Goal) Met(r float64) bool {
	if g == None {
		return true
	}
	if math.IsNaN(r) {
		return false
	}
	if g.AtLeast {
		return r >= g.Value
	}
	return r <= g.Value
}

// Verdict is PASS, FAIL, or INFO for a figure without a goal.
func (g Goal) Verdict(r float64) string {
	switch {
	case g == None:
		return "INFO"
	case g.Met(r):
		return "PASS"
	}
	return "FAIL"
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Line is the goal line of one result: "NAME ratio=R goal=G VERDICT".
func Line(name string, ratio float64, g Goal) string {
	return fmt.Sprintf("%s ratio=%.3f goal=%s %s", name, ratio, g, g.Verdict(ratio))
}

// Out receives the result lines (standard output, so that they show in `go test -bench` output
// without -v).
var Out io.Writer = os.Stdout

var outMu sync.Mutex

// Report prints the goal line of a result and returns whether the goal was met.
func Report(name string, ratio float64, g Goal) bool {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintln(Out, Line(name, ratio, g))
	return g.Met(ratio)
}

// Detail prints a detail line (absolute figures) about the goal name.
func Detail(name, format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(Out, "  %s: %s\n", name, fmt.Sprintf(format, args...))
}

// Sample is one measured run: Units of work (ledgers) done in Wall time using CPU time (of the
// whole process, all goroutines).
type Sample struct {
	Units int64
	Wall  time.Duration
	CPU   time.Duration
}

// Rate is units per wall second.
func (s Sample) Rate() float64 {
	if s.Wall <= 0 {
		return math.NaN()
	}
	return float64(s.Units) / s.Wall.Seconds()
}

// CPUPerUnit is the CPU time per unit.
func (s Sample) CPUPerUnit() time.Duration {
	if s.Units == 0 {
		return 0
	}
	return s.CPU / time.Duration(s.Units)
}

// Sum adds samples up.
func Sum(ss []Sample) Sample {
	var t Sample
	for _, s := range ss {
		t.Units += s.Units
		t.Wall += s.Wall
		t.CPU += s.CPU
	}
	return t
}

// Comparison is the outcome of Interleave: the samples of both sides in run order.
type Comparison struct {
	A, B []Sample
}

// PairRatios are, per repetition, A's rate divided by B's rate.
func (c Comparison) PairRatios() []float64 {
	out := make([]float64, 0, len(c.A))
	for i := range min(len(c.A), len(c.B)) {
		out = append(out, c.A[i].Rate()/c.B[i].Rate())
	}
	return out
}

// Ratio is the median of the per-repetition rate ratios A/B: robust against a burst of noise
// hitting a single run.
func (c Comparison) Ratio() float64 { return Median(c.PairRatios()) }

// TotalRatio is A's total rate over B's total rate.
func (c Comparison) TotalRatio() float64 { return Sum(c.A).Rate() / Sum(c.B).Rate() }

// CPURatio is B's CPU per unit over A's (above 1: A spends less CPU per unit than B).
func (c Comparison) CPURatio() float64 {
	a, b := Sum(c.A).CPUPerUnit(), Sum(c.B).CPUPerUnit()
	if a == 0 {
		return math.NaN()
	}
	return float64(b) / float64(a)
}

// Describe is a detail line body: rates, CPU per unit and the per-repetition ratios.
func (c Comparison) Describe(aName, bName, unit string) string {
	sa, sb := Sum(c.A), Sum(c.B)
	rs := make([]string, 0, len(c.A))
	for _, r := range c.PairRatios() {
		rs = append(rs, fmt.Sprintf("%.3f", r))
	}
	return fmt.Sprintf("%s %.1f %s/s (%s CPU/%s), %s %.1f %s/s (%s CPU/%s); %d reps, ratios [%s], total ratio %.3f, CPU ratio %.3f",
		aName, sa.Rate(), unit, roundDur(sa.CPUPerUnit()), unit,
		bName, sb.Rate(), unit, roundDur(sb.CPUPerUnit()), unit,
		len(c.A), strings.Join(rs, " "), c.TotalRatio(), c.CPURatio())
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Interleave runs a and b reps times each, alternating A B, B A, A B ... so that slow drifts and
// bursts of machine noise fall on both sides. Each call gets its repetition index.
func Interleave(reps int, a, b func(rep int) (Sample, error)) (Comparison, error) {
	var c Comparison
	for i := range reps {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		s1, err := first(i)
		if err != nil {
			return c, err
		}
		s2, err := second(i)
		if err != nil {
			return c, err
		}
		if i%2 == 1 {
			s1, s2 = s2, s1
		}
		c.A = append(c.A, s1)
		c.B = append(c.B, s2)
	}
	return c, nil
}

// Measure runs fn and measures its wall time and this process's CPU time; fn returns the units
// of work it did.
func Measure(fn func() (int64, error)) (Sample, error) {
	c0 := SelfCPU()
	t0 := time.Now()
	n, err := fn()
	return Sample{Units: n, Wall: time.Since(t0), CPU: SelfCPU() - c0}, err
}

// SelfCPU is the user+system CPU time this process used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Median of xs (NaN for none). xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds (0 for none).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// ProcSample is what /proc says about a process.
type ProcSample struct {
	RSS    int64         // VmRSS, bytes
	CPU    time.Duration // utime + stime
	MinFlt int64         // minor page faults (memory first touched, among others)
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)
// needs cgo).
const clockTicks = 100

// ReadProc reads the RSS (/proc/<pid>/status VmRSS), CPU time and minor page faults
// (/proc/<pid>/stat utime, stime and minflt) of a process.
func ReadProc(pid int) (ProcSample, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("reading the status of process %d: %w", pid, err)
	}
	rss, err := ParseVmRSS(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("process %d: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("reading the stat of process %d: %w", pid, err)
	}
	cpu, minflt, err := ParseStat(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return ProcSample{RSS: rss, CPU: cpu, MinFlt: minflt}, nil
}

// ParseVmRSS reads the VmRSS line of /proc/<pid>/status, in bytes.
func ParseVmRSS(status []byte) (int64, error) { return ParseStatusKB(status, "VmRSS") }

// ParseStatusKB reads a "<field>: N kB" line of /proc/<pid>/status (VmRSS, VmHWM: the peak
// RSS), in bytes.
func ParseStatusKB(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected %s line %q: %w", field, line, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s line in /proc status", field)
}

// ParseStat reads the CPU time (utime + stime, fields 14 and 15) and the minor page faults
// (minflt, field 10) of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses: fields are counted after its last ')'.
func ParseStat(stat []byte) (cpu time.Duration, minflt int64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); minflt is field 10, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("malformed /proc stat: %d fields after the command", len(f))
	}
	var v [3]int64
	for n, s := range []string{f[7], f[11], f[12]} {
		if v[n], err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("malformed /proc stat field %q: %w", s, err)
		}
	}
	return time.Duration(v[1]+v[2]) * time.Second / clockTicks, v[0], nil
}

// Digest is an order-sensitive checksum of contract events: the fields both a view-based and a
// fully decoded extraction can produce (transaction hash, position, the event's XDR, topics and
// data). Two extractions with equal Digests produced the same events in the same order.
type Digest struct {
	sum [32]byte
	n   int64
	buf []byte
}

// Add folds one event into the digest: op is the operation index (-1 for a transaction-level
// event), eventXDR the base64 contract_event_xdr, topics and data base64 ScVal XDR.
func (d *Digest) Add(txHash string, eventIndex, op int, eventXDR string, topics []string, data string) {
	b := d.buf[:0]
	b = append(b, d.sum[:]...)
	b = append(b, txHash...)
	b = binary.BigEndian.AppendUint32(b, uint32(eventIndex)) //nolint:gosec // small positions
	b = binary.BigEndian.AppendUint32(b, uint32(int32(op)))  //nolint:gosec // small positions
	for _, s := range append([]string{eventXDR, data}, topics...) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s))) //nolint:gosec // small strings
		b = append(b, s...)
	}
	d.buf = b
	d.sum = sha256.Sum256(b)
	d.n++
}

// AddTransfer folds one token transfer event into the digest: its transaction, its position
// among the ledger's events, its type, the token's contract, from, to and the raw amount (""
// for an address the event does not have).
func (d *Digest) AddTransfer(txHash string, eventIndex int, topic, contract, from, to, amount string) {
	d.Add(txHash, eventIndex, 0, topic, []string{contract, from, to}, amount)
}

// Count is the number of events added.
func (d *Digest) Count() int64 { return d.n }

// String is the count and the first 16 hex digits of the checksum.
func (d *Digest) String() string {
	return fmt.Sprintf("%d events, sha256 chain %s", d.n, hex.EncodeToString(d.sum[:8]))
}

// Equal reports whether two digests saw the same events.
func (d *Digest) Equal(o *Digest) bool { return d.n == o.n && d.sum == o.sum }

// DiscardType is the CDP type name of the Discard consumer in the benchmarks' registry.
const DiscardType = "Discard"

// Discard is a consumer that keeps nothing: it counts ledgers and records and, with the config
// key `digest: true`, folds every ContractEventRecord or TokenTransferRecord into a Digest.
type Discard struct {
	digest  *Digest
	ledgers atomic.Int64
	records atomic.Int64
}

var _ component.Consumer = (*Discard)(nil)

// Consume implements component.Consumer.
func (d *Discard) Consume(_ context.Context, _ *ledger.Ledger, recs []component.Record) error {
	d.ledgers.Add(1)
	d.records.Add(int64(len(recs)))
	if d.digest == nil {
		return nil
	}
	for _, r := range recs {
		switch ev := r.(type) {
		case contract.ContractEventRecord:
			op := -1
			if ev.OperationIndex != nil {
				op = *ev.OperationIndex
			}
			d.digest.Add(ev.TransactionHash, ev.EventIndex, op, ev.ContractEventXDR, ev.Topics, ev.Data)
		case payment.TokenTransferRecord:
			d.digest.AddTransfer(ev.TransactionHash, ev.EventIndex, ev.EventTopic, ev.ContractID,
				deref(ev.From), deref(ev.To), ev.AmountRaw)
		default:
			return fmt.Errorf("Discard: digest needs ContractEventRecord or TokenTransferRecord, got %T", r)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Flush implements component.Consumer.
func (d *Discard) Flush(context.Context) error { return nil }

// Close implements component.Consumer.
func (d *Discard) Close(context.Context) error { return nil }

// Stats implements component.StatsReporter.
func (d *Discard) Stats() map[string]float64 {
	return map[string]float64{"ledgers": float64(d.ledgers.Load()), "records": float64(d.records.Load())}
}

// Ledgers is the number of ledgers consumed.
func (d *Discard) Ledgers() int64 { return d.ledgers.Load() }

// Records is the number of records consumed.
func (d *Discard) Records() int64 { return d.records.Load() }

// Digest is the digest of the consumed events (nil without `digest: true`).
func (d *Discard) Digest() *Digest { return d.digest }

// Sinks remembers the Discard consumer each pipeline created last, so a benchmark can read what
// its pipeline produced.
type Sinks struct {
	mu sync.Mutex
	m  map[string]*Discard
}

// Get returns the last Discard consumer the pipeline created.
func (s *Sinks) Get(pipeline string) *Discard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[pipeline]
}

type discardConfig struct {
	Digest bool `mapstructure:"digest"`
}

// Register adds the Discard consumer to r; every instance is remembered in s.
func (s *Sinks) Register(r *component.Registry) error {
	return r.AddConsumer(func(cfg map[string]any, env component.Env) (component.Consumer, error) {
		var c discardConfig
		if err := component.Decode(cfg, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", DiscardType, err)
		}
		d := &Discard{}
		if c.Digest {
			d.digest = &Digest{}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.m == nil {
			s.m = map[string]*Discard{}
		}
		s.m[env.Pipeline] = d
		return d, nil
	}, DiscardType)
}

func numCPU() int { return runtime.NumCPU() }
