package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/bytesize"
	"github.com/withobsrvr/cdpd/internal/shard"
)

// Config is everything cdpd is started with. Every setting is a flag, also settable in the
// environment as CDPD_<FLAG> (upper case, dashes as underscores) and in the optional YAML file
// of --config-file (keys are the flag names); a flag on the command line wins over the
// environment, which wins over the file, which wins over the default. The flowctl settings use
// the names operators already use (docs/design.md): FLOWCTL_ENDPOINT, FLOWCTL_TLS_CERT,
// FLOWCTL_TLS_KEY, FLOWCTL_TLS_CA, and CDP_PIPELINE_NAME.
type Config struct {
	ConfigFile        string
	ConfigDir         string
	StateDir          string
	HTTPAddr          string
	Instance          string
	HeartbeatInterval time.Duration
	DrainTimeout      time.Duration
	StuckAfter        time.Duration
	LedgerMemory      int64 // bytes; 0: unlimited
	Strict            bool
	// Pprof serves Go's runtime profiles (net/http/pprof) under /debug/pprof/ on the HTTP
	// address; off by default (a profile shows code paths and timings, no config values).
	Pprof                bool
	LogFormat            string
	LogLevel             string
	EmbeddedControlPlane string
	// InsecureControlPlane allows the embedded control plane on a non-loopback address
	// without TLS.
	InsecureControlPlane bool
	// The embedded control plane's bounds (control/server Options of the same names).
	EmbeddedHistoryMaxBytes   bytesize.Size
	EmbeddedHistoryTotalBytes bytesize.Size
	EmbeddedServiceExpiry     time.Duration
	// ShardCount and ShardIndex are the flags as given (--shard-index may be "auto"); Shard is
	// this replica's resolved place in the fleet (resolveShard), what the daemon uses.
	ShardCount int
	ShardIndex string
	Shard      shard.Spec

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
	// DefaultLedgerMemory is the --ledger-memory budget: what a small node (1-2 GB) can give
	// ledgers in flight (a pubnet ledger is ~1.3 MB raw, ~7 MB decoded).
	DefaultLedgerMemory = 256 << 20
)

// EnvPrefix starts the environment variable of every cdpd flag.
const EnvPrefix = "CDPD_"

// FlagEnv is the environment variable of a flag: config-dir -> CDPD_CONFIG_DIR.
func FlagEnv(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envFlag is the flag of an environment variable (CDPD_CONFIG_DIR -> config-dir), "" when the
// name does not start with EnvPrefix.
func envFlag(envName string) string {
	rest, ok := strings.CutPrefix(envName, EnvPrefix)
	if !ok {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
}

// serveFlags is the flag set of the serve command, writing into c.
func serveFlags(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("cdpd", flag.ContinueOnError)
	fs.StringVar(&c.ConfigFile, "config-file", "", "YAML file of daemon settings (keys are these flag names, e.g. state-dir: /var/lib/cdpd); the environment and the command line override it")
	fs.StringVar(&c.ConfigDir, "config-dir", "", "directory of pipeline YAML files (required)")
	fs.StringVar(&c.StateDir, "state-dir", DefaultStateDir, "directory for checkpoints and the embedded control plane's database")
	fs.StringVar(&c.HTTPAddr, "http-addr", DefaultHTTPAddr, "address of the HTTP server (/metrics, /healthz, /readyz, /api/v1)")
	fs.StringVar(&c.Instance, "instance", "", "name of this cdpd (INSTANCE in flowctl status; default: the host name). Unsharded, it also prefixes every service id, so that several cdpd share one control plane; a sharded fleet's ids are not prefixed (pipelines move between replicas)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", DefaultHeartbeatInterval, "interval of each pipeline's heartbeat to the control plane")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "hard deadline of a pipeline's drain on remove, update and shutdown")
	fs.DurationVar(&c.StuckAfter, "stuck-after", DefaultStuckAfter, "report a pipeline degraded when one processor or consumer call on one ledger runs longer than this")
	c.LedgerMemory = DefaultLedgerMemory
	fs.Var((*bytesize.Size)(&c.LedgerMemory), "ledger-memory", "memory for ledgers in flight over all pipelines (raw, and decoded values), e.g. 256MiB, 1GiB; readers wait for it (back pressure); 0: unlimited")
	fs.BoolVar(&c.Strict, "strict", false, "reject pipelines with config warnings (keys a component does not know, no consumers) instead of running them")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ on --http-addr (CPU, heap, goroutines, execution trace)")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&c.ShardCount, "shard-count", 1, "number of cdpd replicas sharing the config directory; each pipeline runs on exactly one of them (rendezvous hashing of its name)")
	fs.StringVar(&c.ShardIndex, "shard-index", "0", "this replica's shard, 0 .. shard-count-1, or auto: the StatefulSet pod index from $"+EnvPodIndex+" (the apps.kubernetes.io/pod-index label through the downward API), else the trailing -K of the host name")
	fs.StringVar(&c.EmbeddedControlPlane, "embedded-control-plane", "", "serve a flowctl-compatible control plane inside cdpd at this address (e.g. 127.0.0.1:8080) and register with it; with FLOWCTL_TLS_CERT and FLOWCTL_TLS_KEY it serves TLS with them (mutual TLS with FLOWCTL_TLS_CA)")
	fs.BoolVar(&c.InsecureControlPlane, "insecure-control-plane", false, "allow --embedded-control-plane on a non-loopback address without TLS (anyone who reaches it can read the registry and register services)")
	c.EmbeddedHistoryMaxBytes, c.EmbeddedHistoryTotalBytes = server.DefaultHistoryMaxBytes, server.DefaultHistoryTotalBytes
	fs.Var(&c.EmbeddedHistoryMaxBytes, "embedded-history-max-bytes", "the embedded control plane's heartbeat history per service, by size (oldest samples dropped first)")
	fs.Var(&c.EmbeddedHistoryTotalBytes, "embedded-history-total-bytes", "the embedded control plane's heartbeat history in all, by size: bounds its history file (state dir) and its memory")
	fs.DurationVar(&c.EmbeddedServiceExpiry, "embedded-service-expiry", server.DefaultServiceExpiry, "the embedded control plane removes services silent for this long, with their history")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, `Usage: cdpd --config-dir DIR [flags]     run the pipelines of DIR
       cdpd validate [--json] [--strict] [--shard-count N] DIR
                                        check a config directory
       cdpd shards [--json] --shard-count N [--from M] DIR
                                        print which shard runs each pipeline (and what moves from M shards)
       cdpd components [--json]         list the component types, their keys and defaults
       cdpd version [--json]            print the version
       cdpd help [COMMAND]              print the usage of cdpd or of COMMAND

Flags (each also settable as CDPD_<FLAG>, and as <flag>: in the --config-file YAML;
the command line wins over the environment, which wins over the file):
`)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nEnvironment: %s (unset: no control plane), %s, %s, %s, CDP_PIPELINE_NAME, %s (--shard-index auto)\n",
			contract.EnvEndpoint, contract.EnvTLSCert, contract.EnvTLSKey, contract.EnvTLSCA, EnvPodIndex)
	}
	return fs
}

// parseFlags parses the serve command line and returns the configuration. koanf merges the
// --config-file YAML and the CDPD_* environment (environ is os.Environ() outside tests; the
// environment wins); the result is applied over the flag defaults, except for the flags given
// on the command line, which win over both. A help request is flag.ErrHelp (nothing printed:
// the caller prints the usage).
func parseFlags(args []string, environ []string) (Config, error) {
	var c Config
	fs := serveFlags(&c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	k := koanf.New(".")
	from := map[string]string{} // setting -> where its value comes from, for error messages
	merge := func(layer *koanf.Koanf, where func(key string) string) error {
		for _, key := range layer.Keys() {
			from[key] = where(key)
		}
		return k.Merge(layer)
	}

	// The environment is read first only to learn CDPD_CONFIG_FILE; it is merged after the file.
	envLayer := koanf.New(".")
	if err := envLayer.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			key := envFlag(name)
			if fs.Lookup(key) == nil {
				return "", nil // not a cdpd flag (CDPD_REQUIRE_POSTGRES and the like belong to tests)
			}
			return key, value
		},
	}), nil); err != nil {
		return c, fmt.Errorf("reading the environment: %w", err)
	}
	if !onCommandLine["config-file"] {
		c.ConfigFile = envLayer.String("config-file")
	}
	if c.ConfigFile != "" {
		fileLayer := koanf.New(".")
		if err := fileLayer.Load(file.Provider(c.ConfigFile), yaml.Parser()); err != nil {
			return c, fmt.Errorf("config file %s: %w", c.ConfigFile, err)
		}
		for _, key := range fileLayer.Keys() {
			switch fileLayer.Get(key).(type) {
			case map[string]any, []any:
				return c, fmt.Errorf("config file %s: %s: want a single value", c.ConfigFile, key)
			}
			if fs.Lookup(key) == nil || key == "config-file" {
				return c, fmt.Errorf("config file %s: unknown setting %q (the settings are the flag names of cdpd --help)", c.ConfigFile, key)
			}
		}
		if err := merge(fileLayer, func(key string) string { return "config file " + c.ConfigFile + ": " + key }); err != nil {
			return c, err
		}
	}
	if err := merge(envLayer, func(key string) string { return "environment " + FlagEnv(key) }); err != nil {
		return c, err
	}
	// What the command line set is already in c; the other settings are applied through the
	// flags, so that they are parsed and checked exactly as the flags are.
	for _, key := range k.Keys() {
		if onCommandLine[key] {
			continue
		}
		if err := fs.Set(key, k.String(key)); err != nil {
			return c, fmt.Errorf("%s: %w", from[key], err)
		}
	}

	lookup := envLookup(environ)
	flowctl := contract.ReadEnv(lookup)
	c.FlowctlEndpoint = flowctl.Endpoint
	c.TLSCert, c.TLSKey, c.TLSCA = flowctl.TLS.Cert, flowctl.TLS.Key, flowctl.TLS.CA
	c.PipelineName = lookup("CDP_PIPELINE_NAME")
	if err := c.validate(); err != nil {
		return c, err
	}
	spec, err := resolveShard(c.ShardCount, c.ShardIndex, lookup, os.Hostname)
	if err != nil {
		return c, err
	}
	c.Shard = spec
	return c, nil
}

// ParseConfig is the configuration cdpd would run with, given its command line (without the
// program name) and environment ("NAME=value" entries): flags over CDPD_* over --config-file
// over the defaults, the shard resolved. The deploy tests check manifests with it.
func ParseConfig(args, environ []string) (Config, error) { return parseFlags(args, environ) }

// envLookup returns the value of a variable of environ ("" when unset).
func envLookup(environ []string) func(string) string {
	return func(name string) string {
		v := ""
		for _, kv := range environ {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val // the last one wins, as in os.Getenv
			}
		}
		return v
	}
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
	if c.EmbeddedControlPlane != "" {
		errs = append(errs, c.checkEmbeddedPlane()...)
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
	if c.ShardCount < 1 {
		errs = append(errs, fmt.Errorf("--shard-count must be at least 1, got %d", c.ShardCount))
	}
	return errors.Join(errs...)
}

// checkEmbeddedPlane applies the address rule of the embedded control plane: it serves TLS
// with the client's certificate and key (FLOWCTL_TLS_CERT, FLOWCTL_TLS_KEY; mutual TLS with
// FLOWCTL_TLS_CA), since cdpd's own client speaks TLS to it as soon as any of them is set; and
// without TLS it binds only to loopback unless --insecure-control-plane says otherwise, as the
// HTTP API keeps to loopback by default.
func (c Config) checkEmbeddedPlane() []error {
	var errs []error
	tls := contract.TLSFiles{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA}
	if tls.Enabled() && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("--embedded-control-plane serves TLS with %s and %s (cdpd's client speaks TLS to it since %s is set): set both",
			contract.EnvTLSCert, contract.EnvTLSKey, setTLSNames(c)))
	}
	if !tls.Enabled() && !c.InsecureControlPlane && !loopback(c.EmbeddedControlPlane) {
		errs = append(errs, fmt.Errorf("--embedded-control-plane %q is not a loopback address and %s / %s are not set: the control plane would serve anyone in plaintext; set them, or pass --insecure-control-plane",
			c.EmbeddedControlPlane, contract.EnvTLSCert, contract.EnvTLSKey))
	}
	if c.EmbeddedHistoryMaxBytes < server.MinHistoryBytes || c.EmbeddedHistoryTotalBytes < c.EmbeddedHistoryMaxBytes {
		errs = append(errs, fmt.Errorf("--embedded-history-max-bytes must be at least %s and at most --embedded-history-total-bytes",
			bytesize.Size(server.MinHistoryBytes)))
	}
	if c.EmbeddedServiceExpiry <= server.HeartbeatTTLFor(c.HeartbeatInterval) {
		errs = append(errs, fmt.Errorf("--embedded-service-expiry %s must be longer than the heartbeat TTL (%s)",
			c.EmbeddedServiceExpiry, server.HeartbeatTTLFor(c.HeartbeatInterval)))
	}
	return errs
}

func setTLSNames(c Config) string {
	var set []string
	for name, v := range map[string]string{contract.EnvTLSCert: c.TLSCert, contract.EnvTLSKey: c.TLSKey, contract.EnvTLSCA: c.TLSCA} {
		if v != "" {
			set = append(set, name)
		}
	}
	sort.Strings(set)
	return strings.Join(set, ", ")
}

// loopback reports whether a listen address binds to loopback only: localhost, 127.0.0.0/8 or
// ::1 (an empty host or 0.0.0.0 binds every interface).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// instanceName is this cdpd's name in the fleet: --instance, else the host name (the pod name
// of a StatefulSet replica).
func (c Config) instanceName() string {
	if c.Instance != "" {
		return c.Instance
	}
	return hostname()
}

// hostname for the registration metadata.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
