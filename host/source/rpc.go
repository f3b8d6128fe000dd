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
// RPC ledger stream. RPCSourceAdapter and SorobanSourceAdapter are both this source.
type rpcSource struct {
	typeName    string
	env         component.Env
	set         rpcSettings
	redact      redactor
	tipInterval time.Duration
	stats       *sourceStats
}

var (
	_ component.Source        = (*rpcSource)(nil)
	_ component.StatsReporter = (*rpcSource)(nil)
)

// NewRPC is RPCSourceAdapter.
func NewRPC(c *rpcConfig, env component.Env) (component.Source, error) {
	set, err := c.settings()
	if err != nil {
		return nil, err
	}
	return newRPCSource("RPCSourceAdapter", set, env), nil
}

// NewSoroban is SorobanSourceAdapter: upstream's getLedgers RPC source, here the RPC source
// with upstream's checkpoint_dir and checkpoint_interval accepted (the host checkpoints).
func NewSoroban(c *sorobanConfig, env component.Env) (component.Source, error) {
	set, err := c.settings()
	if err != nil {
		return nil, err
	}
	return newRPCSource("SorobanSourceAdapter", set, env), nil
}

func newRPCSource(typeName string, set rpcSettings, env component.Env) *rpcSource {
	return &rpcSource{typeName: typeName, env: env, set: set, redact: newRedactor(secretsOf(set)),
		tipInterval: defaultTipInterval, stats: newSourceStats(env.Now)}
}

// Range implements component.Source.
func (s *rpcSource) Range() (start, end uint32) { return s.set.start, s.set.end }

// Stats implements component.StatsReporter.
func (s *rpcSource) Stats() map[string]float64 { return s.stats.values() }

// Close implements component.Source.
func (s *rpcSource) Close() error { return nil }

// authTransport sets the Authorization header of every request (auth_header verbatim, or
// "Api-Key <api_key>").
type authTransport struct {
	value string
	rt    http.RoundTripper
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", t.value)
	return t.rt.RoundTrip(r)
}

// Run implements component.Source.
func (s *rpcSource) Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error {
	end := s.set.end
	rng, from, ok := runRange(s.set.start, end, from)
	if !ok {
		return nil
	}
	s.stats.register(s.env.Metrics, s.env.Logger)
	s.stats.span(from, end)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	if s.set.authHeader != "" {
		hc.Transport = authTransport{value: s.set.authHeader, rt: transport}
	}

	tipClient := rpcclient.NewClient(s.set.endpoint, hc)
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.stats.pollTip(pctx, s.tipInterval, s.env.Logger, func(ctx context.Context) (uint32, error) {
			r, err := tipClient.GetLatestLedger(ctx)
			return r.Sequence, s.redact.err(err)
		})
	}()
	defer func() {
		stop()
		wg.Wait()
		_ = tipClient.Close()
	}()

	s.env.Logger.Info("source streaming", "type", s.typeName, "from", from, "to", end,
		"rpc_method", s.set.method, "buffer_size", s.set.bufferSize)
	if len(s.set.ignored) > 0 {
		// Key names only, never their values.
		s.env.Logger.Warn("source keys accepted but not applied: the source emits whole ledgers read with getLedgers, polling every 2 s at the tip; getEvents filters belong on the GetEventsRPC processor",
			"type", s.typeName, "keys", strings.Join(s.set.ignored, ","))
	}
	ls := ledgerbackend.NewRPCStream(ledgerbackend.RPCLedgerBackendOptions{
		RPCServerURL: s.set.endpoint, BufferSize: s.set.bufferSize, HttpClient: hc,
	}, sdkLogger())
	if err := stream(ctx, ls, rng, end != 0, s.env.Metrics, s.env, s.stats, emit); err != nil {
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return s.redact.err(fmt.Errorf("%s: streaming ledgers from %d: %w", s.typeName, from, err))
	}
	return nil
}
