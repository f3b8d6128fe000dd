package contract

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/toid"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refRPCEvent is an expected getEvents event, computed from the SDK's classic transaction
// reader (GetTransactionEvents) with stellar-rpc's id scheme restated here.
type refRPCEvent struct {
	tx, op, idx uint32
	id          string
	ev          xdr.ContractEvent
	txHash      string
	ok          bool
}

func rpcID(seq, tx, op, idx uint32) string {
	return fmt.Sprintf("%019d-%010d", toid.New(int32(seq), int32(tx), int32(op)).ToInt64(), idx) //nolint:gosec // test values
}

func refRPCEvents(t testing.TB, raw []byte, passphrase string) []refRPCEvent {
	t.Helper()
	lcm, txs := proctest.RefTxsOn(t, raw, passphrase)
	seq := lcm.LedgerSequence()
	var out []refRPCEvent
	var before, after uint32
	for _, tx := range txs {
		evs, err := tx.GetTransactionEvents()
		if err != nil {
			t.Fatal(err)
		}
		var afterTx uint32
		add := func(e xdr.ContractEvent, txi, op, idx uint32) {
			out = append(out, refRPCEvent{tx: txi, op: op, idx: idx, id: rpcID(seq, txi, op, idx), ev: e,
				txHash: tx.Hash.HexString(), ok: tx.Result.Successful()})
		}
		for _, te := range evs.TransactionEvents {
			switch te.Stage {
			case xdr.TransactionEventStageTransactionEventStageBeforeAllTxs:
				add(te.Event, 0, 0, before)
				before++
			case xdr.TransactionEventStageTransactionEventStageAfterTx:
				add(te.Event, tx.Index, 4095, afterTx)
				afterTx++
			default:
				add(te.Event, 1<<20-1, 0, after)
				after++
			}
		}
		for op, list := range evs.OperationEvents {
			for j, e := range list {
				add(e, tx.Index, uint32(op), uint32(j)) //nolint:gosec // test values
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func b64(t testing.TB, v any) string {
	t.Helper()
	s, err := xdr.MarshalBase64(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkRPCEvents compares records with the reference event for event.
func checkRPCEvents(t *testing.T, net string, seq uint32, recs []component.Record, want []refRPCEvent) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("ledger %d: %d events, SDK reports %d", seq, len(recs), len(want))
	}
	var gk, wk []string
	for i, r := range recs {
		g, w := r.(RPCEventRecord), want[i]
		cid := ""
		if w.ev.ContractId != nil {
			cid = strkey.MustEncode(strkey.VersionByteContract, w.ev.ContractId[:])
		}
		var topics []string
		for _, tp := range w.ev.Body.V0.Topics {
			topics = append(topics, b64(t, tp))
		}
		typ := map[xdr.ContractEventType]string{0: "system", 1: "contract"}[w.ev.Type]
		gk, wk = append(gk, g.NaturalKey()), append(wk, fmt.Sprintf("%s:%d:%s", net, seq, w.id))
		if g.ID != w.id || g.TxHash != w.txHash || g.ContractID != cid || g.Type != typ || g.Ledger != seq ||
			g.InSuccessfulContractCall != w.ok || g.TransactionIndex != w.tx || g.OperationIndex != w.op ||
			strings.Join(g.Topic, ",") != strings.Join(topics, ",") || g.Value != b64(t, w.ev.Body.V0.Data) ||
			g.LedgerClosedAt.Location().String() != "UTC" {
			t.Fatalf("ledger %d event %d:\n got %+v\nwant %+v", seq, i, g, w)
		}
	}
	if proctest.Checksum(gk) != proctest.Checksum(wk) {
		t.Fatal("key checksum differs")
	}
}

func TestGetEventsRPCMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want := refRPCEvents(t, rl.Raw, pubnet)
		p := proctest.New(t, NewGetEventsRPC, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if decodes.Load() != 0 {
			t.Fatalf("%d full decodes", decodes.Load())
		}
		checkRPCEvents(t, "pubnet", rl.Seq, recs, want)
		for _, r := range recs {
			g := r.(RPCEventRecord)
			if string(g.TopicJSON) == "" || string(g.ValueJSON) == "" || g.TopicJSON[0] != '[' {
				t.Fatalf("xdrFormat json (default): topicJson %s valueJson %s", g.TopicJSON, g.ValueJSON)
			}
		}
		st := p.(component.StatsReporter).Stats()
		if st["events_found"] != float64(len(want)) || st["processed_ledgers"] != 1 {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d getEvents events", rl.Seq, len(recs))
	}
}

// TestGetEventsRPCFilters checks RPC's filter semantics on 58752000's events against counts
// taken directly from the decoded events.
func TestGetEventsRPCFilters(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	all := refRPCEvents(t, rl.Raw, pubnet)
	sym := func(s string) string {
		v := xdr.ScSymbol(s)
		return b64(t, xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &v})
	}
	first := func(e refRPCEvent) string {
		if len(e.ev.Body.V0.Topics) == 0 || e.ev.Body.V0.Topics[0].Type != xdr.ScValTypeScvSymbol {
			return ""
		}
		return string(*e.ev.Body.V0.Topics[0].Sym)
	}
	kale := "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"
	other := strkey.MustEncode(strkey.VersionByteContract, make([]byte, 32))
	n := func(pred func(refRPCEvent) bool) (c int) {
		for _, e := range all {
			if pred(e) {
				c++
			}
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		filters []any
		want    int
	}{
		{"no filters", nil, len(all)},
		{"contract", []any{map[string]any{"type": "contract"}}, n(func(e refRPCEvent) bool { return e.ev.Type == xdr.ContractEventTypeContract })},
		{"system", []any{map[string]any{"type": "system"}}, n(func(e refRPCEvent) bool { return e.ev.Type == xdr.ContractEventTypeSystem })},
		{"KALE contract", []any{map[string]any{"contractIds": []any{kale}}}, n(func(e refRPCEvent) bool {
			return e.ev.ContractId != nil && strkey.MustEncode(strkey.VersionByteContract, e.ev.ContractId[:]) == kale
		})},
		{"another contract", []any{map[string]any{"contractIds": []any{other}}}, 0},
		{"mint with exactly 4 topics", []any{map[string]any{"topics": []any{[]any{sym("mint"), "*", "*", "*"}}}},
			n(func(e refRPCEvent) bool { return first(e) == "mint" && len(e.ev.Body.V0.Topics) == 4 })},
		{"burn and any more topics", []any{map[string]any{"topics": []any{[]any{sym("burn"), "**"}}}},
			n(func(e refRPCEvent) bool { return first(e) == "burn" })},
		{"exactly 3 topics", []any{map[string]any{"topics": []any{[]any{"*", "*", "*"}}}},
			n(func(e refRPCEvent) bool { return len(e.ev.Body.V0.Topics) == 3 })},
		{"mint or burn (two filters)", []any{
			map[string]any{"type": "contract", "contractIds": []any{kale}, "topics": []any{[]any{sym("mint"), "**"}}},
			map[string]any{"topics": []any{[]any{sym("burn"), "**"}}},
		}, n(func(e refRPCEvent) bool { return first(e) == "mint" || first(e) == "burn" })},
		{"mint topics of another contract", []any{map[string]any{"contractIds": []any{other}, "topics": []any{[]any{sym("mint"), "**"}}}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"network": "pubnet"}
			if tc.filters != nil {
				cfg["filters"] = tc.filters
			}
			recs := proctest.Run(t, NewGetEventsRPC, cfg, rl.Raw, nil)
			if len(recs) != tc.want {
				t.Fatalf("%d events, want %d", len(recs), tc.want)
			}
			t.Logf("%d events", len(recs))
		})
	}
	// The fixture must make the filters selective.
	if m, b := n(func(e refRPCEvent) bool { return first(e) == "mint" }), n(func(e refRPCEvent) bool { return first(e) == "burn" }); m == 0 || b == 0 {
		t.Fatalf("fixture: %d mint, %d burn events", m, b)
	}
}

// TestGetEventsRPCSynthetic checks what the real ledgers lack: transaction-level events of the
// three stages (their ids and order), events of a failed transaction, a system event without
// a contract, and xdrFormat base64.
func TestGetEventsRPCSynthetic(t *testing.T) {
	raw := synthLedgerStages(t)
	want := refRPCEvents(t, raw, testnet)
	for _, format := range []string{"json", "base64"} {
		recs := proctest.Run(t, NewGetEventsRPC, map[string]any{"network": "testnet", "xdrFormat": format}, raw, nil)
		checkRPCEvents(t, "testnet", 1000, recs, want)
		var ids []string
		for _, r := range recs {
			g := r.(RPCEventRecord)
			ids = append(ids, fmt.Sprintf("%d/%d/%s/%v", g.TransactionIndex, g.OperationIndex, g.ID[20:], g.InSuccessfulContractCall))
			if (format == "json") != (g.TopicJSON != nil) {
				t.Fatalf("%s: topicJson %s", format, g.TopicJSON)
			}
			if format == "json" && !strings.HasPrefix(string(g.TopicJSON), `[{"symbol":`) {
				t.Fatalf("topicJson %s", g.TopicJSON)
			}
		}
		// before-all first, then tx 1's operation events, its after-tx event, tx 2's, after-all last.
		const order = "0/0/0000000000/true 1/0/0000000000/true 1/0/0000000001/true 1/0/0000000002/true 1/1/0000000000/true " +
			"1/4095/0000000000/true 1048575/0/0000000000/false"
		if got := strings.Join(ids, " "); got != order {
			t.Fatalf("order\n got %s\nwant %s", got, order)
		}
	}
	sys := proctest.Run(t, NewGetEventsRPC, map[string]any{"network": "testnet", "filters": []any{map[string]any{"type": "system"}}}, raw, nil)
	if len(sys) != 1 || sys[0].(RPCEventRecord).ContractID != "" || sys[0].(RPCEventRecord).Type != "system" {
		t.Fatalf("system events: %+v", sys)
	}
}

// synthLedgerStages has transaction-level events of the three stages: a successful
// transaction with a before-all event, events on two operations (one a system event without a
// contract) and an after-tx event; a failed one with an after-all event.
func synthLedgerStages(t testing.TB) []byte {
	t.Helper()
	op, res := bumpOp()
	stage := func(s xdr.TransactionEventStage, topic string) xdr.TransactionEvent {
		return xdr.TransactionEvent{Stage: s, Event: synthEvent(&synthA, xdr.ContractEventTypeContract, topic)}
	}
	return synthLedgerTxs(t, 1000, testnet,
		synthSpec{source: synthAlice, ops: []xdr.Operation{op, op}, results: []xdr.OperationResultTr{res, res},
			opMeta: []xdr.OperationMetaV2{
				{Events: []xdr.ContractEvent{synthEvent(&synthA, xdr.ContractEventTypeContract, "transfer"),
					synthEvent(&synthB, xdr.ContractEventTypeContract, "mint"), synthEvent(nil, xdr.ContractEventTypeSystem, "core")}},
				{Events: []xdr.ContractEvent{synthEvent(&synthB, xdr.ContractEventTypeContract, "burn")}},
			},
			txEvents: []xdr.TransactionEvent{stage(xdr.TransactionEventStageTransactionEventStageBeforeAllTxs, "fee"),
				stage(xdr.TransactionEventStageTransactionEventStageAfterTx, "refund")}},
		synthSpec{source: synthBob, ops: []xdr.Operation{op}, results: []xdr.OperationResultTr{res}, failed: true,
			txEvents: []xdr.TransactionEvent{stage(xdr.TransactionEventStageTransactionEventStageAfterAllTxs, "fee")}},
	)
}

// TestGetEventsRPCUpstreamFiles builds the processor with the getEvents requests of
// upstream's shipped RPC files (moved from the source into the processor).
func TestGetEventsRPCUpstreamFiles(t *testing.T) {
	for name, filters := range map[string][]any{
		"usdc_transfers_rpc": {map[string]any{"type": "contract",
			"contractIds": []any{"CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"},
			"topics":      []any{[]any{"AAAADwAAAAh0cmFuc2Zlcg==", "*", "*", "*"}}}},
		"contract_events_rpc": {map[string]any{"type": "contract", "contractIds": nil, "topics": []any{[]any{"*", "*", "*", "*"}}}},
	} {
		p, err := component.Construct(NewGetEventsRPC, map[string]any{"network": "pubnet", "filters": filters, "xdrFormat": "json"}, proctest.Env())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs, err := p.Process(proctest.BG, proctest.Shared(t, proctest.RealLedgers(t)[0].Raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		// 58752000 has no USDC transfers; its 4-topic events are the KALE mints.
		if name == "usdc_transfers_rpc" && len(recs) != 0 {
			t.Errorf("%s: %d events", name, len(recs))
		}
		for _, r := range recs {
			if len(r.(RPCEventRecord).Topic) != 4 {
				t.Errorf("%s: %+v", name, r)
			}
		}
	}
}

func TestGetEventsRPCConfigErrors(t *testing.T) {
	f := func(m map[string]any) []any { return []any{m} }
	for name, cfg := range map[string]map[string]any{
		"bad format":         {"xdrFormat": "yaml"},
		"diagnostic type":    {"filters": f(map[string]any{"type": "diagnostic"})},
		"account as id":      {"filters": f(map[string]any{"contractIds": []any{"GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}})},
		"bare symbol":        {"filters": f(map[string]any{"topics": []any{[]any{"transfer"}}})},
		"** not last":        {"filters": f(map[string]any{"topics": []any{[]any{"**", "*"}}})},
		"5 segments":         {"filters": f(map[string]any{"topics": []any{[]any{"*", "*", "*", "*", "*"}}})},
		"empty topic filter": {"filters": f(map[string]any{"topics": []any{[]any{}}})},
		"6 filters":          {"filters": []any{map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}}},
	} {
		cfg["network"] = "pubnet"
		if _, err := component.Construct(NewGetEventsRPC, cfg, proctest.Env()); err == nil || !strings.Contains(err.Error(), "GetEventsRPC") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestGetEventsRPCFilterBeforeDecode: an event no filter can match by type or contract is not
// decoded (a malformed topic behind it is no error); without filters it is.
func TestGetEventsRPCFilterBeforeDecode(t *testing.T) {
	raw := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	raw = append(raw, make([]byte, 32)...)
	raw = append(raw, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 99, 0, 0) // contract type, body v0, a truncated topic
	other := strkey.MustEncode(strkey.VersionByteContract, []byte(strings.Repeat("x", 32)))
	for _, tc := range []struct {
		filters []any
		wantErr bool
	}{
		{[]any{map[string]any{"contractIds": []any{other}}}, false},
		{[]any{map[string]any{"type": "system"}}, false},
		{nil, true},
	} {
		p := proctest.New(t, NewGetEventsRPC, map[string]any{"network": "testnet", "filters": tc.filters}).(*GetEventsRPC)
		_, keep, err := p.event(raw)
		if keep || (err != nil) != tc.wantErr {
			t.Errorf("%v: keep %v err %v", tc.filters, keep, err)
		}
	}
}

// Upstream's getEvents files name no network: GetEventsRPC runs without one and keys its
// records under "unnamed"; a named network still wins.
func TestGetEventsRPCWithoutNetwork(t *testing.T) {
	raw := proctest.RealLedgers(t)[0].Raw
	env := proctest.Env()
	env.Network = ""
	p, err := component.Construct(NewGetEventsRPC, map[string]any{}, env)
	if err != nil {
		t.Fatalf("GetEventsRPC without a network: %v", err)
	}
	recs, err := p.Process(proctest.BG, proctest.Shared(t, raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 18 {
		t.Fatalf("%d events, want the 18 of ledger 58752000", len(recs))
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.NaturalKey(), "unnamed:58752000:") {
			t.Fatalf("key %q, want it under the network name unnamed", r.NaturalKey())
		}
	}
	named := proctest.Run(t, NewGetEventsRPC, map[string]any{"network": "pubnet"}, raw, nil)
	if !strings.HasPrefix(named[0].NaturalKey(), "pubnet:") {
		t.Errorf("named network: key %q", named[0].NaturalKey())
	}
}
