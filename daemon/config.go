package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
)

// Config is everything cdpd is started with. Every flag can also be set in the environment as
// CDPD_<FLAG> (upper case, dashes as underscores); a flag on the command line wins. The flowctl
// settings use the names operators already use (DESIGN.md): FLOWCTL_ENDPOINT, FLOWCTL_TLS_CERT,
// FLOWCTL_TLS_KEY, FLOWCTL_TLS_CA, and CDP_PIPELINE_NAME.
type Config struct {
	ConfigDir            string
	StateDir             string
	HTTPAddr             string
	Instance             string
	HeartbeatInterval    time.Duration
	DrainTimeout         time.Duration
	StuckAfter           time.Duration
	LogFormat            string
	LogLevel             string
	EmbeddedControlPlane string

	FlowctlEndpoint string
	TLSCert         string
	TLSKey          string
	TLSCA           string
	PipelineName    string
}

// Defaults. The HTTP server binds to loopback unless told otherwise; the state directory is
// relative to the working directory so that a first run needs no privileges (deployments set
// --state-dir /var/lib/cdpd).
const (
	DefaultHTTPAddr          = "127.0.0.1:9464"
	DefaultStateDir          = "cdpd-state"
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultDrainTimeout      = 30 * time.Second
	DefaultStuckAfter        = time.Minute
)

// envName is the environment variable of a flag: config-dir -> CDPD_CONFIG_DIR.
func envName(flagName string) string {
	return "CDPD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses the serve command line. lookupEnv is os.LookupEnv outside tests.
func parseFlags(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("cdpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.ConfigDir, "config-dir", "", "directory of pipeline YAML files (required)")
	fs.StringVar(&c.StateDir, "state-dir", DefaultStateDir, "directory for checkpoints and the embedded control plane's database")
	fs.StringVar(&c.HTTPAddr, "http-addr", DefaultHTTPAddr, "address of the HTTP server (/metrics, /healthz, /readyz, /api/v1)")
	fs.StringVar(&c.Instance, "instance", "", "prefix of every service id, when several cdpd share one control plane")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", DefaultHeartbeatInterval, "interval of each pipeline's heartbeat to the control plane")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "hard deadline of a pipeline's drain on remove, update and shutdown")
	fs.DurationVar(&c.StuckAfter, "stuck-after", DefaultStuckAfter, "report a pipeline degraded when one processor or consumer call on one ledger runs longer than this")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.EmbeddedControlPlane, "embedded-control-plane", "", "serve a flowctl-compatible control plane inside cdpd at this address (e.g. 127.0.0.1:8080) and register with it")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cdpd --config-dir DIR [flags]\n       cdpd validate DIR\n       cdpd version\n\nFlags (each also settable as CDPD_<FLAG>):\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nEnvironment: %s (unset: no control plane), %s, %s, %s, CDP_PIPELINE_NAME\n",
			contract.EnvEndpoint, contract.EnvTLSCert, contract.EnvTLSKey, contract.EnvTLSCA)
	}
	// Environment first, so that flags given on the command line override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("environment %s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(k string) string { v, _ := lookupEnv(k); return v }
	flowctl := contract.ReadEnv(get)
	c.FlowctlEndpoint = flowctl.Endpoint
	c.TLSCert, c.TLSKey, c.TLSCA = flowctl.TLS.Cert, flowctl.TLS.Key, flowctl.TLS.CA
	c.PipelineName = get("CDP_PIPELINE_NAME")
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.ConfigDir == "" {
		errs = append(errs, errors.New("--config-dir (or CDPD_CONFIG_DIR) is required"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("--heartbeat-interval must be positive, got %s", c.HeartbeatInterval))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout must be positive, got %s", c.DrainTimeout))
	}
	if c.HTTPAddr == "" {
		// net.Listen("tcp", "") listens on every interface at a random port: an empty
		// CDPD_HTTP_ADDR must not silently expose the API beyond loopback.
		errs = append(errs, errors.New("--http-addr must not be empty (default "+DefaultHTTPAddr+")"))
	}
	if c.StuckAfter <= 0 {
		errs = append(errs, fmt.Errorf("--stuck-after must be positive, got %s", c.StuckAfter))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format must be json or text, got %q", c.LogFormat))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// hostname for the registration metadata.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
