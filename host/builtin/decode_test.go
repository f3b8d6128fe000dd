package builtin

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// extraConfig is what a processor of the table needs besides its network to be built.
var extraConfig = map[string]map[string]any{
	"ContractInvocationExtractor": {"extraction_schemas": map[string]any{"kale": map[string]any{"function_name": "plant",
		"contract_ids": []any{"CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"},
		"extractors":   map[string]any{"funder": map[string]any{"argument_index": 0, "field_type": "address"}}}}},
	"ContractFilter": {"contract_ids": []any{"CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"}},
	"FilterEventsProcessor": {"rules": []any{map[string]any{"field": "contract_id", "operator": "eq",
		"value": "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"}}},
}

// Issue 19: a processor that reads the full decode (l.Decoded, directly or through
// ledger.Derive) declares component.NeedsDecode, so the host decodes its ledgers ahead on
// parallel workers and shares the decode with every pipeline holding the ledger; one that
// declares it reads the decode (or the host would decode for nothing). Each processor of the
// table runs, first in its chain, on the real pubnet ledgers with its own decode counter.
func TestFullDecodeProcessorsDeclareIt(t *testing.T) {
	r := registry(t)
	var decoders int
	for _, s := range r.Specs() {
		if s.Kind != component.KindProcessor {
			continue
		}
		cfg := map[string]any{"network": "pubnet"}
		for k, v := range extraConfig[s.Type] {
			cfg[k] = v
		}
		p, err := r.NewProcessor(s.Type, cfg, proctest.Env())
		if err != nil {
			t.Errorf("%s: building it with %v: %v", s.Type, cfg, err)
			continue
		}
		nd, ok := p.(component.NeedsDecode)
		declared := ok && nd.NeedsDecode()
		var decoded int64
		for _, rl := range proctest.RealLedgers(t) {
			l, performed := proctest.Wrap(t, rl.Raw)
			if _, err := p.Process(proctest.BG, l, nil); err != nil {
				t.Errorf("%s on ledger %d: %v", s.Type, rl.Seq, err)
			}
			decoded += performed.Load()
		}
		switch {
		case decoded > 0 && !declared:
			t.Errorf("%s decoded %d ledgers fully without declaring component.NeedsDecode", s.Type, decoded)
		case decoded == 0 && declared:
			t.Errorf("%s declares component.NeedsDecode but decoded none of the ledgers", s.Type)
		}
		if declared {
			decoders++
		}
		if c, ok := p.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	if decoders < 10 {
		t.Errorf("%d full-decode processors in the table, want the catalogue's (at least 10)", decoders)
	}
}
