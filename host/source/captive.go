package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/stellar/go-stellar-sdk/historyarchive"
	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/support/storage"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// captiveConfig is CaptiveCoreInboundAdapter's config: upstream CDP's keys (network,
// history_archive_urls, core_binary_path; start_ledger, which upstream ignored) plus cdpd's
// end_ledger, network_passphrase, captive_core_toml_path and storage_path.
type captiveConfig struct {
	Network            string   `mapstructure:"network"`
	NetworkPassphrase  string   `mapstructure:"network_passphrase"`
	HistoryArchiveURLs []string `mapstructure:"history_archive_urls"`
	CoreBinaryPath     string   `mapstructure:"core_binary_path"`
	// CaptiveCoreTomlPath is a stellar-core config file for captive core; without one the SDK's
	// default for pubnet, testnet or futurenet is used (ledgerbackend's embedded configs).
	CaptiveCoreTomlPath string `mapstructure:"captive_core_toml_path"`
	// StoragePath is where captive core keeps its buckets (default: the pipeline's state
	// directory).
	StoragePath string `mapstructure:"storage_path"`
	StartLedger uint32 `mapstructure:"start_ledger"`
	EndLedger   uint32 `mapstructure:"end_ledger"`
}

// captiveSource streams ledgers from a captive stellar-core with the SDK's captive-core stream
// (ledgerbackend.NewCaptiveCoreStream, which builds the backend with ledgerbackend.NewCaptive).
type captiveSource struct {
	env        component.Env
	c          captiveConfig
	passphrase string
	defaultCfg []byte // the SDK's config for the network, when no toml path is given
	redact     redactor
	spec       string // the keys the start is resolved from (pin.go)

	mu         sync.Mutex
	start, end uint32
	started    bool
	stats      *sourceStats
}

var (
	_ component.Source        = (*captiveSource)(nil)
	_ component.Starter       = (*captiveSource)(nil)
	_ component.StatsReporter = (*captiveSource)(nil)
)

// NewCaptiveCore is CaptiveCoreInboundAdapter. It only checks the config: the binary is looked
// for in Start and run in Run.
func NewCaptiveCore(c *captiveConfig, env component.Env) (component.Source, error) {
	passphrase, err := Passphrase(c.Network, c.NetworkPassphrase)
	if err != nil {
		return nil, err
	}
	if len(c.HistoryArchiveURLs) == 0 {
		return nil, errors.New("history_archive_urls is required: the network's history archives (http or https URLs)")
	}
	var secrets []string
	for i, u := range c.HistoryArchiveURLs {
		if err := validateHTTPURL(fmt.Sprintf("history_archive_urls[%d]", i), u); err != nil {
			return nil, err
		}
		secrets = append(secrets, urlSecrets(u)...)
	}
	if strings.TrimSpace(c.CoreBinaryPath) == "" {
		return nil, errors.New("core_binary_path is required: the stellar-core binary captive core runs")
	}
	s := &captiveSource{env: env, c: *c, passphrase: passphrase, redact: newRedactor(secrets),
		start: c.StartLedger, end: c.EndLedger, stats: newSourceStats(env.Now)}
	if c.CaptiveCoreTomlPath == "" {
		switch passphrase {
		case network.PublicNetworkPassphrase:
			s.defaultCfg = ledgerbackend.PubnetDefaultConfig
		case network.TestNetworkPassphrase:
			s.defaultCfg = ledgerbackend.TestnetDefaultConfig
		case network.FutureNetworkPassphrase:
			s.defaultCfg = ledgerbackend.FuturenetDefaultConfig
		default:
			return nil, errors.New("captive_core_toml_path is required for a network other than pubnet, testnet and futurenet")
		}
	}
	switch {
	case c.StartLedger != 0:
		if err := validateRange(c.StartLedger, c.EndLedger); err != nil {
			return nil, err
		}
	case c.EndLedger != 0:
		return nil, errors.New("end_ledger needs a start_ledger (without one the source starts at the network's latest checkpoint and follows it)")
	}
	s.spec = fmt.Sprintf("captive-core start_ledger=%d passphrase=%q", c.StartLedger, passphrase)
	return s, nil
}

// urlSecrets lists the password and query values of a URL.
func urlSecrets(raw string) []string {
	var out []string
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	if p, ok := u.User.Password(); ok {
		out = append(out, p)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return out
}

// Range implements component.Source. Without start_ledger the start is known after Start.
func (s *captiveSource) Range() (start, end uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start, s.end
}

// Stats implements component.StatsReporter.
func (s *captiveSource) Stats() map[string]float64 { return s.stats.values() }

// Close implements component.Source (the stream stops captive core when Run returns).
func (s *captiveSource) Close() error { return nil }

// Start checks that the stellar-core binary is there and executable, and without start_ledger
// finds the network's latest checkpoint ledger in its history archives (as upstream did),
// pinned in the state directory so a restart resumes from its checkpoint.
func (s *captiveSource) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if err := checkBinary(s.c.CoreBinaryPath); err != nil {
		return err
	}
	if s.start == 0 {
		start, err := s.latestCheckpoint(ctx)
		if err != nil {
			return s.redact.err(err)
		}
		s.start = start
	}
	s.stats.register(s.env.Metrics, s.env.Logger)
	s.started = true
	return nil
}

// checkBinary says clearly why the stellar-core binary cannot run (the SDK's own error, from
// running "stellar-core version", is an exec error in the middle of another message).
func checkBinary(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("CaptiveCoreInboundAdapter: the stellar-core binary %s does not exist: install stellar-core there or point core_binary_path at it", path)
	case err != nil:
		return fmt.Errorf("CaptiveCoreInboundAdapter: the stellar-core binary %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("CaptiveCoreInboundAdapter: the stellar-core binary %s is a directory", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("CaptiveCoreInboundAdapter: the stellar-core binary %s is not executable", path)
	}
	return nil
}

func (s *captiveSource) latestCheckpoint(ctx context.Context) (uint32, error) {
	p, ok, err := loadPin(s.env.StateDir, s.spec)
	if err != nil {
		return 0, err
	}
	if ok {
		return p.Start, nil
	}
	archive, err := historyarchive.NewArchivePool(s.c.HistoryArchiveURLs, historyarchive.ArchiveOptions{
		NetworkPassphrase: s.passphrase,
		ConnectOptions:    storage.ConnectOptions{Context: ctx, UserAgent: "cdpd"},
	})
	if err != nil {
		return 0, fmt.Errorf("CaptiveCoreInboundAdapter: connecting to the history archives: %w", err)
	}
	has, err := archive.GetRootHAS()
	if err != nil {
		return 0, fmt.Errorf("CaptiveCoreInboundAdapter: reading the history archives' latest state: %w", err)
	}
	if has.CurrentLedger < 2 {
		return 0, fmt.Errorf("CaptiveCoreInboundAdapter: the history archives' latest ledger is %d", has.CurrentLedger)
	}
	s.env.Logger.Info("captive core starts at the network's latest checkpoint", "start_ledger", has.CurrentLedger)
	if err := savePin(s.env.StateDir, pinned{Spec: s.spec, Start: has.CurrentLedger, ResolvedAt: s.stats.now().UTC()}); err != nil {
		return 0, err
	}
	return has.CurrentLedger, nil
}

// Run implements component.Source: captive core replays or follows the network from `from`.
func (s *captiveSource) Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	start, end := s.Range()
	rng, from, ok := runRange(start, end, from)
	if !ok {
		return nil
	}
	s.stats.span(from, end)

	params := ledgerbackend.CaptiveCoreTomlParams{
		NetworkPassphrase: s.passphrase, HistoryArchiveURLs: s.c.HistoryArchiveURLs, CoreBinaryPath: s.c.CoreBinaryPath,
	}
	var toml *ledgerbackend.CaptiveCoreToml
	var err error
	if s.c.CaptiveCoreTomlPath != "" {
		toml, err = ledgerbackend.NewCaptiveCoreTomlFromFile(s.c.CaptiveCoreTomlPath, params)
	} else {
		toml, err = ledgerbackend.NewCaptiveCoreTomlFromData(s.defaultCfg, params)
	}
	if err != nil {
		return s.redact.err(fmt.Errorf("CaptiveCoreInboundAdapter: building the captive core config: %w", err))
	}
	storagePath := s.c.StoragePath
	if storagePath == "" {
		storagePath = s.env.StateDir
	}
	s.env.Logger.Info("source streaming", "type", "CaptiveCoreInboundAdapter", "from", from, "to", end)
	ls := ledgerbackend.NewCaptiveCoreStream(ledgerbackend.CaptiveCoreConfig{
		BinaryPath: s.c.CoreBinaryPath, NetworkPassphrase: s.passphrase, HistoryArchiveURLs: s.c.HistoryArchiveURLs,
		UserAgent: "cdpd", Toml: toml, StoragePath: storagePath, Log: sdkLogger(),
	}, sdkLogger())
	if err := stream(ctx, ls, rng, end != 0, s.env.Metrics, s.env, s.stats, emit); err != nil {
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return s.redact.err(fmt.Errorf("CaptiveCoreInboundAdapter: streaming ledgers from %d: %w", from, err))
	}
	return nil
}
