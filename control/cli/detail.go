package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
)

// historySpan is what the control plane keeps of a service's heartbeat history.
type historySpan struct {
	// Kept is false when the control plane keeps no history (not cdpd's flowctl server) or it
	// could not be read (Error says why).
	Kept    bool       `json:"kept"`
	Samples int        `json:"samples"`
	Oldest  *time.Time `json:"oldest,omitempty"`
	Newest  *time.Time `json:"newest,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// verboseView is `status <id> --verbose --json`: the service and its history span.
type verboseView struct {
	Service
	History *historySpan `json:"history"`
}

// historySpan asks the history service for the samples' times only (metric_names [""]: no
// metric has an empty name, so no metric values travel).
func (a *App) historySpan(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn, id string) *historySpan {
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := cdpdv1.NewHistoryServiceClient(cc).GetHistory(rctx, &cdpdv1.GetHistoryRequest{ServiceId: id, MetricNames: []string{""}},
		grpc.MaxCallRecvMsgSize(64<<20))
	switch {
	case status.Code(err) == codes.Unimplemented:
		return &historySpan{Error: "this control plane keeps no heartbeat history"}
	case err != nil:
		return &historySpan{Error: status.Convert(err).Message()}
	}
	h := &historySpan{Kept: true, Samples: len(resp.GetSamples())}
	if n := len(resp.GetSamples()); n > 0 {
		o, w := resp.GetSamples()[0].GetTime().AsTime().UTC(), resp.GetSamples()[n-1].GetTime().AsTime().UTC()
		h.Oldest, h.Newest = &o, &w
	}
	return h
}

// writeDetail prints one service: the header fields, its progress bar, then Metrics: and
// Health Details:. verbose adds everything else the control plane holds: description,
// endpoint, event types, owner, history span and the whole metadata.
func (a *App) writeDetail(w io.Writer, s Service, verbose bool, hist *historySpan) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	label := "Service:"
	if s.Type == contract.ServiceTypePipeline {
		label = "Pipeline:"
	}
	fmt.Fprintf(tw, "%s\t%s\n", label, orDash(s.Name))
	fmt.Fprintf(tw, "ID:\t%s\n", s.ID)
	fmt.Fprintf(tw, "Type:\t%s\n", s.Type)
	fmt.Fprintf(tw, "Status:\t%s\n", s.shownStatus())
	fmt.Fprintf(tw, "Config:\t%s\n", orDash(s.Metadata[contract.MetaConfigFile]))
	fmt.Fprintf(tw, "Network:\t%s\n", orDash(s.Metadata[contract.MetaNetwork]))
	if v := s.Metadata[contract.MetaVersion]; v != "" {
		fmt.Fprintf(tw, "Version:\t%s\n", v)
	}
	if v := s.Metadata[contract.MetaHost]; v != "" {
		fmt.Fprintf(tw, "Host:\t%s\n", v)
	}
	if v := s.Metadata[contract.MetaInstance]; v != "" {
		fmt.Fprintf(tw, "Instance:\t%s\n", v)
	}
	if s.Shard != "" {
		fmt.Fprintf(tw, "Shard:\t%s\n", s.Shard)
	}
	if s.Completed {
		fmt.Fprintf(tw, "Uptime:\t- (completed)\n")
	} else {
		fmt.Fprintf(tw, "Uptime:\t%s\n", formatDuration(time.Duration(s.UptimeSeconds)*time.Second))
	}
	if s.Progress != nil {
		fmt.Fprintf(tw, "Progress:\t%s\n", progressBar(s.Progress))
	}
	if s.RegisteredAt != nil {
		fmt.Fprintf(tw, "Registered:\t%s\n", s.RegisteredAt.Format(time.RFC3339))
	}
	if s.LastHeartbeat != nil {
		fmt.Fprintf(tw, "Last Heartbeat:\t%s (%s ago)\n", s.LastHeartbeat.Format(time.RFC3339), formatDuration(a.Now().Sub(*s.LastHeartbeat)))
	} else {
		fmt.Fprintf(tw, "Last Heartbeat:\tnever\n")
	}
	if verbose {
		fmt.Fprintf(tw, "Owner:\t%s\n", orDash(s.Metadata[contract.MetaRegisteredBy]))
		fmt.Fprintf(tw, "History:\t%s\n", hist.describe())
		fmt.Fprintf(tw, "Description:\t%s\n", orDash(s.Description))
		fmt.Fprintf(tw, "Endpoint:\t%s\n", orDash(s.Endpoint))
		fmt.Fprintf(tw, "Input Events:\t%s\n", orDash(strings.Join(s.InputEventTypes, ", ")))
		fmt.Fprintf(tw, "Output Events:\t%s\n", orDash(strings.Join(s.OutputEventTypes, ", ")))
	}
	_ = tw.Flush()

	section := func(title string, m map[string]string) {
		fmt.Fprintf(w, "\n%s\n", title)
		if len(m) == 0 {
			fmt.Fprintln(w, "  (none)")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(tw, "  %s\t%s\n", k, m[k])
		}
		_ = tw.Flush()
	}
	if verbose {
		section("Metadata:", s.Metadata)
	}
	metrics := map[string]string{}
	for k, v := range s.rawMetrics {
		if !strings.HasPrefix(k, contract.HealthPrefix) {
			metrics[k] = v
		}
	}
	section("Metrics:", metrics)
	section("Health Details:", s.Health)
}

// describe is the History line: "1440 samples, 2026-03-01T12:00:00Z .. 2026-03-01T16:00:00Z (4h)".
func (h *historySpan) describe() string {
	switch {
	case h == nil:
		return "-"
	case !h.Kept:
		return h.Error
	case h.Samples == 0 || h.Oldest == nil:
		return "no samples yet"
	}
	noun := "samples"
	if h.Samples == 1 {
		noun = "sample"
	}
	return fmt.Sprintf("%d %s, %s .. %s (%s)", h.Samples, noun, h.Oldest.Format(time.RFC3339), h.Newest.Format(time.RFC3339),
		formatDuration(h.Newest.Sub(*h.Oldest)))
}

// progressBar is "[#########-----------]  45.0%  4,500 of 10,000 ledgers  120.5 ledgers/s  ETA 45s".
func progressBar(p *Progress) string {
	const width = 20
	pct := p.Percent()
	filled := int(math.Floor(pct / 100 * width))
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
	out := fmt.Sprintf("%s %5.1f%%  %s of %s ledgers", bar, pct, groupThousands(p.Done), groupThousands(p.Total))
	if p.Rate > 0 {
		out += "  " + formatNumber(math.Round(p.Rate*10)/10) + " ledgers/s"
	}
	switch {
	case p.Done >= p.Total:
		out += "  done"
	case p.ETASeconds >= 0:
		out += "  ETA " + formatDuration(time.Duration(p.ETASeconds*float64(time.Second)))
	}
	return out
}

// groupThousands writes a whole number with thousands separators: 10000 -> "10,000".
func groupThousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
