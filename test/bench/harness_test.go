package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/payment"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

func TestLineAndVerdict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ratio float64
		goal  Goal
		want  string
	}{
		{"overhead", 0.981, AtLeast(0.95), "overhead ratio=0.981 goal=>=0.95 PASS"},
		{"overhead", 0.949, AtLeast(0.95), "overhead ratio=0.949 goal=>=0.95 FAIL"},
		{"rss", 0.5, AtMost(1), "rss ratio=0.500 goal=<=1 PASS"},
		{"rss", 1.01, AtMost(1), "rss ratio=1.010 goal=<=1 FAIL"},
		{"scaling", 1.7, None, "scaling ratio=1.700 goal=none INFO"},
		{"broken", math.NaN(), AtLeast(1), "broken ratio=NaN goal=>=1 FAIL"},
	} {
		if got := Line(tc.name, tc.ratio, tc.goal); got != tc.want {
			t.Errorf("Line(%q, %v, %v) = %q, want %q", tc.name, tc.ratio, tc.goal, got, tc.want)
		}
	}
}

func TestReportWritesOneLine(t *testing.T) {
	var buf bytes.Buffer
	old := Out
	Out = &buf
	defer func() { Out = old }()
	if !Report("x", 2, AtLeast(1)) {
		t.Error("Report said the goal was missed")
	}
	Detail("x", "%d ledgers", 3)
	if got, want := buf.String(), "x ratio=2.000 goal=>=1 PASS\n  x: 3 ledgers\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestInterleaveAlternatesOrder(t *testing.T) {
	var order []string
	run := func(side string, rate int64) func(int) (Sample, error) {
		return func(int) (Sample, error) {
			order = append(order, side)
			return Sample{Units: rate, Wall: time.Second}, nil
		}
	}
	c, err := Interleave(4, run("A", 20), run("B", 10))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ""); got != "ABBAABBA" {
		t.Errorf("run order %s, want ABBAABBA", got)
	}
	if len(c.A) != 4 || len(c.B) != 4 || c.Ratio() != 2 || c.TotalRatio() != 2 {
		t.Errorf("comparison %+v: ratio %v total %v, want 2", c, c.Ratio(), c.TotalRatio())
	}
	boom := errors.New("boom")
	if _, err := Interleave(2, run("A", 1), func(int) (Sample, error) { return Sample{}, boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
}

func TestRatioIsMedianOfPairs(t *testing.T) {
	c := Comparison{
		A: []Sample{{Units: 10, Wall: time.Second}, {Units: 10, Wall: time.Second}, {Units: 10, Wall: time.Second}},
		B: []Sample{{Units: 10, Wall: time.Second}, {Units: 100, Wall: time.Second}, {Units: 10, Wall: time.Second}},
	}
	if got := c.Ratio(); got != 1 {
		t.Errorf("Ratio = %v, want 1 (one noisy pair must not move the median)", got)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 3}, {99, 5}, {100, 5}, {1, 1}, {20, 1}, {40, 2}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
	if got := Median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("Median = %v, want 2.5", got)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
}

func TestParseProc(t *testing.T) {
	status := []byte("Name:\tcdpd\nVmPeak:\t  2000 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n")
	if got, err := ParseVmRSS(status); err != nil || got != 12345*1024 {
		t.Errorf("ParseVmRSS = %d, %v; want %d", got, err, 12345*1024)
	}
	if _, err := ParseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("ParseVmRSS accepted a status without VmRSS")
	}
	// A command name with spaces and a parenthesis; 100 minor faults; utime 250 and stime 50
	// ticks = 3 s.
	stat := []byte("4242 (cd pd) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 300")
	if cpu, minflt, err := ParseStat(stat); err != nil || cpu != 3*time.Second || minflt != 100 {
		t.Errorf("ParseStat = %s, %d, %v; want 3s, 100", cpu, minflt, err)
	}
	if _, _, err := ParseStat([]byte("4242 cdpd S 1")); err == nil {
		t.Error("ParseStat accepted a stat without the command")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if s.RSS <= 0 {
		t.Errorf("RSS %d of this process", s.RSS)
	}
}

func TestDigestIsOrderSensitive(t *testing.T) {
	var a, b, c Digest
	a.Add("h1", 0, -1, "x", []string{"t"}, "d")
	a.Add("h1", 1, 0, "y", nil, "d")
	b.Add("h1", 0, -1, "x", []string{"t"}, "d")
	b.Add("h1", 1, 0, "y", nil, "d")
	c.Add("h1", 1, 0, "y", nil, "d")
	c.Add("h1", 0, -1, "x", []string{"t"}, "d")
	if !a.Equal(&b) {
		t.Error("equal event sequences have different digests")
	}
	if a.Equal(&c) {
		t.Error("reordered events have the same digest")
	}
	var d Digest
	d.Add("h1", 0, -1, "x", []string{"t", ""}, "d") // an extra empty topic is a different event
	d.Add("h1", 1, 0, "y", nil, "d")
	if a.Equal(&d) || a.Count() != 2 {
		t.Errorf("digest ignores topics or miscounts: %s vs %s", &a, &d)
	}
}

func TestDiscardConsumer(t *testing.T) {
	reg := component.NewRegistry()
	sinks := &Sinks{}
	if err := sinks.Register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.NewConsumer(DiscardType, map[string]any{"bogus": 1}, component.Env{Pipeline: "p"}); err == nil {
		t.Error("Discard accepted an unknown config key")
	}
	c, err := reg.NewConsumer(DiscardType, map[string]any{"digest": true}, component.Env{Pipeline: "p"})
	if err != nil {
		t.Fatal(err)
	}
	op := 2
	rec := contract.ContractEventRecord{TransactionHash: "h", EventIndex: 1, OperationIndex: &op, ContractEventXDR: "x", Data: "d"}
	if err := c.Consume(context.Background(), nil, []component.Record{rec, rec}); err != nil {
		t.Fatal(err)
	}
	d := sinks.Get("p")
	if d == nil || d.Ledgers() != 1 || d.Records() != 2 || d.Digest().Count() != 2 {
		t.Fatalf("sink %+v after one ledger of two records", d)
	}
	var want Digest
	want.Add("h", 1, 2, "x", nil, "d")
	want.Add("h", 1, 2, "x", nil, "d")
	if !d.Digest().Equal(&want) {
		t.Errorf("digest %s, want %s", d.Digest(), &want)
	}
	if err := c.Consume(context.Background(), nil, []component.Record{payment.TokenTransferRecord{TransactionHash: "t"}}); err != nil || d.Digest().Count() != 3 {
		t.Errorf("a digesting Discard given a token transfer: %v, %d digested, want 3", err, d.Digest().Count())
	}
	if err := c.Consume(context.Background(), nil, []component.Record{raw.LedgerSummary{}}); err == nil {
		t.Error("a digesting Discard accepted a record that is neither a contract event nor a token transfer")
	}
}

func TestHeartbeatDelivery(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s ...float64) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, t0.Add(time.Duration(x*float64(time.Second))))
		}
		return out
	}
	beats := map[string][]time.Time{
		"ok":     at(0.3, 1.3, 2.3, 3.3, 4.3),
		"jitter": at(0.9, 1.2, 2.6, 3.1, 4.5),
		"skip":   at(0.3, 1.3, 3.3, 4.3), // 2.3 missing
		"silent": nil,
	}
	to := t0.Add(5 * time.Second)
	for _, tc := range []struct {
		id          string
		got, missed int
	}{{"ok", 5, 0}, {"jitter", 5, 0}, {"skip", 4, 1}, {"silent", 0, 5}} {
		_, got, missed := heartbeatDelivery(beats, []string{tc.id}, t0, to, time.Second)
		if got != tc.got || missed != tc.missed {
			t.Errorf("%s: delivered %d missed %d, want %d and %d", tc.id, got, missed, tc.got, tc.missed)
		}
	}
	// A window of 6.6 intervals with a beat every interval in a late phase: 6 beats, none missed;
	// one beat fewer is one missed.
	every := map[string][]time.Time{"late": at(0.9, 1.9, 2.9, 3.9, 4.9, 5.9), "gap": at(0.9, 1.9, 3.9, 4.9, 5.9)}
	for id, want := range map[string]int{"late": 0, "gap": 1} {
		if _, _, missed := heartbeatDelivery(every, []string{id}, t0, t0.Add(6600*time.Millisecond), time.Second); missed != want {
			t.Errorf("%s over 6.6 intervals: %d missed, want %d", id, missed, want)
		}
	}
	// A window of 5.01 intervals, a beat every interval a few milliseconds late: the 5th falls
	// after the window, none is missed.
	edge := map[string][]time.Time{"edge": at(0.98, 1.99, 3.0, 4.01, 5.03)}
	if _, got, missed := heartbeatDelivery(edge, []string{"edge"}, t0, t0.Add(5010*time.Millisecond), time.Second); got != 4 || missed != 0 {
		t.Errorf("beats late at the window's edge: %d delivered, %d missed; want 4 and 0", got, missed)
	}
}
