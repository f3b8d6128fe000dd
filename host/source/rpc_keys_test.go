package source

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// Upstream CDP's RPC source configs (the shapes of its config/base and config/examples files)
// decode strictly (no unknown key) and mean what the package doc says.
func TestRPCUpstreamConfigs(t *testing.T) {
	allTopics := []any{[]any{"*", "*", "*", "*"}}
	cases := []struct {
		name     string
		typeName string
		cfg      map[string]any
		method   string
		auth     string
		buffer   uint32
		ignored  []string
	}{
		{"contract_events_rpc", "RPCSourceAdapter", map[string]any{"rpc_url": "https://rpc.example.org", "auth_header": "",
			"start_ledger": 1454282, "poll_interval": 10, "batch_size": 100, "rpc_method": "getEvents",
			"filters": []any{map[string]any{"type": "contract", "contractIds": nil, "topics": allTopics}}},
			rpcMethodEvents, "", 100, []string{"filters", "poll_interval"}},
		{"usdc_transfers_rpc", "RPCSourceAdapter", map[string]any{"rpc_url": "https://rpc.example.org", "auth_header": "",
			"start_ledger": 2000000, "poll_interval": 5, "batch_size": 100, "rpc_method": "getEvents",
			"filters": []any{map[string]any{"type": "contract",
				"contractIds": []any{"CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"},
				"topics":      []any{[]any{"AAAADwAAAAh0cmFuc2Zlcg==", "*", "*", "*"}}}},
			"pagination": map[string]any{"limit": 5000}, "xdrFormat": "json"},
			rpcMethodEvents, "", 100, []string{"filters", "pagination", "poll_interval", "xdrFormat"}},
		{"parquet-archival-s3 (no rpc_method)", "RPCSourceAdapter", map[string]any{"rpc_url": "https://rpc.example.org",
			"start_ledger": 1000000, "poll_interval_seconds": 5},
			rpcMethodLedgers, "", defaultRPCBufferSize, []string{"poll_interval_seconds"}},
		{"rpc-batch-mode", "SorobanSourceAdapter", map[string]any{"rpc_url": "https://rpc.example.org",
			"auth_header": "Api-Key YOUR_API_KEY", "start_ledger": 1000000, "end_ledger": 2000000, "batch_size": 100,
			"poll_interval": 0, "rpc_method": "getLedgers", "checkpoint_dir": "/data/checkpoints/backfill",
			"checkpoint_interval": 1000},
			rpcMethodLedgers, "Api-Key YOUR_API_KEY", 100, []string{"checkpoint_dir", "checkpoint_interval", "poll_interval"}},
		{"kwickbit (streaming, bearer token)", "SorobanSourceAdapter", map[string]any{"rpc_url": "https://rpc.example.org",
			"auth_header": "Bearer t0ken", "start_ledger": "1281900", "batch_size": "10", "poll_interval": "5"},
			rpcMethodLedgers, "Bearer t0ken", 10, []string{"poll_interval"}},
		{"cdpd spelling", "RPCSourceAdapter", map[string]any{"rpc_endpoint": "http://127.0.0.1:8000", "api_key": "k",
			"start_ledger": 2, "buffer_size": 4, "rpc_url": "http://127.0.0.1:8000", "batch_size": 4},
			rpcMethodLedgers, "Api-Key k", 4, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, _, _ := testEnv(t)
			s := newSource(t, c.typeName, c.cfg, env).(*rpcSource)
			if s.set.method != c.method || s.set.authHeader != c.auth || s.set.bufferSize != c.buffer {
				t.Errorf("method %q auth %q buffer %d; want %q %q %d", s.set.method, s.set.authHeader, s.set.bufferSize,
					c.method, c.auth, c.buffer)
			}
			ignored := slices.Sorted(slices.Values(s.set.ignored))
			if !slices.Equal(ignored, c.ignored) {
				t.Errorf("ignored keys %v, want %v", ignored, c.ignored)
			}
			if s.typeName != c.typeName {
				t.Errorf("type %s", s.typeName)
			}
		})
	}
}

func TestRPCKeyErrors(t *testing.T) {
	const secret = "s3cret-Value"
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"rpc_url": "https://rpc.example.org", "start_ledger": 2}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for name, c := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"two endpoints":         {base(map[string]any{"rpc_endpoint": "https://other.example.org/?key=" + secret}), "rpc_url and rpc_endpoint"},
		"auth_header + api_key": {base(map[string]any{"auth_header": "Bearer " + secret, "api_key": secret}), "not both"},
		"header injection":      {base(map[string]any{"auth_header": "Bearer " + secret + "\r\nX-Evil: 1"}), "one line"},
		"batch vs buffer":       {base(map[string]any{"batch_size": 10, "buffer_size": 20}), "same setting"},
		"getFeeStats":           {base(map[string]any{"rpc_method": "getFeeStats"}), "not a ledger stream"},
		"xdrFormat":             {base(map[string]any{"xdrFormat": "yaml"}), "xdrFormat"},
		"poll_interval_seconds": {base(map[string]any{"poll_interval_seconds": "soon"}), "poll_interval_seconds"},
		"negative poll":         {base(map[string]any{"poll_interval": -1}), "poll_interval"},
		"filter type":           {base(map[string]any{"filters": []any{map[string]any{"type": "diagnostic"}}}), "filters[0].type"},
		"unknown key":           {base(map[string]any{"rpc_urls": "x"}), "rpc_urls"},
		"url with secret":       {map[string]any{"rpc_url": "ftp://u:" + secret + "@h", "start_ledger": 2}, "http(s) URL"},
	} {
		for _, typeName := range []string{"RPCSourceAdapter", "SorobanSourceAdapter"} {
			env, _, _ := testEnv(t)
			_, err := sourceCtors[typeName](c.cfg, env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %s: err = %v, want %q", typeName, name, err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s %s: error shows a secret: %v", typeName, name, err)
			}
		}
	}
}

// The upstream keys at work: auth_header goes out verbatim, batch_size is the getLedgers
// page, and with rpc_method getEvents the source still emits every ledger of its range.
func TestRPCUpstreamKeysStream(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 3})
	rs, srv := newRPCServer(t, ds, 58752000, 58752002)
	env, _, _ := testEnv(t)
	s := newSource(t, "SorobanSourceAdapter", map[string]any{"rpc_url": srv.URL, "auth_header": "Bearer tok-123",
		"start_ledger": 58752000, "end_ledger": 58752002, "batch_size": 2, "rpc_method": "getEvents",
		"filters": []any{map[string]any{"type": "contract"}}, "checkpoint_dir": t.TempDir()}, env)
	checkLedgers(t, ds, runBounded(t, s, 0), seqRange(58752000, 58752002))
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.auth) != 1 || !rs.auth["Bearer tok-123"] {
		t.Errorf("Authorization headers seen %v, want only the auth_header as given", rs.auth)
	}
	if len(rs.limits) != 1 || rs.limits[2] == 0 {
		t.Errorf("getLedgers limits %v, want only batch_size 2", rs.limits)
	}
}

// logSink collects a test's log (slog's handlers serialize their writes).
type logSink struct{ bytes.Buffer }

// An RPC source never shows its Authorization value or the token in its URL: not in Run's
// error, not in its logs (debug level included), even when the server echoes them.
func TestRPCSecretsNeverShown(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 2})
	rs, srv := newRPCServer(t, ds, 58752000, 58752001)
	rs.mu.Lock()
	rs.echoAuth = true
	rs.mu.Unlock()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()

	for name, c := range map[string]struct {
		cfg     map[string]any
		secrets []string
	}{
		"server echoes auth_header": {map[string]any{"rpc_url": srv.URL, "auth_header": "Bearer hunter2-token"},
			[]string{"hunter2-token"}},
		"server echoes api_key": {map[string]any{"rpc_endpoint": srv.URL, "api_key": "apikey-0987"},
			[]string{"apikey-0987"}},
		"token in the URL, server down": {map[string]any{"rpc_url": closed + "/rpc?apikey=qwerty12345", "auth_header": "Basic dXNlcjpwYXNz"},
			[]string{"qwerty12345", "dXNlcjpwYXNz"}},
	} {
		t.Run(name, func(t *testing.T) {
			env, _, _ := testEnv(t)
			var sink logSink
			env.Logger = slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c.cfg["start_ledger"], c.cfg["end_ledger"] = 58752000, 58752001
			s := newSource(t, "RPCSourceAdapter", c.cfg, env)
			s.(*rpcSource).tipInterval = 10 * time.Millisecond // the tip poll fails (and logs) too
			err := s.Run(context.Background(), 0, func(l *ledger.Ledger) error { l.Release(); return nil })
			if err == nil {
				t.Fatal("Run succeeded")
			}
			_ = s.Close()
			for _, sec := range c.secrets {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("Run's error shows a secret: %v", err)
				}
				if strings.Contains(sink.String(), sec) {
					t.Errorf("the log shows a secret:\n%s", sink.String())
				}
			}
			t.Logf("error: %v", err)
		})
	}
}
