package source

import (
	"errors"
	"fmt"
	"strings"
)

// RPC methods a CDP RPC source may name (rpc_method). cdpd's RPC sources always read whole
// ledgers with getLedgers; see the package doc for what the others mean here.
const (
	rpcMethodLedgers = "getLedgers"
	rpcMethodEvents  = "getEvents"
	rpcMethodLatest  = "getLatestLedger"
)

// rpcConfig is RPCSourceAdapter's config: cdpd's keys and upstream CDP's spellings of them.
type rpcConfig struct {
	RPCEndpoint string `mapstructure:"rpc_endpoint"`
	RPCURL      string `mapstructure:"rpc_url"` // upstream's name for rpc_endpoint
	StartLedger uint32 `mapstructure:"start_ledger"`
	EndLedger   uint32 `mapstructure:"end_ledger"`
	// BufferSize and BatchSize (upstream's name) are ledgers per getLedgers request.
	BufferSize        uint32 `mapstructure:"buffer_size"`
	BatchSize         uint32 `mapstructure:"batch_size"`
	Network           string `mapstructure:"network"`
	NetworkPassphrase string `mapstructure:"network_passphrase"`
	// APIKey is sent as "Authorization: Api-Key <key>"; AuthHeader is sent verbatim as the
	// Authorization header (upstream's key). Secrets: never in an error or a log.
	APIKey     string `mapstructure:"api_key"`
	AuthHeader string `mapstructure:"auth_header"`
	RPCMethod  string `mapstructure:"rpc_method"`
	// Accepted for upstream compatibility and validated, not applied (see the package doc).
	PollInterval        any              `mapstructure:"poll_interval" cdpd:"ignored: the SDK's RPC backend polls the tip every 2 s"`
	PollIntervalSeconds any              `mapstructure:"poll_interval_seconds" cdpd:"ignored: the SDK's RPC backend polls the tip every 2 s"`
	Format              string           `mapstructure:"format"`
	XDRFormat           string           `mapstructure:"xdrFormat" cdpd:"ignored: the source emits whole ledgers; GetEventsRPC takes xdrFormat in its own config"`
	Filters             []rpcEventFilter `mapstructure:"filters" cdpd:"ignored: the source emits whole ledgers; move the filters to GetEventsRPC's config, which applies them"`
	Pagination          *rpcPagination   `mapstructure:"pagination" cdpd:"ignored: the source reads whole ledgers with getLedgers"`
}

// SetDefaults implements component.Defaulter (batch_size's default, 10, stays in settings: it
// has two spellings).
func (c *rpcConfig) SetDefaults() { c.RPCMethod = rpcMethodLedgers }

// rpcEventFilter is one getEvents filter as upstream CDP files write it.
type rpcEventFilter struct {
	Type        string     `mapstructure:"type"`
	ContractIDs []string   `mapstructure:"contractIds"`
	Topics      [][]string `mapstructure:"topics"`
}

// rpcPagination is the getEvents pagination upstream CDP files write.
type rpcPagination struct {
	Limit  uint32 `mapstructure:"limit"`
	Cursor string `mapstructure:"cursor"`
}

// sorobanConfig is SorobanSourceAdapter's config: the RPC source's keys plus upstream's own
// checkpointing keys, which cdpd accepts and does not use (the host checkpoints every pipeline).
type sorobanConfig struct {
	rpcConfig          `mapstructure:",squash"`
	CheckpointDir      string `mapstructure:"checkpoint_dir" cdpd:"ignored: cdpd checkpoints every pipeline under --state-dir"`
	CheckpointInterval uint32 `mapstructure:"checkpoint_interval" cdpd:"ignored: cdpd checkpoints every pipeline under --state-dir"`
}

// rpcSettings is a validated RPC source config.
type rpcSettings struct {
	endpoint   string
	authHeader string // the Authorization header's value, "" for none
	method     string
	start, end uint32
	bufferSize uint32
	ignored    []string // keys given that the source does not apply (names only)
}

// settings validates c. Errors never quote a value: the endpoint may carry a token, and
// auth_header and api_key are secrets.
func (c *rpcConfig) settings() (rpcSettings, error) {
	var s rpcSettings
	switch {
	case c.RPCEndpoint == "" && c.RPCURL == "":
		return s, errors.New("rpc_url (or rpc_endpoint) is required")
	case c.RPCEndpoint != "" && c.RPCURL != "" && c.RPCEndpoint != c.RPCURL:
		return s, errors.New("rpc_url and rpc_endpoint name different servers: give one")
	case c.RPCEndpoint != "":
		s.endpoint = c.RPCEndpoint
	default:
		s.endpoint = c.RPCURL
	}
	key := "rpc_url"
	if c.RPCEndpoint != "" {
		key = "rpc_endpoint"
	}
	if err := validateHTTPURL(key, s.endpoint); err != nil {
		return s, err
	}
	if err := validateRange(c.StartLedger, c.EndLedger); err != nil {
		return s, err
	}
	s.start, s.end = c.StartLedger, c.EndLedger
	if c.Network != "" || c.NetworkPassphrase != "" {
		if _, err := Passphrase(c.Network, c.NetworkPassphrase); err != nil {
			return s, err
		}
	}

	switch {
	case c.APIKey != "" && c.AuthHeader != "":
		return s, errors.New("give auth_header or api_key, not both")
	case c.AuthHeader != "":
		if strings.ContainsAny(c.AuthHeader, "\r\n") {
			return s, errors.New("auth_header must be one line")
		}
		s.authHeader = c.AuthHeader
	case c.APIKey != "":
		if strings.ContainsAny(c.APIKey, "\r\n") {
			return s, errors.New("api_key must be one line")
		}
		s.authHeader = c.APIKey
		if !strings.HasPrefix(s.authHeader, "Api-Key ") {
			s.authHeader = "Api-Key " + s.authHeader
		}
	}

	switch {
	case c.BufferSize != 0 && c.BatchSize != 0 && c.BufferSize != c.BatchSize:
		return s, fmt.Errorf("batch_size %d and buffer_size %d differ: they are the same setting, give one", c.BatchSize, c.BufferSize)
	case c.BatchSize != 0:
		s.bufferSize = c.BatchSize
	case c.BufferSize != 0:
		s.bufferSize = c.BufferSize
	default:
		s.bufferSize = defaultRPCBufferSize
	}

	switch m := strings.TrimSpace(c.RPCMethod); m {
	case "", rpcMethodLedgers:
		s.method = rpcMethodLedgers
	case rpcMethodEvents, rpcMethodLatest:
		s.method = m
	default:
		return s, fmt.Errorf("rpc_method %q is not a ledger stream: cdpd's RPC sources read whole ledgers (%s; %s and %s are accepted and read ledgers too, see the source's doc)",
			c.RPCMethod, rpcMethodLedgers, rpcMethodEvents, rpcMethodLatest)
	}

	if f := strings.ToLower(c.Format); f != "" && f != "base64" && f != "xdr" {
		return s, fmt.Errorf("format %q is not supported: the source reads base64 XDR", c.Format)
	}
	switch f := strings.ToLower(strings.TrimSpace(c.XDRFormat)); f {
	case "", "json", "base64", "xdr":
	default:
		return s, fmt.Errorf("xdrFormat %q is not one of json, base64", c.XDRFormat)
	}
	for _, k := range []struct {
		name string
		v    any
	}{{"poll_interval", c.PollInterval}, {"poll_interval_seconds", c.PollIntervalSeconds}} {
		if _, _, err := parseSeconds(k.name, k.v); err != nil {
			return s, err
		}
	}
	for i, f := range c.Filters {
		switch f.Type {
		case "", "contract", "system":
		default:
			return s, fmt.Errorf("filters[%d].type %q is not one of contract, system", i, f.Type)
		}
	}
	for name, given := range map[string]bool{
		"filters": len(c.Filters) > 0, "pagination": c.Pagination != nil, "xdrFormat": c.XDRFormat != "",
		"poll_interval": c.PollInterval != nil, "poll_interval_seconds": c.PollIntervalSeconds != nil,
	} {
		if given {
			s.ignored = append(s.ignored, name)
		}
	}
	return s, nil
}

// settings validates a SorobanSourceAdapter config.
func (c *sorobanConfig) settings() (rpcSettings, error) {
	s, err := c.rpcConfig.settings()
	if err != nil {
		return s, err
	}
	if c.CheckpointDir != "" {
		s.ignored = append(s.ignored, "checkpoint_dir")
	}
	if c.CheckpointInterval != 0 {
		s.ignored = append(s.ignored, "checkpoint_interval")
	}
	return s, nil
}

// secretsOf lists the strings an RPC source must never show: the Authorization value (and
// its token after the scheme) and the endpoint's password and query values.
func secretsOf(s rpcSettings) []string {
	var out []string
	if s.authHeader != "" {
		out = append(out, s.authHeader)
		if _, tok, ok := strings.Cut(s.authHeader, " "); ok {
			out = append(out, strings.TrimSpace(tok))
		}
	}
	return append(out, urlSecrets(s.endpoint)...)
}
