package contract

import (
	"reflect"
	"testing"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestContractEventViewEqualsFullDecode checks the view path and the classic full-decode path
// (the benchmark's baseline) produce identical records.
func TestContractEventViewEqualsFullDecode(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t)[:1] {
		raw := rl.Raw
		p := proctest.New(t, NewContractEvent, map[string]any{"network": "pubnet"}).(*ContractEvent)
		l, _ := proctest.Wrap(t, raw)
		view, err := p.Process(proctest.BG, l, nil)
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
