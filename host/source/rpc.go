package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/clients/rpcclient"
	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// rpcSource streams ledgers from a Stellar RPC server (getHealth + getLedgers) with the SDK's
// RPC ledger stream.
type rpcSource struct {
	env         component.Env
	endpoint    string
	apiKey      string
	start, end  uint32
	bufferSize  uint32
	tipInterval time.Duration
	stats       *sourceStats
}

var (
	_ component.Source        = (*rpcSource)(nil)
	_ component.StatsReporter = (*rpcSource)(nil)
)

// NewRPC is RPCSourceAdapter.
func NewRPC(c *rpcConfig, env component.Env) (component.Source, error) {
	if c.RPCEndpoint == "" {
		return nil, errors.New("rpc_endpoint is required")
	}
	if err := validateHTTPURL("rpc_endpoint", c.RPCEndpoint); err != nil {
		return nil, err
	}
	if err := validateRange(c.StartLedger, c.EndLedger); err != nil {
		return nil, err
	}
	if c.Network != "" || c.NetworkPassphrase != "" {
		if _, err := Passphrase(c.Network, c.NetworkPassphrase); err != nil {
			return nil, err
		}
	}
	if f := strings.ToLower(c.Format); f != "" && f != "base64" && f != "xdr" {
		return nil, fmt.Errorf("format %q is not supported: the source reads base64 XDR", c.Format)
	}
	if _, _, err := parseSeconds("poll_interval", c.PollInterval); err != nil {
		return nil, err
	}
	s := &rpcSource{
		env: env, endpoint: c.RPCEndpoint, apiKey: c.APIKey,
		start: c.StartLedger, end: c.EndLedger, bufferSize: c.BufferSize,
		tipInterval: defaultTipInterval, stats: newSourceStats(env.Now),
	}
	if s.bufferSize == 0 {
		s.bufferSize = defaultRPCBufferSize
	}
	return s, nil
}

// Range implements component.Source.
func (s *rpcSource) Range() (start, end uint32) { return s.start, s.end }

// Stats implements component.StatsReporter.
func (s *rpcSource) Stats() map[string]float64 { return s.stats.values() }

// Close implements component.Source.
func (s *rpcSource) Close() error { return nil }

// apiKeyTransport sends api_key as the upstream CDP RPC adapter does ("Authorization: Api-Key <key>").
type apiKeyTransport struct {
	key string
	rt  http.RoundTripper
}

func (t apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	v := t.key
	if !strings.HasPrefix(v, "Api-Key ") {
		v = "Api-Key " + v
	}
	r.Header.Set("Authorization", v)
	return t.rt.RoundTrip(r)
}

// Run implements component.Source.
func (s *rpcSource) Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error {
	if from == 0 {
		from = s.start
	}
	if s.end != 0 && from > s.end {
		return nil
	}
	s.stats.register(s.env.Metrics, s.env.Logger)
	s.stats.base.Store(from - 1)
	rng := ledgerbackend.UnboundedRange(from)
	if s.end != 0 {
		rng = ledgerbackend.BoundedRange(from, s.end)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	if s.apiKey != "" {
		hc.Transport = apiKeyTransport{key: s.apiKey, rt: transport}
	}

	tipClient := rpcclient.NewClient(s.endpoint, hc)
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.stats.pollTip(pctx, s.tipInterval, s.env.Logger, func(ctx context.Context) (uint32, error) {
			r, err := tipClient.GetLatestLedger(ctx)
			return r.Sequence, err
		})
	}()
	defer func() {
		stop()
		wg.Wait()
		_ = tipClient.Close()
	}()

	s.env.Logger.Info("source streaming", "type", "RPCSourceAdapter", "from", from, "to", s.end, "buffer_size", s.bufferSize)
	ls := ledgerbackend.NewRPCStream(ledgerbackend.RPCLedgerBackendOptions{
		RPCServerURL: s.endpoint, BufferSize: s.bufferSize, HttpClient: hc,
	}, sdkLogger())
	if err := stream(ctx, ls, rng, s.end != 0, s.env.Metrics, s.env, s.stats, emit); err != nil {
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return fmt.Errorf("RPCSourceAdapter: streaming ledgers from %d: %w", from, err)
	}
	return nil
}
