package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
)

// listFlag is a repeatable, comma-separated string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Sample is one heartbeat in `metrics -o json`.
type Sample struct {
	Time    time.Time      `json:"time"`
	Status  string         `json:"status"`
	Metrics map[string]any `json:"metrics"`
}

// Summary describes one numeric metric over the window.
type Summary struct {
	Samples int     `json:"samples"`
	First   float64 `json:"first"`
	Last    float64 `json:"last"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	// Counter is set when the series never decreases; RatePerSecond is then
	// (last - first) / (time of last sample - time of first sample).
	Counter       bool     `json:"counter"`
	RatePerSecond *float64 `json:"rate_per_second"`

	values []float64
}

// History is the JSON form of `metrics`.
type History struct {
	ServiceID string             `json:"service_id"`
	Since     time.Time          `json:"since"`
	Until     time.Time          `json:"until"`
	Samples   []Sample           `json:"samples"`
	Summary   map[string]Summary `json:"summary"`
}

// summarize computes the per-metric summaries of numeric metrics (in sample order).
func summarize(samples []*cdpdv1.HeartbeatSample) map[string]Summary {
	type acc struct {
		s           Summary
		firstT      time.Time
		lastT       time.Time
		nonDecrease bool
	}
	accs := map[string]*acc{}
	for _, smp := range samples {
		t := smp.GetTime().AsTime()
		for k, raw := range smp.GetMetrics() {
			v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			a := accs[k]
			if a == nil {
				a = &acc{s: Summary{First: v, Min: v, Max: v}, firstT: t, nonDecrease: true}
				accs[k] = a
			} else if v < a.s.Last {
				a.nonDecrease = false
			}
			a.s.Samples++
			a.s.Last = v
			a.lastT = t
			a.s.Min = math.Min(a.s.Min, v)
			a.s.Max = math.Max(a.s.Max, v)
			a.s.values = append(a.s.values, v)
		}
	}
	out := make(map[string]Summary, len(accs))
	for k, a := range accs {
		s := a.s
		span := a.lastT.Sub(a.firstT).Seconds()
		if a.nonDecrease && s.Samples >= 2 && span > 0 {
			s.Counter = true
			r := (s.Last - s.First) / span
			s.RatePerSecond = &r
		}
		out[k] = s
	}
	return out
}

// sparkline draws values in at most width cells (each cell the mean of its share of values).
func sparkline(values []float64, width int) string {
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	if len(values) == 0 {
		return ""
	}
	n := min(len(values), width)
	cells := make([]float64, n)
	for i := range n {
		lo, hi := i*len(values)/n, (i+1)*len(values)/n
		sum := 0.0
		for _, v := range values[lo:hi] {
			sum += v
		}
		cells[i] = sum / float64(hi-lo)
	}
	mn, mx := cells[0], cells[0]
	for _, c := range cells {
		mn, mx = math.Min(mn, c), math.Max(mx, c)
	}
	var b strings.Builder
	for _, c := range cells {
		idx := 0
		if mx > mn {
			idx = int(math.Round((c - mn) / (mx - mn) * float64(len(runes)-1)))
		}
		b.WriteRune(runes[idx])
	}
	return b.String()
}

func (a *App) cmdMetrics(ctx context.Context, args []string) int {
	fs := a.newFlagSet("metrics", "metrics <id> [--duration 1h] [--metric NAME]... [--json | -o json] [flags]")
	cf := a.addClientFlags(fs)
	duration := fs.Duration("duration", time.Hour, "history window ending now")
	var names listFlag
	fs.Var(&names, "metric", "only this metric (repeatable, or comma-separated)")
	out := addOutputFlags(fs, "json: the samples and the summaries")
	width := fs.Int("width", 40, "sparkline width in characters")
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.usageErr(fs, "want exactly one service id")
	}
	asJSON, code, ok := a.asJSON(fs, out)
	if !ok {
		return code
	}
	if *duration <= 0 {
		return a.usageErr(fs, "--duration must be positive")
	}
	if *width < 1 {
		return a.usageErr(fs, "--width must be at least 1")
	}
	id := pos[0]
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()

	now := a.Now()
	since := now.Add(-*duration)
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := cdpdv1.NewHistoryServiceClient(cc).GetHistory(rctx, &cdpdv1.GetHistoryRequest{
		ServiceId: id, Since: timestamppb.New(since), MetricNames: names,
	})
	switch {
	case status.Code(err) == codes.Unimplemented:
		return a.fail("this control plane does not keep heartbeat history (it is not cdpd's flowctl server)")
	case err != nil && contract.IsNotFound(err):
		return a.unknownService(ctx, cf, cc, id)
	case err != nil:
		return a.rpcFail(cf, "getting the history of "+id, err)
	}
	samples := resp.GetSamples()
	sums := summarize(samples)
	// Health details are text about the pipeline, not measurements: summarised only when asked for.
	asked := map[string]bool{}
	for _, n := range names {
		asked[n] = true
	}
	for k := range sums {
		if strings.HasPrefix(k, contract.HealthPrefix) && !asked[k] {
			delete(sums, k)
		}
	}
	for _, n := range names {
		if _, ok := sums[n]; ok {
			continue
		}
		found := false
		for _, s := range samples {
			if _, ok := s.GetMetrics()[n]; ok {
				found = true
			}
		}
		if !found && len(samples) > 0 {
			return a.fail("%s has no metric %q in the last %s (\"flowctl status %s\" lists its metrics)", id, n, formatDuration(*duration), id)
		}
	}
	if asJSON {
		h := History{ServiceID: id, Since: since.UTC(), Until: now.UTC(), Samples: []Sample{}, Summary: sums}
		for _, s := range samples {
			m := make(map[string]any, len(s.GetMetrics()))
			for k, v := range s.GetMetrics() {
				m[k] = jsonValue(v)
			}
			h.Samples = append(h.Samples, Sample{Time: s.GetTime().AsTime().UTC(), Status: contract.StatusName(s.GetStatus()), Metrics: m})
		}
		return a.writeJSON(a.Stdout, h)
	}
	a.writeHistory(a.Stdout, id, *duration, samples, sums, *width)
	return exitOK
}

func (a *App) writeHistory(w io.Writer, id string, window time.Duration, samples []*cdpdv1.HeartbeatSample, sums map[string]Summary, width int) {
	if len(samples) == 0 {
		fmt.Fprintf(w, "%s: no heartbeats in the last %s\n", id, formatDuration(window))
		return
	}
	first, last := samples[0].GetTime().AsTime().UTC(), samples[len(samples)-1].GetTime().AsTime().UTC()
	fmt.Fprintf(w, "%s: %d heartbeats from %s to %s (%s)\n", id, len(samples),
		first.Format(time.RFC3339), last.Format(time.RFC3339), formatDuration(last.Sub(first)))
	// Status: counts, in order of first appearance.
	counts := map[string]int{}
	var order []string
	for _, s := range samples {
		n := contract.StatusName(s.GetStatus())
		if counts[n] == 0 {
			order = append(order, n)
		}
		counts[n]++
	}
	var parts []string
	for _, n := range order {
		parts = append(parts, fmt.Sprintf("%s %d", n, counts[n]))
	}
	fmt.Fprintf(w, "status: %s\n\n", strings.Join(parts, ", "))
	if len(sums) == 0 {
		fmt.Fprintln(w, "(no numeric metrics)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tFIRST\tLAST\tMIN\tMAX\tRATE/S\tTREND")
	for _, k := range sortedKeys(sums) {
		s := sums[k]
		rate := "-"
		if s.RatePerSecond != nil {
			rate = formatNumber(*s.RatePerSecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k, formatNumber(s.First), formatNumber(s.Last),
			formatNumber(s.Min), formatNumber(s.Max), rate, sparkline(s.values, width))
	}
	_ = tw.Flush()
}
