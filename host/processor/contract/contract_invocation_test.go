package contract

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refInvocation is an expected ContractInvocation record, computed from the SDK's classic
// transaction reader: the envelope's operations, the result's operation results,
// GetTransactionEvents and GetOperationChanges.
type refInvocation struct {
	key, contract, fn, account string
	txIndex, op                int
	args                       []string
	ok                         bool
	events, ttls               int
	stateOps                   []string
}

func refInvocations(t testing.TB, raw []byte, passphrase, net string) []refInvocation {
	t.Helper()
	lcm, txs := proctest.RefTxsOn(t, raw, passphrase)
	var out []refInvocation
	for _, tx := range txs {
		evs, err := tx.GetTransactionEvents()
		if err != nil {
			t.Fatal(err)
		}
		results, _ := tx.Result.Result.OperationResults()
		for i, op := range tx.Envelope.Operations() {
			fn, ok := op.Body.GetInvokeHostFunctionOp()
			if !ok {
				continue
			}
			r := refInvocation{key: fmt.Sprintf("%s:%d:%s:%d", net, lcm.LedgerSequence(), tx.Hash.HexString(), i),
				txIndex: int(tx.Index), op: i, args: []string{}, stateOps: []string{}}
			if op.SourceAccount != nil {
				r.account = op.SourceAccount.ToAccountId().Address()
			} else {
				r.account = tx.Envelope.SourceAccount().ToAccountId().Address()
			}
			if ic, ok := fn.HostFunction.GetInvokeContract(); ok {
				r.contract, _ = ic.ContractAddress.String()
				r.fn = string(ic.FunctionName)
				for _, a := range ic.Args {
					r.args = append(r.args, b64(t, a))
				}
			}
			if i < len(results) && results[i].Tr != nil && results[i].Tr.InvokeHostFunctionResult != nil {
				r.ok = results[i].Tr.InvokeHostFunctionResult.Code == xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess
			}
			if i < len(evs.OperationEvents) {
				r.events = len(evs.OperationEvents[i])
			}
			chs, err := tx.GetOperationChanges(uint32(i)) //nolint:gosec // test
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chs {
				switch ch.Type {
				case xdr.LedgerEntryTypeContractData:
					r.stateOps = append(r.stateOps, map[xdr.LedgerEntryChangeType]string{0: "create", 1: "update", 2: "delete", 4: "restore"}[ch.ChangeType])
				case xdr.LedgerEntryTypeTtl:
					var pre uint32
					if ch.Pre != nil {
						pre = uint32(ch.Pre.Data.MustTtl().LiveUntilLedgerSeq)
					}
					if ch.Post != nil && uint32(ch.Post.Data.MustTtl().LiveUntilLedgerSeq) > pre {
						r.ttls++
					}
				}
			}
			out = append(out, r)
		}
	}
	return out
}

func jsonLen(t testing.TB, raw json.RawMessage) int {
	t.Helper()
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return len(a)
}

func checkInvocations(t *testing.T, seq uint32, recs []component.Record, want []refInvocation) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("ledger %d: %d invocations, SDK reports %d", seq, len(recs), len(want))
	}
	var gk, wk []string
	for i, rec := range recs {
		g, w := rec.(ContractInvocationRecord), want[i]
		gk, wk = append(gk, g.NaturalKey()), append(wk, w.key)
		var ops []string
		var states []stateChange
		if err := json.Unmarshal(g.StateChanges, &states); err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			ops = append(ops, s.Operation)
		}
		if g.NaturalKey() != w.key || g.ContractID != w.contract || g.FunctionName != w.fn || g.InvokingAccount != w.account ||
			g.Successful != w.ok || strings.Join(g.ArgumentsRaw, ",") != strings.Join(w.args, ",") ||
			jsonLen(t, g.Arguments) != len(w.args) || jsonLen(t, g.DiagnosticEvents) != w.events ||
			jsonLen(t, g.TtlExtensions) != w.ttls || !slices.Equal(ops, w.stateOps) ||
			int(g.TransactionIndex) != w.txIndex || g.OperationID != processor.OperationID(seq, w.txIndex, w.op) || g.LedgerSequence != seq {
			t.Fatalf("ledger %d invocation %d:\n got %+v\nwant %+v", seq, i, g, w)
		}
	}
	if proctest.Checksum(gk) != proctest.Checksum(wk) {
		t.Fatal("key checksum differs")
	}
}

func TestContractInvocationMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want := refInvocations(t, rl.Raw, pubnet, "pubnet")
		p := proctest.New(t, NewContractInvocation, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if decodes.Load() != 0 {
			t.Fatalf("%d full decodes", decodes.Load())
		}
		checkInvocations(t, rl.Seq, recs, want)
		calls, states := 0, 0
		for _, r := range recs {
			calls += jsonLen(t, r.(ContractInvocationRecord).ContractCalls)
			states += jsonLen(t, r.(ContractInvocationRecord).StateChanges)
		}
		st := p.(component.StatsReporter).Stats()
		if st["invocations_found"] != float64(len(want)) || st["cross_contract_calls"] != float64(calls) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d invocations, %d authorized cross-contract calls, %d state changes", rl.Seq, len(recs), calls, states)
	}
}

func TestContractInvocationSynthetic(t *testing.T) {
	raw := synthSoroban(t)
	want := refInvocations(t, raw, testnet, "testnet")
	recs := proctest.Run(t, NewContractInvocation, map[string]any{"network": "testnet"}, raw, nil)
	checkInvocations(t, 2000, recs, want)
	var types []string
	for _, r := range recs {
		types = append(types, r.(ContractInvocationRecord).HostFunctionType)
	}
	if got := strings.Join(types, " "); got != "invoke_contract invoke_contract create_contract create_contract_v2 create_contract create_contract upload_wasm" {
		t.Fatalf("host function types %s", got)
	}
	g := recs[0].(ContractInvocationRecord)
	a, b, c := cstr(synthA), cstr(synthB), cstr(synthC)
	var calls []contractCall
	if err := json.Unmarshal(g.ContractCalls, &calls); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cl := range calls {
		got = append(got, fmt.Sprintf("%s>%s %s d%d %s %v #%d", cl.FromContract[:2], cl.ToContract[:2], cl.Function, cl.CallDepth, cl.AuthType, cl.Successful, cl.ExecutionOrder))
	}
	wantCalls := []string{
		fmt.Sprintf("%s>%s transfer d1 contract true #0", a[:2], b[:2]),
		fmt.Sprintf("%s>%s approve d2 contract true #1", b[:2], c[:2]),
		fmt.Sprintf("%s>%s mint d1 source_account true #2", a[:2], b[:2]),
	}
	if !slices.Equal(got, wantCalls) || calls[1].FromContract != b || calls[1].ToContract != c {
		t.Fatalf("contract calls %v, want %v", got, wantCalls)
	}
	var ttls []ttlExtension
	if err := json.Unmarshal(g.TtlExtensions, &ttls); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ttls, func(x, y ttlExtension) int { return int(x.NewTTL) - int(y.NewTTL) }) // the SDK orders changes by ledger key
	if len(ttls) != 2 || ttls[0] != (ttlExtension{a, ttls[0].KeyHash, 0, 150}) || ttls[1] != (ttlExtension{a, ttls[1].KeyHash, 100, 200}) {
		t.Fatalf("ttl extensions %+v", ttls)
	}
	var states []stateChange
	if err := json.Unmarshal(g.StateChanges, &states); err != nil {
		t.Fatal(err)
	}
	byOp := map[string]stateChange{}
	for _, s := range states {
		byOp[s.Operation] = s
	}
	if s := byOp["update"]; string(s.Key) != `{"symbol":"k2"}` || string(s.OldValue) != `{"u64":"2"}` || string(s.NewValue) != `{"u64":"3"}` || s.ContractID != a {
		t.Fatalf("update %+v", s)
	}
	if s := byOp["delete"]; s.Operation != "delete" || string(s.NewValue) != "null" || s.NewValueRaw != nil || s.ContractID != b {
		t.Fatalf("delete %+v", s)
	}
	if string(g.ArgumentsDecoded) != `{"arg_0":{"address":"`+synthBob.Address()+`"},"arg_1":{"i128":"42"}}` {
		t.Fatalf("arguments_decoded %s", g.ArgumentsDecoded)
	}
	// The contract filter keeps the two invocations of A.
	only := proctest.Run(t, NewContractInvocation, map[string]any{"network": "testnet", "contract_id": a}, raw, nil)
	if len(only) != 2 || only[0].(ContractInvocationRecord).ContractID != a || only[1].(ContractInvocationRecord).Successful {
		t.Fatalf("filtered: %+v", only)
	}
	// account_ids (upstream's FilteredContractInvocation): Bob invoked tx 1 (op source), tx 2
	// and tx 6; with A's filter, tx 1 and tx 2.
	bob := synthBob.Address()
	for cfg, want := range map[string]int{"": 3, a: 2} {
		m := map[string]any{"network": "testnet", "account_ids": []any{bob}}
		if cfg != "" {
			m["contract_ids"] = cfg
		}
		recs := proctest.Run(t, NewContractInvocation, m, raw, nil)
		if len(recs) != want {
			t.Fatalf("%v: %d invocations, want %d", m, len(recs), want)
		}
		for _, r := range recs {
			if r.(ContractInvocationRecord).InvokingAccount != bob {
				t.Fatalf("%+v", r)
			}
		}
	}
}

func TestContractInvocationConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"network": "pubnet", "contract_ids": []any{"GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}},
		{"network": "nowhere"},
		{"network": "pubnet", "account_ids": []any{"CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"}},
	} {
		if _, err := component.Construct(NewContractInvocation, cfg, proctest.Env()); err == nil || !strings.Contains(err.Error(), "ContractInvocation") {
			t.Errorf("%v: %v", cfg, err)
		}
	}
}
