package processor

import (
	"reflect"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// TestContractEventViewEqualsFullDecode checks the view path and the classic full-decode path
// (the benchmark's baseline) produce identical records.
func TestContractEventViewEqualsFullDecode(t *testing.T) {
	for _, rl := range loadRealLedgers(t)[:1] {
		raw := rl.raw
		p := newProc(t, NewContractEvent, map[string]any{"network": "pubnet"}).(*ContractEvent)
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
	for typ, p := range map[string]component.Processor{
		"LatestLedger":  newProc(t, NewLatestLedger, map[string]any{"network": "pubnet"}),
		"ContractEvent": newProc(t, NewContractEvent, map[string]any{"network": "pubnet"}),
	} {
		l, _ := wrap(t, cut)
		if _, err := p.Process(bg, l, nil); err == nil {
			t.Errorf("%s: no error on a truncated ledger", typ)
		} else {
			t.Logf("%s: %v", typ, err)
		}
	}
}
