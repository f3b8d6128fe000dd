package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// listServices returns every registered service (unhealthy ones included), sorted by id.
func (a *App) listServices(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn) ([]Service, error) {
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := flowctlv1.NewControlPlaneServiceClient(cc).ListComponents(rctx,
		&flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if err != nil {
		return nil, err
	}
	now := a.Now()
	out := make([]Service, 0, len(resp.GetComponents()))
	for _, c := range resp.GetComponents() {
		out = append(out, newService(c, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// tableServices returns what the status table shows of every service, sorted by id: the small
// rows of cdpd.v1 FleetService where the control plane offers it (ours), else the services of
// ListComponents (upstream flowctl). The rows carry no metadata, metrics or details.
func (a *App) tableServices(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn) ([]Service, error) {
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := cdpdv1.NewFleetServiceClient(cc).ListRows(rctx, &cdpdv1.ListRowsRequest{})
	if status.Code(err) == codes.Unimplemented {
		return a.listServices(ctx, cf, cc)
	}
	if err != nil {
		return nil, err
	}
	now := a.Now()
	out := make([]Service, 0, len(resp.GetRows()))
	for _, r := range resp.GetRows() {
		s := Service{ID: r.GetId(), Name: r.GetName(), Type: r.GetType(), Status: contract.StatusName(r.GetStatus()),
			Instance: r.GetInstance(), Shard: shardText(int(r.GetShard()), int(r.GetShardCount())), Completed: r.GetCompleted()}
		if ts := r.GetRegisteredAt(); ts != nil && ts.AsTime().Unix() > 0 {
			t := ts.AsTime().UTC()
			s.RegisteredAt = &t
		}
		row := contract.Row{Uptime: r.GetUptimeSeconds(), HasUptime: r.UptimeSeconds != nil}
		s.UptimeSeconds = uptimeSeconds(row, s.RegisteredAt, now)
		if p := r.GetProgress(); p != nil {
			s.Progress = &Progress{Done: p.GetDoneLedgers(), Total: p.GetTotalLedgers(), Rate: p.GetRateLedgersPerSecond(), ETASeconds: p.GetEtaSeconds()}
		}
		out = append(out, s)
	}
	return out, nil
}

// getService returns one service; err is the RPC's error (see notFound).
func (a *App) getService(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn, id string) (Service, error) {
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	st, err := flowctlv1.NewControlPlaneServiceClient(cc).GetComponentStatus(rctx,
		&flowctlv1.ComponentStatusRequest{ServiceId: id})
	if err != nil {
		return Service{}, err
	}
	return newService(st, a.Now()), nil
}

// unknownService reports an id the server does not know, with the registered ids close to it.
func (a *App) unknownService(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn, id string) int {
	fmt.Fprintf(a.Stderr, "flowctl: no service %q is registered at %s\n", id, cf.addr)
	all, err := a.listServices(ctx, cf, cc)
	if err != nil {
		return exitFail
	}
	if m := closeMatches(id, all); len(m) > 0 {
		fmt.Fprintf(a.Stderr, "did you mean: %s\n", strings.Join(m, ", "))
	} else {
		fmt.Fprintf(a.Stderr, "(%d services are registered; \"flowctl list\" shows them)\n", len(all))
	}
	return exitFail
}

// serviceErr reports a failed lookup of one service.
func (a *App) serviceErr(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn, id string, err error) int {
	if contract.IsNotFound(err) {
		return a.unknownService(ctx, cf, cc, id)
	}
	return a.rpcFail(cf, "getting the status of "+id, err)
}

// filter selects services by the table's INSTANCE, TYPE and STATUS (each "" = any).
type filter struct{ instance, typ, status string }

func (f filter) set() bool { return f.instance != "" || f.typ != "" || f.status != "" }

func (f filter) keep(s Service) bool {
	return (f.instance == "" || s.Instance == f.instance) && (f.typ == "" || s.Type == f.typ) &&
		(f.status == "" || strings.EqualFold(s.shownStatus(), f.status))
}

func (a *App) cmdStatus(ctx context.Context, args []string) int {
	fs := a.newFlagSet("status", "status [<id> [--verbose]] [--instance NAME] [--type TYPE] [--status STATUS] [--json | -o json] [--watch [--interval 2s]] [flags]")
	cf := a.addClientFlags(fs)
	out := addOutputFlags(fs, "json: an array of services, or one object for <id>")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval of --watch")
	verbose := fs.Bool("verbose", false, "with <id>: everything the control plane holds for the service (metadata, owner, every metric and health detail, history span)")
	var f filter
	fs.StringVar(&f.instance, "instance", "", "only the services of this INSTANCE (the cdpd that runs them)")
	fs.StringVar(&f.typ, "type", "", "only services of this TYPE (cdp-pipeline, source, processor, consumer, ...)")
	fs.StringVar(&f.status, "status", "", "only services with this STATUS (healthy, degraded, unhealthy, completed, ...)")
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return a.usageErr(fs, "at most one service id, got %d arguments: %s", len(pos), strings.Join(pos, " "))
	}
	if len(pos) == 1 && f.set() {
		return a.usageErr(fs, "--instance, --type and --status select rows of the table: not with a service id")
	}
	if len(pos) == 0 && *verbose {
		return a.usageErr(fs, "--verbose shows one service: give its id")
	}
	asJSON, code, ok := a.asJSON(fs, out)
	if !ok {
		return code
	}
	if *interval <= 0 {
		return a.usageErr(fs, "--interval must be positive")
	}
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()

	once := func(w io.Writer) int {
		if len(pos) == 1 {
			s, err := a.getService(ctx, cf, cc, pos[0])
			if err != nil {
				return a.serviceErr(ctx, cf, cc, pos[0], err)
			}
			var hist *historySpan
			if *verbose {
				hist = a.historySpan(ctx, cf, cc, s.ID)
			}
			if asJSON {
				if hist != nil {
					return a.writeJSON(w, verboseView{Service: s, History: hist})
				}
				return a.writeJSON(w, s)
			}
			a.writeDetail(w, s, *verbose, hist)
			return exitOK
		}
		var all []Service
		var err error
		if asJSON {
			all, err = a.listServices(ctx, cf, cc)
		} else {
			all, err = a.tableServices(ctx, cf, cc)
		}
		if err != nil {
			return a.rpcFail(cf, "listing services", err)
		}
		shown := all[:0:0]
		for _, s := range all {
			if f.keep(s) {
				shown = append(shown, s)
			}
		}
		if asJSON {
			return a.writeJSON(w, shown)
		}
		writeTable(w, shown)
		switch {
		case *watch:
		case len(all) == 0:
			fmt.Fprintf(a.Stderr, "no services are registered at %s\n", cf.addr)
		case len(shown) == 0:
			fmt.Fprintf(a.Stderr, "none of the %d registered services matches\n", len(all))
		}
		return exitOK
	}
	if !*watch {
		return once(a.Stdout)
	}
	return a.watch(ctx, *interval, once)
}

// watch redraws once's output every interval until ctx ends (exit 0). On a terminal the
// screen is cleared before each frame; otherwise frames follow each other. Errors are shown
// in place of a frame and watching goes on.
func (a *App) watch(ctx context.Context, interval time.Duration, once func(io.Writer) int) int {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var buf bytes.Buffer
		once(&buf)
		if a.IsTerminal {
			fmt.Fprint(a.Stdout, "\033[H\033[2J")
			fmt.Fprintf(a.Stdout, "Every %s: flowctl status    %s\n\n", interval, a.Now().UTC().Format(time.RFC3339))
		}
		_, _ = a.Stdout.Write(buf.Bytes())
		if !a.IsTerminal {
			fmt.Fprintln(a.Stdout)
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
	}
}

func (a *App) writeJSON(w io.Writer, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return a.fail("encoding JSON: %v", err)
	}
	fmt.Fprintf(w, "%s\n", b)
	return exitOK
}

// writeTable prints the status table: ID  TYPE  STATUS  UPTIME  INSTANCE  SHARD  PROGRESS
// (upstream's four columns first, in upstream's order, so that scripts reading them still do).
// The tabwriter's work grows with the rows only (5,000 services render in milliseconds:
// test/bench).
func writeTable(w io.Writer, all []Service) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tUPTIME\tINSTANCE\tSHARD\tPROGRESS")
	for _, s := range all {
		uptime := formatDuration(time.Duration(s.UptimeSeconds) * time.Second)
		if s.Completed {
			uptime = "-" // it ran to its end; no uptime to speak of
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Type, s.shownStatus(), uptime,
			orDash(s.Instance), orDash(s.Shard), progressCell(s.Progress))
	}
	_ = tw.Flush()
}

// progressCell is the PROGRESS column: "45% ETA 12m 5s", "100%", "-" without an end_ledger.
func progressCell(p *Progress) string {
	if p == nil {
		return "-"
	}
	pct := fmt.Sprintf("%.0f%%", math.Floor(p.Percent()))
	if p.Done < p.Total && p.ETASeconds >= 0 {
		return pct + " ETA " + formatDuration(time.Duration(p.ETASeconds*float64(time.Second)))
	}
	return pct
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func (a *App) cmdList(ctx context.Context, args []string) int {
	fs := a.newFlagSet("list", "list [--json | -o json] [flags]")
	cf := a.addClientFlags(fs)
	out := addOutputFlags(fs, "text: tab-separated id, name, type, status")
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return a.usageErr(fs, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	asJSON, code, ok := a.asJSON(fs, out)
	if !ok {
		return code
	}
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()
	all, err := a.listServices(ctx, cf, cc)
	if err != nil {
		return a.rpcFail(cf, "listing services", err)
	}
	if asJSON {
		return a.writeJSON(a.Stdout, all)
	}
	for _, s := range all {
		fmt.Fprintf(a.Stdout, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Type, s.Status)
	}
	return exitOK
}

// HealthView is the answer of `health` as `health --json` prints it.
type HealthView struct {
	// Address is the control plane asked.
	Address string `json:"address"`
	// ServiceID is the service asked about; empty for the control plane itself.
	ServiceID string `json:"service_id,omitempty"`
	// Healthy is what the exit code says (0: true).
	Healthy bool `json:"healthy"`
	// Status is the service's status, or the control plane's: "serving", "not_serving", or
	// "reachable" for a server without the gRPC health service.
	Status string `json:"status"`
	// Detail is why a service is not healthy, or the control plane's service counts.
	Detail string `json:"detail,omitempty"`
}

func (a *App) cmdHealth(ctx context.Context, args []string) int {
	fs := a.newFlagSet("health", "health [<id>] [--json | -o json] [flags]")
	cf := a.addClientFlags(fs)
	out := addOutputFlags(fs, "json: address, service_id, healthy, status, detail")
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return a.usageErr(fs, "at most one service id, got %d arguments: %s", len(pos), strings.Join(pos, " "))
	}
	asJSON, code, ok := a.asJSON(fs, out)
	if !ok {
		return code
	}
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()
	var h HealthView
	if len(pos) == 0 {
		if h, code, ok = a.controlPlaneHealth(ctx, cf, cc); !ok {
			return code
		}
	} else {
		id := pos[0]
		s, err := a.getService(ctx, cf, cc, id)
		if err != nil {
			return a.serviceErr(ctx, cf, cc, id, err)
		}
		h = HealthView{Address: cf.addr, ServiceID: id, Status: s.Status, Healthy: s.Status == contract.StateHealthy}
		if !h.Healthy {
			h.Detail = errorDetail(s.Health)
			if h.Detail == "" && s.LastHeartbeat != nil {
				h.Detail = fmt.Sprintf("last heartbeat %s ago", formatDuration(a.Now().Sub(*s.LastHeartbeat)))
			}
		}
	}
	code = exitOK
	if !h.Healthy {
		code = exitFail
	}
	if asJSON {
		if c := a.writeJSON(a.Stdout, h); c != exitOK {
			return c
		}
		return code
	}
	a.writeHealth(h)
	return code
}

// writeHealth prints h as one line: "✓ cdp-x is healthy", "✗ cdp-x is degraded: <detail>",
// "✓ control plane at ADDR is serving; <counts>".
func (a *App) writeHealth(h HealthView) {
	mark, what := "✓", h.ServiceID
	if !h.Healthy {
		mark = "✗"
	}
	if what == "" {
		what = "control plane at " + h.Address
	}
	switch {
	case h.ServiceID == "" && h.Status == "reachable":
		fmt.Fprintf(a.Stdout, "%s %s is reachable (it offers no gRPC health service); %s\n", mark, what, h.Detail)
	case h.Detail == "" || (h.ServiceID != "" && h.Healthy):
		fmt.Fprintf(a.Stdout, "%s %s is %s\n", mark, what, h.Status)
	case h.ServiceID == "":
		fmt.Fprintf(a.Stdout, "%s %s is %s; %s\n", mark, what, h.Status, h.Detail)
	default:
		fmt.Fprintf(a.Stdout, "%s %s is %s: %s\n", mark, what, h.Status, h.Detail)
	}
}

// controlPlaneHealth asks the gRPC health service; a server without it (upstream flowctl)
// counts as healthy when it answers ListComponents. ok=false: an error was printed, exit code.
func (a *App) controlPlaneHealth(ctx context.Context, cf *clientFlags, cc *grpc.ClientConn) (HealthView, int, bool) {
	h := HealthView{Address: cf.addr}
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(rctx, &healthpb.HealthCheckRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
		all, err := a.listServices(ctx, cf, cc)
		if err != nil {
			return h, a.rpcFail(cf, "listing services", err), false
		}
		h.Healthy, h.Status, h.Detail = true, "reachable", summary(all)
		return h, exitOK, true
	case err != nil:
		return h, a.rpcFail(cf, "checking the control plane's health", err), false
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		h.Status = strings.ToLower(resp.GetStatus().String())
		return h, exitFail, true
	}
	h.Healthy, h.Status = true, "serving"
	if all, err := a.listServices(ctx, cf, cc); err == nil {
		h.Detail = summary(all)
	}
	return h, exitOK, true
}

// summary counts services by status: "3 services: 2 healthy, 1 unhealthy".
func summary(all []Service) string {
	counts := map[string]int{}
	for _, s := range all {
		counts[s.Status]++
	}
	noun := "services"
	if len(all) == 1 {
		noun = "service"
	}
	if len(all) == 0 {
		return "0 services"
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return fmt.Sprintf("%d %s: %s", len(all), noun, strings.Join(parts, ", "))
}
