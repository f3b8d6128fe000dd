// Package cli is the flowctl command line: `flowctl server` (cdpd's control plane with alert
// evaluation) and the operator commands `status`, `health`, `list`, `metrics` and `alert`,
// which talk to any server of the flowctl.v1 protocol (ours or upstream flowctl) and use
// cdpd's extensions (cdpd.v1 HistoryService and AlertService) when the server offers them.
//
// Everything runs in-process through App.Run, so tests drive the real commands against a real
// server with an injected clock; cmd/flowctl is a thin main around it.
//
// Exit codes: 0 success (and "healthy" for `health`), 1 failure (unreachable server, unknown
// id, a service or control plane that is not healthy, a server without the extension asked
// for), 2 bad usage.
//
// # Choices
//
//   - Every command and subcommand answers -h/--help with its usage on stdout (exit 0); a bad
//     flag prints the error and the usage on stderr (exit 2). Every command that prints data
//     (status, health, list, metrics, alert list, version) takes --json and -o json alike.
//     `flowctl version` prints Version, stamped by the build (-ldflags -X).
//   - Flags and positional arguments mix freely ("status cdp-x --json"); every client command
//     takes --control-plane-addr (else $FLOWCTL_ENDPOINT, else 127.0.0.1:8080), the TLS flags
//     --tls-cert/--tls-key/--tls-ca-cert (else $FLOWCTL_TLS_CERT/_KEY/_CA; any of them turns
//     TLS on) and --timeout (5 s per request). An unreachable server fails fast with
//     "no control plane is reachable at <addr>; set FLOWCTL_ENDPOINT or --control-plane-addr".
//   - The table's columns: ID, TYPE, STATUS, UPTIME (upstream's, in its order), INSTANCE, SHARD,
//     PROGRESS.
//   - TYPE is the service_type metadata (cdp-pipeline for cdpd pipelines and for upstream CDP
//     processes registered through the legacy API), else the component type in lower case
//     (contract.ServiceType). STATUS is the health status in lower case, except that a bounded
//     pipeline that reached its end_ledger (reported healthy, health detail status=completed)
//     is "completed"; `health` still counts it as healthy.
//   - INSTANCE is the cdpd that runs the service (metadata instance, else host); SHARD is "K/N"
//     for a pipeline of a sharded fleet (metadata shard and shard_count), "-" otherwise.
//   - PROGRESS is a bounded pipeline's progress from its pipeline.progress_* metrics: "45% ETA
//     12m 5s" (no ETA before the rate is known), "100%" when done, "-" without an end_ledger;
//     `status <id>` draws it as a bar with done/total ledgers and the rate.
//   - UPTIME is the pipeline.uptime_seconds metric when the service reports it (the pipeline's
//     own uptime as of its last heartbeat, so a pipeline restarted by cdpd shows its restart,
//     and a re-registration after a control plane restart does not reset it); otherwise the
//     time since the service registered; "-" for a completed pipeline.
//   - `status` lists every service, unhealthy ones included (include_unhealthy=true).
//     --instance, --type and --status keep the rows whose column equals the value (status
//     case-insensitively); they filter the table and --json alike.
//   - `status <id> --verbose` prints everything the control plane holds for the service: the
//     detail view plus its owner (metadata registered_by, set by the control plane: the client
//     certificate's subject under mutual TLS, else the peer address), the span of its heartbeat
//     history (from cdpd.v1 HistoryService, sample times only), description, endpoint, event
//     types and the whole metadata.
//   - `list` prints one service per line as tab-separated id, name, type and status, no header
//     (`flowctl list | cut -f1` gives the ids).
//   - `metrics` summarises numeric metrics except the health.* details (unless named with
//     --metric). A metric whose samples never decrease is a counter; its rate is
//     (last - first) / (time of the last sample - time of the first), i.e. over the samples
//     actually kept, not the whole --duration.
//   - `health` without an id asks the standard gRPC health service; a server without it
//     (upstream flowctl) counts as healthy when it answers ListComponents. For a service that
//     is not healthy the detail is health.last_error (or another *error* detail), else the
//     components whose <Name>_status is not healthy, else the age of its last heartbeat.
//   - Unknown ids list the registered ids close to the one given (edit distance to the id,
//     the id without "cdp-", or the pipeline name).
//
// `flowctl server` binds 127.0.0.1 by default (upstream binds 0.0.0.0: pass --address 0.0.0.0
// to serve other hosts) on port 8080, keeps its bbolt database in ~/.flowctl/cdpd-flowctl.db
// (upstream's directory, a file name of our own so the two servers never share a file; the
// database also holds the alert rules; the heartbeat history is in cdpd-flowctl-history.db
// beside it, bounded by --history-max-bytes and --history-total-bytes) and stops gracefully on
// SIGINT/SIGTERM with exit 0. Services silent for --service-expiry are removed, and one client
// identity registers at most --max-services-per-client services.
// The server is assembled by control/plane, which cdpd's --embedded-control-plane uses too.
// Its --heartbeat-ttl defaults to 30 s; the rule (server.HeartbeatTTLFor) is max(30 s,
// 3 × the clients' heartbeat interval), which the embedded plane applies to cdpd's
// --heartbeat-interval.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/withobsrvr/cdpd/internal/buildinfo"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
)

// Version is flowctl's version, set at build time with
// -ldflags "-X github.com/withobsrvr/cdpd/control/cli.Version=$(git describe --tags --always --dirty)".
var Version = "dev"

// maxRecvMsgSize bounds an answer of the control plane: ListComponents of 10,000 services
// (the server's default --max-services) with cdpd's metrics and details is about 30 MB.
const maxRecvMsgSize = 256 << 20

// DefaultEndpoint is the control plane the commands talk to when neither
// --control-plane-addr nor FLOWCTL_ENDPOINT says otherwise.
const DefaultEndpoint = "127.0.0.1:8080"

// App runs flowctl commands. The zero value writes nowhere and reads no environment; main
// fills it with the process's.
type App struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (FLOWCTL_ENDPOINT, FLOWCTL_TLS_CERT, FLOWCTL_TLS_KEY,
	// FLOWCTL_TLS_CA); nil reads none.
	Getenv func(string) string
	// Now is the clock for uptimes, ages and history windows [time.Now].
	Now func() time.Time
	// IsTerminal reports whether Stdout is a terminal (`--watch` then redraws the screen).
	IsTerminal bool
}

// exit codes
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `flowctl: operate a flowctl control plane and the cdpd pipelines registered with it.

Usage:
  flowctl server [flags]                       run cdpd's flowctl-compatible control plane
  flowctl status [<id> [--verbose]] [--instance NAME] [--type TYPE] [--status STATUS]
                [--json] [--watch [--interval 2s]]
                                               services as a table, or one service in detail
  flowctl health [<id>] [--json]               exit 0 when the service (or, without an id,
                                               the control plane) is healthy, else 1
  flowctl list [--json]                        every registered service, one per line
  flowctl metrics <id> [--duration 1h] [--metric NAME] [--json]
                                               heartbeat history: first/last/min/max, rates
  flowctl alert create --service <id|*> --condition "status != healthy" --webhook URL [--for 1m]
  flowctl alert list [--json]
  flowctl alert delete <id>
  flowctl version [--json]                     flowctl's version

Flags of every client command:
  --control-plane-addr host:port   the control plane [$FLOWCTL_ENDPOINT, else ` + DefaultEndpoint + `]
  --tls-cert, --tls-key            client certificate for mutual TLS [$FLOWCTL_TLS_CERT, $FLOWCTL_TLS_KEY]
  --tls-ca-cert                    CA that verifies the server [$FLOWCTL_TLS_CA]
                                   (any TLS flag turns TLS on)
  --timeout 5s                     deadline of each request

Every command answers --help; every command that prints data prints JSON with --json (or -o json).
Run "flowctl <command> --help" for a command's flags.
`

// Run runs one flowctl command line (without the program name) and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Stdout == nil {
		a.Stdout = io.Discard
	}
	if a.Stderr == nil {
		a.Stderr = io.Discard
	}
	if a.Getenv == nil {
		a.Getenv = func(string) string { return "" }
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if len(args) == 0 {
		fmt.Fprint(a.Stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "server":
		return a.cmdServer(ctx, rest)
	case "status":
		return a.cmdStatus(ctx, rest)
	case "health":
		return a.cmdHealth(ctx, rest)
	case "list":
		return a.cmdList(ctx, rest)
	case "metrics":
		return a.cmdMetrics(ctx, rest)
	case "alert", "alerts":
		return a.cmdAlert(ctx, rest)
	case "version", "--version":
		return a.cmdVersion(rest)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(a.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(a.Stderr, "flowctl: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// VersionView is `flowctl version --json`.
type VersionView struct {
	Version string `json:"version"`
}

func (a *App) cmdVersion(args []string) int {
	fs := a.newFlagSet("version", "version [--json | -o json]")
	out := addOutputFlags(fs, "json: {\"version\": ...}")
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
	v := buildinfo.Version(Version)
	if asJSON {
		return a.writeJSON(a.Stdout, VersionView{Version: v})
	}
	fmt.Fprintf(a.Stdout, "flowctl %s\n", v)
	return exitOK
}

// clientFlags are the connection flags every client command accepts.
type clientFlags struct {
	addr    string
	cert    string
	key     string
	ca      string
	timeout time.Duration
}

func (a *App) addClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	env := contract.ReadEnv(a.Getenv)
	def := env.Endpoint
	if def == "" {
		def = DefaultEndpoint
	}
	fs.StringVar(&cf.addr, "control-plane-addr", def, "control plane `host:port` ($"+contract.EnvEndpoint+")")
	fs.StringVar(&cf.cert, "tls-cert", env.TLS.Cert, "client certificate `file` for mutual TLS ($"+contract.EnvTLSCert+")")
	fs.StringVar(&cf.key, "tls-key", env.TLS.Key, "client key `file` for mutual TLS ($"+contract.EnvTLSKey+")")
	fs.StringVar(&cf.ca, "tls-ca-cert", env.TLS.CA, "CA `file` that verifies the server ($"+contract.EnvTLSCA+")")
	fs.DurationVar(&cf.timeout, "timeout", 5*time.Second, "deadline of each request")
	return cf
}

// newFlagSet makes a command's flag set; parse prints its errors and usage.
func (a *App) newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse prints errors and usage where they belong
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: flowctl %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and positional arguments in any order ("status cdp-x --json" and
// "status --json cdp-x" alike); everything after "--" is positional. -h/--help prints the
// command's usage on stdout (exit 0); a bad flag prints the error and the usage on stderr
// (exit 2). When parsing stopped it returns the exit code and ok=false.
func (a *App) parse(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.printUsage(fs, a.Stdout)
				return nil, exitOK, false
			}
			fmt.Fprintln(a.Stderr, err)
			a.printUsage(fs, a.Stderr)
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// flag stops at the first non-flag, or after a "--" it consumed.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printUsage writes fs's usage (its Usage function, writing to fs.Output()) to w.
func (a *App) printUsage(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.Usage()
	fs.SetOutput(io.Discard)
}

// outputFlags are the output flags of every command that prints data: -o text|json and
// --json (the same as -o json).
type outputFlags struct {
	format string
	json   bool
}

func addOutputFlags(fs *flag.FlagSet, what string) *outputFlags {
	of := &outputFlags{}
	fs.StringVar(&of.format, "o", "text", "output format: text or json ("+what+")")
	fs.BoolVar(&of.json, "json", false, "print JSON (same as -o json)")
	return of
}

// asJSON says whether JSON was asked for; ok=false (a usage error printed) for a format other
// than text or json.
func (a *App) asJSON(fs *flag.FlagSet, of *outputFlags) (asJSON bool, code int, ok bool) {
	switch of.format {
	case "text":
		return of.json, 0, true
	case "json":
		return true, 0, true
	}
	return false, a.usageErr(fs, "-o %q: want text or json", of.format), false
}

// usageErr prints a usage error for fs and returns exitUsage.
func (a *App) usageErr(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(a.Stderr, "flowctl %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(a.Stderr, "Run \"flowctl %s -h\" for usage.\n", fs.Name())
	return exitUsage
}

// fail prints an error and returns exitFail.
func (a *App) fail(format string, args ...any) int {
	fmt.Fprintf(a.Stderr, "flowctl: "+format+"\n", args...)
	return exitFail
}

// dial creates the (lazy) connection to the control plane.
func (a *App) dial(cf *clientFlags) (*grpc.ClientConn, error) {
	addr := strings.TrimSpace(cf.addr)
	if addr == "" {
		return nil, errors.New("the control plane address is empty: set --control-plane-addr or FLOWCTL_ENDPOINT to host:port")
	}
	if i := strings.Index(addr, "://"); i >= 0 {
		switch addr[:i] {
		case "http", "https", "grpc", "grpcs":
			return nil, fmt.Errorf("control plane address %q: want host:port (no URL scheme)", addr)
		}
	}
	transport, err := contract.TLSFiles{Cert: cf.cert, Key: cf.key, CA: cf.ca}.DialOption()
	if err != nil {
		return nil, err
	}
	// A fleet's ListComponents is large (5,000 cdpd pipelines with their metrics are about
	// 13 MB): well above gRPC's default 4 MiB receive limit.
	cc, err := grpc.NewClient(addr, transport, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("control plane address %q: %w", addr, err)
	}
	return cc, nil
}

// connect is dial that prints its error; ok=false means return code.
func (a *App) connect(cf *clientFlags) (*grpc.ClientConn, int, bool) {
	cc, err := a.dial(cf)
	if err != nil {
		return nil, a.fail("%v", err), false
	}
	return cc, 0, true
}

// unreachable reports whether err means no control plane answered at all.
func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// rpcFail prints an RPC error the way an operator can act on it and returns exitFail.
func (a *App) rpcFail(cf *clientFlags, what string, err error) int {
	if unreachable(err) {
		fmt.Fprintf(a.Stderr, "flowctl: no control plane is reachable at %s; set FLOWCTL_ENDPOINT or --control-plane-addr\n", cf.addr)
		if st, ok := status.FromError(err); ok && st.Message() != "" {
			fmt.Fprintf(a.Stderr, "  (%s: %s)\n", what, st.Message())
		}
		return exitFail
	}
	if st, ok := status.FromError(err); ok {
		return a.fail("%s: %s (%s)", what, st.Message(), st.Code())
	}
	return a.fail("%s: %v", what, err)
}

// rpcCtx bounds one request.
func rpcCtx(ctx context.Context, cf *clientFlags) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cf.timeout)
}

// IsTerminal reports whether f is a terminal (a character device).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
