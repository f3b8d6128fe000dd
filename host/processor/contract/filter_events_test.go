package contract

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestFilterEventsProcessor checks the rules against counts taken from the SDK's transaction
// reader (refContractData: every contract data change, in apply order).
func TestFilterEventsProcessor(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		all := refContractData(t, rl.Raw)
		n := map[string]int{}
		top := ""
		for _, c := range all {
			n[c.contract]++
			if top == "" || n[c.contract] > n[top] {
				top = c.contract
			}
		}
		topHex := hex.EncodeToString(strkey.MustDecode(strkey.VersionByteContract, top))
		count := func(pred func(refChange) bool) (c int) {
			for _, x := range all {
				if pred(x) {
					c++
				}
			}
			return c
		}
		updates := count(func(x refChange) bool { return x.changeType == xdr.LedgerEntryChangeTypeLedgerEntryUpdated })
		rule := func(field, op, value string) map[string]any {
			return map[string]any{"field": field, "operator": op, "value": value}
		}
		for _, tc := range []struct {
			name  string
			rules []any
			want  int
		}{
			{"upstream's hex contractId", []any{rule("contractId", "eq", strings.ToUpper(topHex))}, n[top]},
			{"strkey contract_id", []any{rule("contract_id", "eq", top)}, n[top]},
			{"not that contract", []any{rule("contractId", "neq", top)}, len(all) - n[top]},
			{"hex prefix", []any{rule("contractId", "startsWith", topHex[:10])}, n[top]},
			{"updated", []any{rule("change_type", "eq", "updated")}, updates},
			{"that contract's updates", []any{rule("contract_id", "eq", top), rule("change_type", "eq", "UPDATED")},
				count(func(x refChange) bool {
					return x.contract == top && x.changeType == xdr.LedgerEntryChangeTypeLedgerEntryUpdated
				})},
			{"persistent", []any{rule("contract_durability", "contains", "persist")}, -1},
		} {
			p := proctest.New(t, NewFilterEventsProcessor, map[string]any{"network": "pubnet", "rules": tc.rules})
			recs, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want >= 0 && len(recs) != tc.want {
				t.Fatalf("ledger %d %s: %d changes, want %d", rl.Seq, tc.name, len(recs), tc.want)
			}
			// Keys are ContractData's: a filtered change keeps its position among all changes.
			keys := map[string]bool{}
			for _, w := range all {
				keys[w.key] = true
			}
			for _, r := range recs {
				if !keys[r.NaturalKey()] || r.RecordKind() != "contract_data" {
					t.Fatalf("%s: key %s kind %s", tc.name, r.NaturalKey(), r.RecordKind())
				}
			}
		}
		// 53312000's changes are all one contract's; 58752000's are several contracts'.
		t.Logf("ledger %d: %d changes, %d of the busiest contract, %d updates", rl.Seq, len(all), n[top], updates)
		if (rl.Seq == 58752000 && n[top] == len(all)) || updates == 0 || updates == len(all) {
			t.Fatalf("ledger %d: rules not selective (top %d, updates %d of %d)", rl.Seq, n[top], updates, len(all))
		}
	}
}

func TestFilterEventsProcessorConfigErrors(t *testing.T) {
	for name, rules := range map[string][]any{
		"no rules":         nil,
		"unknown field":    {map[string]any{"field": "amount", "operator": "eq", "value": "1"}},
		"unknown operator": {map[string]any{"field": "contractId", "operator": "gt", "value": "1"}},
	} {
		_, err := component.Construct(NewFilterEventsProcessor, map[string]any{"network": "pubnet", "rules": rules}, proctest.Env())
		if err == nil || !strings.Contains(err.Error(), "FilterEventsProcessor") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
