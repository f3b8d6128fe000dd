package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/withobsrvr/cdpd/control/alert"
	"github.com/withobsrvr/cdpd/control/cdpdv1"
)

const alertUsage = `Usage:
  flowctl alert create --service <id|*> --condition COND --webhook URL [--for 1m] [--id NAME]
  flowctl alert list [--json | -o json]
  flowctl alert delete <id>

Conditions: "status != healthy", "status == unhealthy", "metric:<name> > <value>"
(operators == != > >= < <=). The control plane POSTs a JSON payload to the webhook when the
condition has held for --for (one "firing" message) and when it stops (one "resolved").
`

// AlertView is an alert in `alert list -o json`.
type AlertView struct {
	ID         string    `json:"id"`
	Service    string    `json:"service"`
	Condition  string    `json:"condition"`
	Webhook    string    `json:"webhook"`
	ForSeconds int64     `json:"for_seconds"`
	CreatedAt  time.Time `json:"created_at"`
}

func (a *App) cmdAlert(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.Stderr, alertUsage)
		return exitUsage
	}
	switch args[0] {
	case "create", "add":
		return a.alertCreate(ctx, args[1:])
	case "list", "ls":
		return a.alertList(ctx, args[1:])
	case "delete", "rm", "remove":
		return a.alertDelete(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(a.Stdout, alertUsage)
		return exitOK
	}
	fmt.Fprintf(a.Stderr, "flowctl alert: unknown subcommand %q\n\n%s", args[0], alertUsage)
	return exitUsage
}

// alertRPCFail explains an AlertService error; Unimplemented means an upstream server.
func (a *App) alertRPCFail(cf *clientFlags, what string, err error) int {
	if status.Code(err) == codes.Unimplemented {
		return a.fail("this control plane does not evaluate alerts (it is not cdpd's flowctl server)")
	}
	if st, ok := status.FromError(err); ok && (st.Code() == codes.InvalidArgument || st.Code() == codes.AlreadyExists || st.Code() == codes.NotFound) {
		return a.fail("%s", st.Message())
	}
	return a.rpcFail(cf, what, err)
}

func (a *App) alertCreate(ctx context.Context, args []string) int {
	fs := a.newFlagSet("alert create", "alert create --service <id|*> --condition COND --webhook URL [--for 1m] [--id NAME] [flags]")
	cf := a.addClientFlags(fs)
	service := fs.String("service", "", `service id, or "*" for every service`)
	condition := fs.String("condition", "", `"status != healthy", "status == unhealthy", "metric:<name> > <value>", ...`)
	webhook := fs.String("webhook", "", "URL the JSON notifications are POSTed to")
	forDur := fs.Duration("for", 0, "how long the condition must hold before the alert fires")
	id := fs.String("id", "", "alert id (assigned by the server when empty)")
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return a.usageErr(fs, "unexpected arguments: %s", strings.Join(pos, " "))
	}
	switch {
	case *service == "":
		return a.usageErr(fs, `--service is required (a service id, or "*")`)
	case *condition == "":
		return a.usageErr(fs, "--condition is required")
	case *webhook == "":
		return a.usageErr(fs, "--webhook is required")
	case *forDur < 0:
		return a.usageErr(fs, "--for must not be negative")
	case *forDur%time.Second != 0:
		return a.usageErr(fs, "--for %s: use whole seconds", *forDur)
	}
	cond, err := alert.ParseCondition(*condition)
	if err != nil {
		return a.usageErr(fs, "%v", err)
	}
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	created, err := cdpdv1.NewAlertServiceClient(cc).CreateAlert(rctx, &cdpdv1.CreateAlertRequest{Alert: &cdpdv1.Alert{
		Id: *id, Service: *service, Condition: cond.String(), WebhookUrl: *webhook, ForSeconds: int64(*forDur / time.Second),
	}})
	if err != nil {
		return a.alertRPCFail(cf, "creating the alert", err)
	}
	line := fmt.Sprintf("created alert %s: %s when %s", created.GetId(), serviceWord(created.GetService()), created.GetCondition())
	if f := created.GetForSeconds(); f > 0 {
		line += " for " + formatDuration(time.Duration(f)*time.Second)
	}
	fmt.Fprintf(a.Stdout, "%s -> %s\n", line, redactURL(created.GetWebhookUrl()))
	return exitOK
}

func serviceWord(s string) string {
	if s == "*" {
		return "any service"
	}
	return s
}

// redactURL keeps scheme and host of a webhook URL: its path and query often hold a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

func (a *App) alertList(ctx context.Context, args []string) int {
	fs := a.newFlagSet("alert list", "alert list [--json | -o json] [flags]")
	cf := a.addClientFlags(fs)
	out := addOutputFlags(fs, "text hides webhook paths, json shows full webhook URLs")
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
	rctx, cancel := rpcCtx(ctx, cf)
	defer cancel()
	resp, err := cdpdv1.NewAlertServiceClient(cc).ListAlerts(rctx, &emptypb.Empty{})
	if err != nil {
		return a.alertRPCFail(cf, "listing alerts", err)
	}
	views := []AlertView{}
	for _, al := range resp.GetAlerts() {
		views = append(views, AlertView{
			ID: al.GetId(), Service: al.GetService(), Condition: al.GetCondition(), Webhook: al.GetWebhookUrl(),
			ForSeconds: al.GetForSeconds(), CreatedAt: al.GetCreatedAt().AsTime().UTC(),
		})
	}
	if asJSON {
		return a.writeJSON(a.Stdout, views)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSERVICE\tCONDITION\tFOR\tWEBHOOK\tCREATED")
	for _, v := range views {
		forS := "-"
		if v.ForSeconds > 0 {
			forS = formatDuration(time.Duration(v.ForSeconds) * time.Second)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Service, v.Condition, forS, redactURL(v.Webhook), v.CreatedAt.Format(time.RFC3339))
	}
	_ = tw.Flush()
	return exitOK
}

func (a *App) alertDelete(ctx context.Context, args []string) int {
	fs := a.newFlagSet("alert delete", "alert delete <id>... [flags]")
	cf := a.addClientFlags(fs)
	pos, code, ok := a.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return a.usageErr(fs, "want the id of the alert to delete (\"flowctl alert list\" shows them)")
	}
	cc, code, ok := a.connect(cf)
	if !ok {
		return code
	}
	defer cc.Close()
	client := cdpdv1.NewAlertServiceClient(cc)
	for _, id := range pos {
		rctx, cancel := rpcCtx(ctx, cf)
		_, err := client.DeleteAlert(rctx, &cdpdv1.DeleteAlertRequest{Id: id})
		cancel()
		if err != nil {
			return a.alertRPCFail(cf, "deleting alert "+id, err)
		}
		fmt.Fprintf(a.Stdout, "deleted alert %s\n", id)
	}
	return exitOK
}
