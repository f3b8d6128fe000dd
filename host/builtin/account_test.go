package builtin

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// The account and trade processors and the aliases upstream's own files use for them
// (CreateAccountTransformer in pipeline_config_buffered.yaml, PaymentProcessor in
// parquet-multi-consumer-pipeline.yaml, which upstream itself cannot load) resolve, follow the
// pipeline's network and report unknown keys.
func TestAccountAndTradeProcessors(t *testing.T) {
	r := registry(t)
	for _, tc := range []struct {
		name string
		cfg  map[string]any
	}{
		{"ProcessAccountDataFull", nil}, {"AccountData", nil}, {"CreateAccount", nil}, {"CreateAccountTransformer", nil},
		{"AccountTransaction", map[string]any{"account": "GCAQSQVXUJZPDND4EUWQYRCJ64IGQ3REQK2CVSXHUQQ26GCTEMIGJDSC", "year": 2025}},
		{"TransformToAppTrustline", nil}, {"TransformToAppTrade", nil},
		{"PaymentProcessor", map[string]any{"min_amount": "1000.00"}},
	} {
		if !r.Known(component.KindProcessor, tc.name) {
			t.Errorf("%s is not registered", tc.name)
			continue
		}
		if _, err := r.Check(component.KindProcessor, tc.name, tc.cfg, ""); err == nil {
			t.Errorf("%s: missing network accepted", tc.name)
		}
		cfg := map[string]any{"buffer_size": 2000}
		for k, v := range tc.cfg {
			cfg[k] = v
		}
		unknown, err := r.Check(component.KindProcessor, tc.name, cfg, "pubnet")
		if err != nil || len(unknown) != 1 || unknown[0].Key != "buffer_size" {
			t.Errorf("%s: unknown %v, err %v", tc.name, unknown, err)
		}
	}
	// PaymentProcessor is FilterPayments: its min_amount is checked as FilterPayments checks it.
	if _, err := r.Check(component.KindProcessor, "PaymentProcessor", map[string]any{"min_amount": "lots"}, "pubnet"); err == nil {
		t.Error("PaymentProcessor: a bad min_amount accepted")
	}
}
