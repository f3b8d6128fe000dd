package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

// rpcServer answers the JSON-RPC calls the SDK's RPC ledger backend and our tip poller make
// (getHealth, getLedgers, getLatestLedger) from fixture ledgers, like a Stellar RPC server whose
// retention window is [oldest, latest].
type rpcServer struct {
	t       *testing.T
	ledgers map[uint32][]byte
	oldest  uint32
	latest  atomic.Uint32

	mu     sync.Mutex
	calls  map[string]int
	auth   map[string]bool // Authorization headers seen
	limits map[uint]int    // getLedgers pagination limits asked for
	// echoAuth makes every call fail with an error quoting the Authorization header, as a
	// careless server might.
	echoAuth bool
}

func newRPCServer(t *testing.T, ds *fixture.Datastore, oldest, latest uint32) (*rpcServer, *httptest.Server) {
	t.Helper()
	s := &rpcServer{t: t, ledgers: map[uint32][]byte{}, oldest: oldest, calls: map[string]int{}, auth: map[string]bool{},
		limits: map[uint]int{}}
	for _, seq := range ds.Ledgers {
		if seq < oldest {
			continue
		}
		raw, err := ds.RawLedger(seq)
		if err != nil {
			t.Fatal(err)
		}
		s.ledgers[seq] = raw
	}
	s.latest.Store(latest)
	srv := httptest.NewServer(s) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return s, srv
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (s *rpcServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.auth[r.Header.Get("Authorization")] = true
	echo := s.echoAuth
	s.mu.Unlock()
	var reqs []rpcRequest
	batch := bytes.HasPrefix(bytes.TrimSpace(body), []byte("["))
	if batch {
		err = json.Unmarshal(body, &reqs)
	} else {
		var one rpcRequest
		err = json.Unmarshal(body, &one)
		reqs = []rpcRequest{one}
	}
	if err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	var resps []map[string]any
	for _, req := range reqs {
		result, rerr := s.call(req.Method, req.Params)
		if echo {
			result, rerr = nil, &rpcError{-32000, "unauthorized: " + r.Header.Get("Authorization")}
		}
		resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if rerr != nil {
			resp["error"] = rerr
		} else {
			resp["result"] = result
		}
		resps = append(resps, resp)
	}
	w.Header().Set("Content-Type", "application/json")
	if batch {
		_ = json.NewEncoder(w).Encode(resps)
		return
	}
	_ = json.NewEncoder(w).Encode(resps[0])
}

func (s *rpcServer) closeTime(seq uint32) int64 {
	ct, _ := xdr.LedgerCloseMetaView(s.ledgers[seq]).LedgerCloseTime()
	return ct
}

func (s *rpcServer) call(method string, params json.RawMessage) (any, *rpcError) {
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	latest := s.latest.Load()
	switch method {
	case "getHealth":
		return map[string]any{"status": "healthy", "latestLedger": latest,
			"latestLedgerCloseTime": strconv.FormatInt(s.closeTime(latest), 10), "oldestLedger": s.oldest,
			"oldestLedgerCloseTime": strconv.FormatInt(s.closeTime(s.oldest), 10),
			"ledgerRetentionWindow": latest - s.oldest + 1}, nil
	case "getLatestLedger":
		hash, _ := xdr.LedgerCloseMetaView(s.ledgers[latest]).LedgerHash()
		return map[string]any{"id": hex.EncodeToString(hash), "protocolVersion": 23, "sequence": latest,
			"closeTime": strconv.FormatInt(s.closeTime(latest), 10)}, nil
	case "getLedgers":
		var p struct {
			StartLedger uint32 `json:"startLedger"`
			Pagination  *struct {
				Limit uint `json:"limit"`
			} `json:"pagination"`
			XDRFormat string `json:"xdrFormat"`
		}
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &rpcError{-32602, err.Error()}
		}
		if p.XDRFormat != "" && p.XDRFormat != "base64" {
			return nil, &rpcError{-32602, "only base64"}
		}
		if p.StartLedger < s.oldest || p.StartLedger > latest {
			return nil, &rpcError{-32600, fmt.Sprintf("start ledger must be between the oldest ledger: %d and the latest ledger: %d for this rpc instance", s.oldest, latest)}
		}
		limit := uint(5)
		if p.Pagination != nil && p.Pagination.Limit > 0 {
			limit = p.Pagination.Limit
		}
		s.mu.Lock()
		s.limits[limit]++
		s.mu.Unlock()
		var out []map[string]any
		var last uint32
		for seq := p.StartLedger; seq <= latest && uint(len(out)) < limit; seq++ {
			raw := s.ledgers[seq]
			v := xdr.LedgerCloseMetaView(raw)
			hdr, err := v.LedgerHeader()
			if err != nil {
				return nil, &rpcError{-32603, err.Error()}
			}
			hdrRaw, _ := hdr.Raw()
			hash, _ := v.LedgerHash()
			out = append(out, map[string]any{"hash": hex.EncodeToString(hash), "sequence": seq,
				"ledgerCloseTime": strconv.FormatInt(s.closeTime(seq), 10),
				"headerXdr":       base64.StdEncoding.EncodeToString(hdrRaw),
				"metadataXdr":     base64.StdEncoding.EncodeToString(raw)})
			last = seq
		}
		return map[string]any{"ledgers": out, "latestLedger": latest, "latestLedgerCloseTime": s.closeTime(latest),
			"oldestLedger": s.oldest, "oldestLedgerCloseTime": s.closeTime(s.oldest), "cursor": strconv.Itoa(int(last))}, nil
	default:
		return nil, &rpcError{-32601, "method not found"}
	}
}

func (s *rpcServer) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func TestRPCBounded(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 7})
	rs, srv := newRPCServer(t, ds, 58752000, 58752006)
	env, reg, decodes := testEnv(t)
	s := newSource(t, "RPCSourceAdapter", map[string]any{"rpc_endpoint": srv.URL, "start_ledger": 58752000,
		"end_ledger": 58752006, "buffer_size": 3, "api_key": "k1"}, env)
	got := runBounded(t, s, 0)
	checkLedgers(t, ds, got, seqRange(58752000, 58752006))
	if decodes.Load() != 0 {
		t.Fatal("the source decoded ledgers")
	}
	// 7 ledgers, 3 per getLedgers: at least 3 calls, each after a getHealth.
	if n := rs.callCount("getLedgers"); n < 3 {
		t.Errorf("getLedgers called %d times, want >= 3 (buffer_size 3)", n)
	}
	if rs.callCount("getHealth") < rs.callCount("getLedgers") {
		t.Errorf("getHealth %d < getLedgers %d", rs.callCount("getHealth"), rs.callCount("getLedgers"))
	}
	if !rs.auth["Api-Key k1"] || len(rs.auth) != 1 {
		t.Errorf("Authorization headers seen: %v, want only \"Api-Key k1\"", rs.auth)
	}
	if n, ok := gauge(t, reg, "cdp_pipeline_source_ingest_ledger_fetch_duration_seconds"); !ok || n != 7 {
		t.Errorf("fetch duration count = %v (present %v), want 7", n, ok)
	}

	// Resuming inside the range.
	env, _, _ = testEnv(t)
	s = newSource(t, "RPCSourceAdapter", map[string]any{"rpc_endpoint": srv.URL, "start_ledger": 58752000,
		"end_ledger": 58752006}, env)
	checkLedgers(t, ds, runBounded(t, s, 58752005), seqRange(58752005, 58752006))
}

func TestRPCStartBeforeRetention(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 3})
	_, srv := newRPCServer(t, ds, 58752001, 58752002)
	env, _, _ := testEnv(t)
	s := newSource(t, "RPCSourceAdapter", map[string]any{"rpc_endpoint": srv.URL, "start_ledger": 58752000,
		"end_ledger": 58752002}, env)
	err := s.Run(context.Background(), 0, func(*ledger.Ledger) error { return nil })
	if err == nil {
		t.Fatal("Run succeeded from a ledger the RPC server no longer holds")
	}
	t.Logf("start before retention: %v", err)
}

// TestRPCFollowsTip: an unbounded RPC source waits at the server's latest ledger and picks up
// each new one (the SDK's RPC backend re-polls every 2 s), and reports the tip.
func TestRPCFollowsTip(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 4})
	rs, srv := newRPCServer(t, ds, 58752000, 58752001)
	env, reg, _ := testEnv(t)
	s := newSource(t, "RPCSourceAdapter", map[string]any{"rpc_endpoint": srv.URL, "start_ledger": 58752000}, env)
	s.(*rpcSource).tipInterval = 50 * time.Millisecond
	f := follow(t, s, 0)
	f.waitFor(t, 2, 10*time.Second)
	rs.latest.Store(58752003)
	took := f.waitFor(t, 4, 10*time.Second)
	t.Logf("new RPC ledgers emitted %v after they appeared", took)
	testutil.Eventually(t, 5*time.Second, "tip gauge at 58752003", func() bool {
		tip, _ := gauge(t, reg, "cdp_pipeline_source_tip_ledger")
		return tip == 58752003
	})
	f.stop()
	if err := <-f.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v", err)
	}
	f.done <- nil
	checkLedgers(t, ds, f.ledgers(), seqRange(58752000, 58752003))
	if rs.callCount("getLatestLedger") == 0 {
		t.Error("the tip was never polled")
	}
}
