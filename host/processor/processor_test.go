package processor

import (
	"reflect"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

func TestRegister(t *testing.T) {
	r := component.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"LatestLedger", "ContractEvent", "ContractEventProcessor", "StellarContractEvent",
		"TokenTransfer", "ContractData", "ContractDataProcessor", "FilterPayments", "TransformToAppPayment"} {
		if !r.Known(component.KindProcessor, name) {
			t.Errorf("%s not registered", name)
		}
		// Constructors are side-effect free and validate strictly.
		if err := r.Check(component.KindProcessor, name, map[string]any{"network": "testnet"}, ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := r.Check(component.KindProcessor, name, map[string]any{"network": "testnet", "no_such_key": 1}, ""); err == nil {
			t.Errorf("%s: unknown key accepted", name)
		}
		if err := r.Check(component.KindProcessor, name, map[string]any{}, ""); err == nil {
			t.Errorf("%s: missing network accepted", name)
		}
		if err := r.Check(component.KindProcessor, name, map[string]any{}, "pubnet"); err != nil {
			t.Errorf("%s does not follow the pipeline's network: %v", name, err)
		}
	}
	if err := Register(r); err == nil {
		t.Error("registering twice: no error")
	}
}

// TestContractEventViewEqualsFullDecode checks the view path and the classic full-decode path
// (the benchmark's baseline) produce identical records.
func TestContractEventViewEqualsFullDecode(t *testing.T) {
	for _, rl := range loadRealLedgers(t)[:1] {
		raw := rl.raw
		p := newProc(t, "ContractEvent", map[string]any{"network": "pubnet"}).(*ContractEvent)
		l, _ := wrap(t, raw)
		view, err := p.Process(bg, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		lcm, err := l.Decoded()
		if err != nil {
			t.Fatal(err)
		}
		full, err := fullDecodeEvents(p, *lcm)
		if err != nil {
			t.Fatal(err)
		}
		if len(view) == 0 || !reflect.DeepEqual(view, full) {
			t.Fatalf("view (%d records) and full decode (%d records) differ", len(view), len(full))
		}
	}
}

// TestTruncatedLedger: a ledger cut short after its header is an error, not a panic, on the
// view paths.
func TestTruncatedLedger(t *testing.T) {
	raw := loadRealLedgers(t)[0].raw
	cut := append([]byte(nil), raw[:len(raw)/2]...)
	for _, typ := range []string{"LatestLedger", "ContractEvent"} {
		l, _ := wrap(t, cut)
		if _, err := newProc(t, typ, map[string]any{"network": "pubnet"}).Process(bg, l, nil); err == nil {
			t.Errorf("%s: no error on a truncated ledger", typ)
		} else {
			t.Logf("%s: %v", typ, err)
		}
	}
}
