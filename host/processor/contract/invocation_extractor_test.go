package contract

import (
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

var synthFund = xdr.ContractId{0xfd}

// fundArgs: fund({funder, amount, project_id}, recipient, memo).
func fundArgs(funder bool, amt uint64, project string) []xdr.ScVal {
	var kv []any
	if funder {
		kv = append(kv, "funder", scAccount(synthAlice))
	}
	kv = append(kv, "amount", scI128(amt), "project_id", scStr(project))
	return []xdr.ScVal{scStruct(kv...), scAccount(synthBob), scSym("thanks")}
}

// synthFunding: testnet ledger 2100, one invocation per transaction: tx 1 fund (valid), tx 2
// fund whose project_id fails the pattern, tx 3 fund without its funder, tx 4 withdraw (no
// schema), tx 5 fund (valid) in a failed transaction.
func synthFunding(t testing.TB) []byte {
	t.Helper()
	tx := func(fn string, args []xdr.ScVal, failed bool) synthSpec {
		return synthSpec{source: synthAlice, soroban: true, failed: failed, ops: []xdr.Operation{invokeOp(invokeContract(synthFund, fn, args...), nil)},
			results: []xdr.OperationResultTr{invokeResult(!failed)}}
	}
	return synthLedgerTxs(t, 2100, testnet,
		tx("fund", fundArgs(true, 500, "p-1"), false), tx("fund", fundArgs(true, 5, "bad"), false),
		tx("fund", fundArgs(false, 5, "p-2"), false), tx("withdraw", fundArgs(true, 5, "p-3"), false),
		tx("fund", fundArgs(true, 7, "p-4"), true))
}

func fundingSchema(contract string) map[string]any {
	return map[string]any{"extraction_schemas": map[string]any{"grants": map[string]any{
		"function_name": "fund", "contract_ids": []any{contract},
		"extractors": map[string]any{
			"funder":     map[string]any{"argument_index": 0, "field_path": "funder", "field_type": "address", "required": true},
			"amount":     map[string]any{"argument_index": 0, "field_path": "amount", "field_type": "uint64"},
			"project_id": map[string]any{"argument_index": 0, "field_path": "project_id", "field_type": "string"},
			"recipient":  map[string]any{"argument_index": 1, "field_type": "address"},
			"memo_text":  map[string]any{"argument_index": 2, "field_type": "string"},
			"email":      map[string]any{"argument_index": 3, "field_type": "string", "default_value": "none"},
		},
		"validation": map[string]any{"project_id": map[string]any{"pattern": `^p-\d+$`}, "amount": map[string]any{"min_value": 1}},
	}}}
}

func TestContractInvocationExtractorSynthetic(t *testing.T) {
	raw := synthFunding(t)
	invs := proctest.Run(t, NewContractInvocation, map[string]any{"network": "testnet"}, raw, nil)
	p := proctest.New(t, NewContractInvocationExtractor, fundingSchema(cstr(synthFund)))
	out, err := p.Process(proctest.BG, proctest.Shared(t, raw), invs)
	if err != nil {
		t.Fatal(err)
	}
	// The independent count (the SDK's reader): fund invocations of the contract, of which
	// the one with a bad project_id and the one without a funder are not extracted.
	funds := 0
	for _, r := range refInvocations(t, raw, testnet, "testnet") {
		if r.contract == cstr(synthFund) && r.fn == "fund" {
			funds++
		}
	}
	if funds != 4 || len(out) != funds-2 {
		t.Fatalf("%d extracted of %d fund invocations (reference)", len(out), funds)
	}
	for i, want := range []struct {
		project, amount string
		ok              bool
	}{{"p-1", "500", true}, {"p-4", "7", false}} {
		g := out[i].(ExtractedContractInvocationRecord)
		inv := invs[map[int]int{0: 0, 1: 4}[i]].(ContractInvocationRecord)
		if g.Funder == nil || *g.Funder != synthAlice.Address() || g.Recipient == nil || *g.Recipient != synthBob.Address() ||
			g.ProjectID == nil || *g.ProjectID != want.project || g.Amount == nil || proctest.Itoa(int64(*g.Amount)) != want.amount ||
			g.MemoText == nil || *g.MemoText != "thanks" || g.Email == nil || *g.Email != "none" || g.Successful != want.ok ||
			g.SchemaName != "grants" || g.NaturalKey() != inv.NaturalKey() || g.Toid != uint64(inv.OperationID) ||
			g.TxHash != inv.TransactionHash || g.Ledger != 2100 || g.InvokingAccount != synthAlice.Address() {
			t.Errorf("record %d: %+v", i, g)
		}
	}
	st := p.(component.StatsReporter).Stats()
	if st["processed_invocations"] != 5 || st["successful_extractions"] != 2 || st["failed_extractions"] != 2 ||
		st["validation_errors"] != 1 || st["schema_not_found"] != 1 {
		t.Errorf("stats %v", st)
	}
}

// On a real ledger: a schema for the most invoked function extracts every one of its
// invocations (the SDK reader's count), its first argument as text where it has one.
func TestContractInvocationExtractorRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		counts := map[string]int{}
		var top string
		for _, r := range refInvocations(t, rl.Raw, pubnet, "pubnet") {
			if r.contract == "" {
				continue
			}
			k := r.contract + " " + r.fn
			if counts[k]++; counts[k] > counts[top] {
				top = k
			}
		}
		if top == "" {
			continue
		}
		contract, fn, _ := strings.Cut(top, " ")
		cfg := map[string]any{"extraction_schemas": map[string]any{"s": map[string]any{"function_name": fn, "contract_ids": []any{contract},
			"extractors": map[string]any{"memo_text": map[string]any{"argument_index": 0, "field_type": "string"}}}}}
		invs := proctest.Run(t, NewContractInvocation, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		out := proctest.Run(t, NewContractInvocationExtractor, cfg, rl.Raw, invs)
		if len(out) != counts[top] {
			t.Fatalf("ledger %d, %s: %d extracted, SDK reference %d", rl.Seq, top, len(out), counts[top])
		}
		for _, r := range out {
			if g := r.(ExtractedContractInvocationRecord); g.MemoText == nil || *g.MemoText == "" || g.ContractID != contract {
				t.Fatalf("ledger %d: %+v", rl.Seq, g)
			}
		}
		t.Logf("ledger %d: %d invocations of %s", rl.Seq, len(out), top)
		return
	}
	t.Fatal("no contract invocations on the real ledgers: the test would test nothing")
}

func TestContractInvocationExtractorConfig(t *testing.T) {
	c := cstr(synthFund)
	schema := func(mod func(s map[string]any)) map[string]any {
		cfg := fundingSchema(c)
		mod(cfg["extraction_schemas"].(map[string]any)["grants"].(map[string]any))
		return cfg
	}
	for want, cfg := range map[string]map[string]any{
		"extraction_schemas is required": {},
		`unknown field "payer"`: schema(func(s map[string]any) {
			s["extractors"].(map[string]any)["payer"] = map[string]any{"argument_index": 0, "field_type": "string"}
		}),
		"amount takes uint64": schema(func(s map[string]any) {
			s["extractors"].(map[string]any)["amount"] = map[string]any{"argument_index": 0, "field_type": "string"}
		}),
		"argument_index": schema(func(s map[string]any) {
			s["extractors"].(map[string]any)["email"] = map[string]any{"field_type": "string"}
		}),
		"pattern":                        schema(func(s map[string]any) { s["validation"] = map[string]any{"email": map[string]any{"pattern": "("}} }),
		"not a contract strkey":          schema(func(s map[string]any) { s["contract_ids"] = []any{"CNOTACONTRACT"} }),
		"function_name and contract_ids": schema(func(s map[string]any) { delete(s, "function_name") }),
	} {
		if _, err := component.Construct(NewContractInvocationExtractor, cfg, component.Env{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	two := fundingSchema(c)
	two["extraction_schemas"].(map[string]any)["again"] = two["extraction_schemas"].(map[string]any)["grants"]
	if _, err := component.Construct(NewContractInvocationExtractor, two, component.Env{}); err == nil || !strings.Contains(err.Error(), "again and grants both extract fund") {
		t.Errorf("two schemas for one function: %v", err)
	}
}
