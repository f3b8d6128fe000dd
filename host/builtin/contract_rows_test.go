package builtin

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// The contract processors take the configs of upstream's shipped files (and the keys upstream
// reads) without unknown keys, and refuse what they must refuse.
func TestContractRowsTakeUpstreamConfigs(t *testing.T) {
	r := registry(t)
	const usdc = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"
	for _, tc := range []struct {
		typ string
		cfg map[string]any
	}{
		// kwickbit-payments-pubsub-v2.yaml (the ids there are placeholders; real ids here)
		{"ContractEvent", map[string]any{"contract_id": usdc}},
		{"EventPaymentExtractor", map[string]any{"payment_contract_id": usdc}},
		// soroswap_postgresql_template.yaml
		{"ContractEvent", map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015"}},
		{"Soroswap", map[string]any{}},
		// stellar_contract_events_filtered.yaml (its `name` key is left out: cdpd names components on the entry)
		{"StellarContractEvent", map[string]any{"network_passphrase": "Test SDF Network ; September 2015", "event_types": []any{1}}},
		// contract_events_rpc.yaml / usdc_transfers_rpc.yaml: config {} and the getEvents request moved in
		{"GetEventsRPC", map[string]any{}},
		{"GetEventsRPC", map[string]any{"xdrFormat": "json", "filters": []any{map[string]any{"type": "contract",
			"contractIds": []any{usdc}, "topics": []any{[]any{"AAAADwAAAAh0cmFuc2Zlcg==", "*", "*", "*"}}}}}},
		{"ContractData", map[string]any{"contract_id": usdc}},
		{"ContractDataProcessor", map[string]any{}},
		{"ContractInvocation", map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015"}},
		{"FilteredContractInvocation", map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015",
			"contract_ids": []any{usdc}, "account_ids": []any{"GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}}},
		{"ContractCreation", map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015"}},
		{"ContractFilter", map[string]any{"contract_id": usdc, "contract_ids": []any{usdc}}},
		{"FilterEventsProcessor", map[string]any{"rules": []any{map[string]any{"field": "contractId", "operator": "eq", "value": "abc"}}}},
	} {
		unknown, err := r.Check(component.KindProcessor, tc.typ, tc.cfg, "pubnet")
		if err != nil || len(unknown) != 0 {
			t.Errorf("%s %v: unknown %v, err %v", tc.typ, tc.cfg, unknown, err)
		}
	}
	for _, tc := range []struct {
		typ string
		cfg map[string]any
	}{
		{"ContractFilter", map[string]any{}},
		{"FilterEventsProcessor", map[string]any{}},
		{"GetEventsRPC", map[string]any{"filters": []any{map[string]any{"type": "diagnostic"}}}},
		{"EventPaymentExtractor", map[string]any{"payment_contract_id": "YOUR_KWICKBIT_CONTRACT_ID"}},
	} {
		if _, err := r.Check(component.KindProcessor, tc.typ, tc.cfg, "pubnet"); err == nil {
			t.Errorf("%s %v accepted", tc.typ, tc.cfg)
		}
	}
}
