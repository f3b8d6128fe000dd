package payment

import (
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

func refTokenTransfers(t testing.TB, raw []byte) []*token_transfer.TokenTransferEvent {
	t.Helper()
	var lcm xdr.LedgerCloseMeta
	if err := xdr.SafeUnmarshal(raw, &lcm); err != nil {
		t.Fatal(err)
	}
	evs, err := token_transfer.NewEventsProcessor(network.PublicNetworkPassphrase).EventsFromLedger(lcm)
	if err != nil {
		t.Fatal(err)
	}
	if err := token_transfer.VerifyEvents(lcm, network.PublicNetworkPassphrase, false); err != nil {
		t.Fatalf("SDK event verification: %v", err)
	}
	return evs
}

func TestTokenTransferMatchesSDK(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		want := refTokenTransfers(t, rl.Raw)
		p := proctest.New(t, NewTokenTransfer, map[string]any{"network": "pubnet"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) || len(want) == 0 {
			t.Fatalf("ledger %d: %d records, SDK reports %d events", rl.Seq, len(recs), len(want))
		}
		if decodes.Load() != 1 {
			t.Errorf("ledger %d: %d decodes, want exactly 1", rl.Seq, decodes.Load())
		}
		var gotKeys, wantKeys []string
		topics := map[string]int{}
		for i, r := range recs {
			g, w := r.(TokenTransferRecord), want[i]
			m := w.GetMeta()
			wantKeys = append(wantKeys, fmt.Sprintf("pubnet:%d:%s:%d", m.LedgerSequence, m.TxHash, i))
			gotKeys = append(gotKeys, g.NaturalKey())
			topics[g.EventTopic]++
			if g.EventTopic != w.GetEventType() || g.AmountRaw != w.GetAmount() || g.TransactionHash != m.TxHash ||
				g.ContractID != m.ContractAddress || g.TransactionIndex != int(m.TransactionIndex) ||
				g.LedgerSequence != rl.Seq || !g.ClosedAt.Equal(l.CloseTime()) {
				t.Fatalf("ledger %d event %d: got %+v want %v", rl.Seq, i, g, w)
			}
			js := proctest.JSONOf(t, g)
			if (m.OperationIndex == nil) != (js["operation_id"] == nil) {
				t.Fatalf("event %d: operation_id %v, SDK op index %v", i, js["operation_id"], m.OperationIndex)
			}
			if m.OperationIndex != nil && *g.OperationID != processor.TransactionID(rl.Seq, int(m.TransactionIndex))+int64(*m.OperationIndex) {
				t.Fatalf("operation id %d", *g.OperationID)
			}
			switch g.EventTopic {
			case "fee":
				if js["to"] != nil || js["operation_id"] != nil || g.From == nil {
					t.Fatalf("fee event: to %v, operation_id %v, want JSON null", js["to"], js["operation_id"])
				}
			case "mint":
				if js["from"] != nil {
					t.Fatalf("mint: from %v, want null", js["from"])
				}
			case "burn", "clawback":
				if js["to"] != nil {
					t.Fatalf("%s: to %v, want null", g.EventTopic, js["to"])
				}
			}
			if (g.AssetType == nil) != (js["asset_code"] == nil && js["asset"] == nil) && *g.AssetType != "native" {
				t.Fatalf("asset nulls inconsistent: %v", js)
			}
			if g.AssetType != nil && *g.AssetType == "native" && (js["asset_code"] != nil || js["asset_issuer"] != nil) {
				t.Fatalf("native asset with code/issuer: %v", js)
			}
			if js["to_muxed"] == nil != (js["to_muxed_id"] == nil) {
				t.Fatalf("to_muxed %v / to_muxed_id %v", js["to_muxed"], js["to_muxed_id"])
			}
		}
		if proctest.Checksum(gotKeys) != proctest.Checksum(wantKeys) {
			t.Fatalf("key checksum differs")
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["events_found"] != float64(len(want)) || st["fee_events"] != float64(topics["fee"]) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d token transfer events %v, checksum %s", rl.Seq, len(recs), topics, proctest.Checksum(gotKeys))
	}
}

func TestTokenTransferFilters(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	want := refTokenTransfers(t, rl.Raw)
	all := make([]TokenTransferRecord, 0, len(want))
	{
		p := proctest.New(t, NewTokenTransfer, map[string]any{"network": "pubnet"})
		l := proctest.Shared(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			all = append(all, r.(TokenTransferRecord))
		}
	}
	// A busy sender and a credit asset of this ledger.
	fromCount := map[string]int{}
	var credit string
	for _, r := range all {
		if r.From != nil {
			fromCount[*r.From]++
		}
		if credit == "" && r.AssetCode != nil {
			credit = *r.AssetCode + ":" + *r.AssetIssuer
		}
	}
	busy := ""
	for a, n := range fromCount {
		if busy == "" || n > fromCount[busy] || (n == fromCount[busy] && a < busy) {
			busy = a
		}
	}
	if credit == "" || busy == "" {
		t.Fatal("fixture ledger lacks a credit asset or a sender")
	}
	count := func(pred func(TokenTransferRecord) bool) int {
		n := 0
		for _, r := range all {
			if pred(r) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		pred func(TokenTransferRecord) bool
	}{
		{"native", map[string]any{"assets": "native"}, func(r TokenTransferRecord) bool { return r.AssetType != nil && *r.AssetType == "native" }},
		{"credit asset", map[string]any{"assets": []any{credit}}, func(r TokenTransferRecord) bool {
			return r.AssetCode != nil && *r.AssetCode+":"+*r.AssetIssuer == credit
		}},
		{"account", map[string]any{"accounts": []any{busy}}, func(r TokenTransferRecord) bool {
			return (r.From != nil && *r.From == busy) || (r.To != nil && *r.To == busy)
		}},
		{"fee events", map[string]any{"event_types": "fee"}, func(r TokenTransferRecord) bool { return r.EventTopic == "fee" }},
		{"transfers of native", map[string]any{"event_types": "transfer", "assets": "XLM"}, func(r TokenTransferRecord) bool {
			return r.EventTopic == "transfer" && r.AssetType != nil && *r.AssetType == "native"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"network": "pubnet"}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			p := proctest.New(t, NewTokenTransfer, cfg)
			l := proctest.Shared(t, rl.Raw)
			recs, err := p.Process(proctest.BG, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			n := count(tc.pred)
			if len(recs) != n || n == 0 || n == len(all) {
				t.Fatalf("%d records, want %d of %d (and a selective filter)", len(recs), n, len(all))
			}
			for _, r := range recs {
				if !tc.pred(r.(TokenTransferRecord)) {
					t.Fatalf("filter let through %+v", r)
				}
			}
		})
	}
}

func TestTokenTransferConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"network": "pubnet", "assets": "USDC"},
		{"network": "pubnet", "assets": "USDC:nope"},
		{"network": "pubnet", "accounts": "GNOPE"},
		{"network": "pubnet", "event_types": "swap"},
		{"network": "pubnet", "asset": "native"},
		{"assets": "native"},
	} {
		if _, err := component.Construct(NewTokenTransfer, cfg, proctest.Env()); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}
