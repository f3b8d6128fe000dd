package processor_test

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

// TestTruncatedLedger: a ledger cut short after its header is an error, not a panic, on the
// view paths.
func TestTruncatedLedger(t *testing.T) {
	whole := proctest.RealLedgers(t)[0].Raw
	cut := append([]byte(nil), whole[:len(whole)/2]...)
	for typ, p := range map[string]component.Processor{
		"LatestLedger":  proctest.New(t, raw.NewLatestLedger, map[string]any{"network": "pubnet"}),
		"ContractEvent": proctest.New(t, contract.NewContractEvent, map[string]any{"network": "pubnet"}),
	} {
		l, _ := proctest.Wrap(t, cut)
		if _, err := p.Process(proctest.BG, l, nil); err == nil {
			t.Errorf("%s: no error on a truncated ledger", typ)
		} else {
			t.Logf("%s: %v", typ, err)
		}
	}
}
