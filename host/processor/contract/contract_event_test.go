package contract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refEvent is an expected contract event computed through the SDK's full decode.
type refEvent struct {
	key, txHash      string
	txIndex, evIndex int
	op               int // -1: transaction-level
	successful       bool
	typ              xdr.ContractEventType
	contractID       string
	topics           []string
	data             string
	xdrB64           string
}

// refContractEvents walks LedgerTransactionReader -> GetTransactionEvents (the classic path).
func refContractEvents(t testing.TB, raw []byte) []refEvent {
	t.Helper()
	_, txs := proctest.RefTxs(t, raw)
	var out []refEvent
	for _, tx := range txs {
		evs, err := tx.GetTransactionEvents()
		if err != nil {
			t.Fatal(err)
		}
		idx := 0
		add := func(ev xdr.ContractEvent, op int) {
			r := refEvent{txHash: tx.Hash.HexString(), txIndex: int(tx.Index), evIndex: idx, op: op,
				successful: tx.Result.Successful(), typ: ev.Type}
			r.key = fmt.Sprintf("pubnet:%d:%s:%d", tx.Ledger.LedgerSequence(), r.txHash, idx)
			idx++
			if ev.ContractId != nil {
				r.contractID = strkey.MustEncode(strkey.VersionByteContract, ev.ContractId[:])
			}
			for _, tp := range ev.Body.V0.Topics {
				b, _ := tp.MarshalBinary()
				r.topics = append(r.topics, base64.StdEncoding.EncodeToString(b))
			}
			b, _ := ev.Body.V0.Data.MarshalBinary()
			r.data = base64.StdEncoding.EncodeToString(b)
			r.xdrB64, err = xdr.MarshalBase64(xdr.DiagnosticEvent{InSuccessfulContractCall: true, Event: ev})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		for _, te := range evs.TransactionEvents {
			add(te.Event, -1)
		}
		for op, list := range evs.OperationEvents {
			for _, ev := range list {
				add(ev, op)
			}
		}
	}
	return out
}

func TestContractEventMatchesSDK(t *testing.T) {
	sawTxLevel, sawFailed := false, false
	for _, rl := range proctest.RealLedgers(t) {
		want := refContractEvents(t, rl.Raw)
		p := proctest.New(t, NewContractEvent, map[string]any{"network_passphrase": "Public Global Stellar Network ; September 2015"})
		l, decodes := proctest.Wrap(t, rl.Raw)
		recs, err := p.Process(proctest.BG, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := decodes.Load(); n != 0 {
			t.Fatalf("ledger %d: %d full decodes, want 0", rl.Seq, n)
		}
		if len(recs) != len(want) {
			t.Fatalf("ledger %d: %d events, SDK reports %d", rl.Seq, len(recs), len(want))
		}
		var gotKeys, wantKeys []string
		var okEv, failedEv int
		for i, r := range recs {
			g := r.(ContractEventRecord)
			w := want[i]
			gotKeys = append(gotKeys, g.NaturalKey())
			wantKeys = append(wantKeys, w.key)
			cid := ""
			if g.ContractID != nil {
				cid = *g.ContractID
			}
			if g.NaturalKey() != w.key || g.TransactionHash != w.txHash || g.TransactionIndex != w.txIndex ||
				g.EventIndex != w.evIndex || g.Successful != w.successful || g.Type != int32(w.typ) ||
				g.TypeString != w.typ.String() || cid != w.contractID || g.Data != w.data ||
				g.ContractEventXDR != w.xdrB64 || strings.Join(g.Topics, ",") != strings.Join(w.topics, ",") ||
				g.LedgerSequence != rl.Seq || !g.ClosedAt.Equal(l.CloseTime()) || !g.InSuccessfulContractCall {
				t.Fatalf("ledger %d event %d:\n got %+v\nwant %+v", rl.Seq, i, g, w)
			}
			if g.TransactionID != processor.TransactionID(rl.Seq, w.txIndex) {
				t.Fatalf("transaction_id %d", g.TransactionID)
			}
			m := proctest.JSONOf(t, g)
			if w.op < 0 {
				sawTxLevel = true
				if m["operation_id"] != nil || m["operation_index"] != nil {
					t.Fatalf("transaction-level event: operation_id %v, want JSON null", m["operation_id"])
				}
			} else if g.OperationID == nil || *g.OperationID != processor.OperationID(rl.Seq, w.txIndex, w.op) || *g.OperationIndex != w.op {
				t.Fatalf("event %d: operation id %v, want op %d", i, g.OperationID, w.op)
			}
			if !json.Valid(g.TopicsDecoded) || !json.Valid(g.DataDecoded) {
				t.Fatalf("invalid decoded JSON %s / %s", g.TopicsDecoded, g.DataDecoded)
			}
			if w.successful {
				okEv++
			} else {
				failedEv++
				sawFailed = true
			}
		}
		if proctest.Checksum(gotKeys) != proctest.Checksum(wantKeys) {
			t.Fatalf("key checksum differs")
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["events_found"] != float64(len(want)) || st["successful_events"] != float64(okEv) ||
			st["failed_events"] != float64(failedEv) || st["processed_ledgers"] != 1 || st["last_ledger"] != float64(rl.Seq) ||
			st["last_processed_time"] != 1700000000 {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d contract events (%d in failed txs), checksum %s", rl.Seq, len(recs), failedEv, proctest.Checksum(gotKeys))
	}
	if !sawTxLevel || !sawFailed {
		t.Logf("note: fixtures carry transaction-level events: %v, events of failed txs: %v", sawTxLevel, sawFailed)
	}
}

func TestContractEventFilters(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	want := refContractEvents(t, rl.Raw)
	// The busiest contract of the ledger, and per-type / per-success counts.
	byContract := map[string]int{}
	byType := map[xdr.ContractEventType]int{}
	okCount := 0
	for _, w := range want {
		byContract[w.contractID]++
		byType[w.typ]++
		if w.successful {
			okCount++
		}
	}
	top, second := "", ""
	for c, n := range byContract {
		if c == "" {
			continue
		}
		if top == "" || n > byContract[top] || (n == byContract[top] && c < top) {
			top = c
		}
	}
	for c := range byContract {
		if c != "" && c != top && (second == "" || c < second) {
			second = c
		}
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want int
		pred func(ContractEventRecord) bool
	}{
		{"one contract", map[string]any{"contract_ids": []any{top}}, byContract[top],
			func(r ContractEventRecord) bool { return r.ContractID != nil && *r.ContractID == top }},
		{"one contract under upstream's contract_id", map[string]any{"contract_id": top}, byContract[top],
			func(r ContractEventRecord) bool { return r.ContractID != nil && *r.ContractID == top }},
		{"contract_id and contract_ids together", map[string]any{"contract_id": top, "contract_ids": []any{second}}, byContract[top] + byContract[second],
			func(r ContractEventRecord) bool { return *r.ContractID == top || *r.ContractID == second }},
		{"two contracts as a comma list", map[string]any{"contract_ids": top + "," + second}, byContract[top] + byContract[second],
			func(r ContractEventRecord) bool { return *r.ContractID == top || *r.ContractID == second }},
		{"contract type", map[string]any{"event_types": []any{"contract"}}, byType[xdr.ContractEventTypeContract],
			func(r ContractEventRecord) bool { return r.Type == 1 }},
		{"contract type as upstream's number", map[string]any{"event_types": []any{1}}, byType[xdr.ContractEventTypeContract],
			func(r ContractEventRecord) bool { return r.Type == 1 }},
		{"system type", map[string]any{"event_types": []any{"ContractEventTypeSystem"}}, byType[xdr.ContractEventTypeSystem],
			func(r ContractEventRecord) bool { return r.Type == 0 }},
		{"successful only", map[string]any{"include_failed": "false"}, okCount,
			func(r ContractEventRecord) bool { return r.Successful }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"network": "pubnet"}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			p := proctest.New(t, NewContractEvent, cfg)
			l, _ := proctest.Wrap(t, rl.Raw)
			recs, err := p.Process(proctest.BG, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.want {
				t.Fatalf("%d events, want %d", len(recs), tc.want)
			}
			for _, r := range recs {
				if !tc.pred(r.(ContractEventRecord)) {
					t.Fatalf("filter let through %+v", r)
				}
			}
			st := p.(interface{ Stats() map[string]float64 }).Stats()
			if st["events_found"] != float64(tc.want) {
				t.Errorf("stats %v", st)
			}
		})
	}
	if top == "" || byContract[top] == len(want) || okCount == len(want) {
		t.Logf("note: filters not very selective on this fixture: top=%d ok=%d total=%d", byContract[top], okCount, len(want))
	}
}

// TestContractEventFilterBeforeDecode feeds an event whose topic is malformed: a filter that
// rejects the event must reject it without touching the topics (no error); without the filter
// the malformed topic is an error.
func TestContractEventFilterBeforeDecode(t *testing.T) {
	id := [32]byte{1, 2, 3}
	other := strkey.MustEncode(strkey.VersionByteContract, make([]byte, 32))
	var raw []byte
	raw = append(raw, 0, 0, 0, 0) // ext v0
	raw = append(raw, 0, 0, 0, 1) // contract id present
	raw = append(raw, id[:]...)
	raw = append(raw, 0, 0, 0, 1)                    // type contract
	raw = append(raw, 0, 0, 0, 0)                    // body v0
	raw = append(raw, 0, 0, 0, 1, 0, 0, 0, 99, 0, 0) // one topic of unknown ScVal type 99, truncated
	tx := txInfo{seq: 1, index: 1, successful: true}
	for _, tc := range []struct {
		cfg     map[string]any
		keep    bool
		wantErr bool
	}{
		{map[string]any{"network": "testnet", "contract_ids": []any{other}}, false, false},
		{map[string]any{"network": "testnet", "event_types": "system"}, false, false},
		{map[string]any{"network": "testnet"}, false, true},
	} {
		p := proctest.New(t, NewContractEvent, tc.cfg).(*ContractEvent)
		_, keep, err := p.event(tx, raw, 0, 0)
		if keep != tc.keep || (err != nil) != tc.wantErr {
			t.Errorf("%v: keep %v err %v", tc.cfg, keep, err)
		}
	}
}

func TestContractEventConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"network": "pubnet", "contract_ids": []any{"GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}},
		{"network": "pubnet", "event_types": []any{"bogus"}},
		{"network": "pubnet", "include_failed": "maybe"},
		{"network": "pubnet", "contractids": []any{}},
		{"network": "pubnet", "contract_id": "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUO"},
		{},
	} {
		if _, err := component.Construct(NewContractEvent, cfg, proctest.Env()); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

// TestScValJSON pins the JSON shape of decoded values.
func TestScValJSON(t *testing.T) {
	sym := xdr.ScSymbol("transfer")
	u := xdr.Uint32(7)
	i128 := xdr.Int128Parts{Hi: -1, Lo: xdr.Uint64(^uint64(0) - 4)} // -5
	vec := &xdr.ScVec{{Type: xdr.ScValTypeScvSymbol, Sym: &sym}, {Type: xdr.ScValTypeScvU32, U32: &u}}
	acct := xdr.MustAddress("GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7")
	addr := xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeAccount, AccountId: &acct}
	mp := &xdr.ScMap{{Key: xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &sym}, Val: xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &i128}}}
	for _, tc := range []struct {
		v    xdr.ScVal
		want string
	}{
		{xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &sym}, `{"symbol":"transfer"}`},
		{xdr.ScVal{Type: xdr.ScValTypeScvVoid}, `"void"`},
		{xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &i128}, `{"i128":"-5"}`},
		{xdr.ScVal{Type: xdr.ScValTypeScvVec, Vec: &vec}, `{"vec":[{"symbol":"transfer"},{"u32":7}]}`},
		{xdr.ScVal{Type: xdr.ScValTypeScvMap, Map: &mp}, `{"map":[{"key":{"symbol":"transfer"},"val":{"i128":"-5"}}]}`},
		{xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &addr}, `{"address":"GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"}`},
		{xdr.ScVal{Type: xdr.ScValTypeScvLedgerKeyContractInstance}, `"ledger_key_contract_instance"`},
	} {
		got, err := processor.ScValJSON(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("got %s (%v), want %s", got, err, tc.want)
		}
	}
}

// TestContractEventSynthetic checks the shapes the real fixtures lack, and the filters on a
// ledger where they are selective.
func TestContractEventSynthetic(t *testing.T) {
	raw := synthLedger(t)
	a := strkey.MustEncode(strkey.VersionByteContract, synthA[:])
	b := strkey.MustEncode(strkey.VersionByteContract, synthB[:])
	type ev struct {
		tx, idx int
		op      int // -1 transaction-level
		cid     string
		ok      bool
		topic   string
	}
	all := []ev{
		{1, 0, -1, a, true, "fee"}, {1, 1, 0, a, true, "transfer"}, {1, 2, 0, b, true, "mint"},
		{1, 3, 0, "", true, "core"}, {1, 4, 1, b, true, "burn"}, {2, 0, -1, a, false, "fee"},
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		keep func(ev) bool
	}{
		{"all", nil, func(ev) bool { return true }},
		{"contract A", map[string]any{"contract_ids": a}, func(e ev) bool { return e.cid == a }},
		{"contracts A and B", map[string]any{"contract_ids": []any{a, b}}, func(e ev) bool { return e.cid != "" }},
		{"system", map[string]any{"event_types": "system"}, func(e ev) bool { return e.topic == "core" }},
		{"contract type, B", map[string]any{"event_types": "contract", "contract_ids": b}, func(e ev) bool { return e.cid == b }},
		{"successful only", map[string]any{"include_failed": false}, func(e ev) bool { return e.ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"network": "testnet"}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			p := proctest.New(t, NewContractEvent, cfg)
			l, decodes := proctest.Wrap(t, raw)
			recs, err := p.Process(proctest.BG, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want []ev
			for _, e := range all {
				if tc.keep(e) {
					want = append(want, e)
				}
			}
			if len(recs) != len(want) || decodes.Load() != 0 {
				t.Fatalf("%d records (%d decodes), want %d", len(recs), decodes.Load(), len(want))
			}
			for i, r := range recs {
				g, w := r.(ContractEventRecord), want[i]
				m := proctest.JSONOf(t, g)
				wantKey := fmt.Sprintf("testnet:1000:%02x%s:%d", w.tx, strings.Repeat("0", 62), w.idx)
				if g.NaturalKey() != wantKey || g.TransactionIndex != w.tx || g.Successful != w.ok ||
					string(g.TopicsDecoded) != `[{"symbol":"`+w.topic+`"}]` || string(g.DataDecoded) != `{"i128":"42"}` {
					t.Fatalf("record %d: %+v, key %s want %s", i, g, g.NaturalKey(), wantKey)
				}
				if w.cid == "" {
					if m["contract_id"] != nil {
						t.Fatalf("contract_id %v, want JSON null", m["contract_id"])
					}
				} else if m["contract_id"] != w.cid {
					t.Fatalf("contract_id %v, want %s", m["contract_id"], w.cid)
				}
				if w.op < 0 {
					if m["operation_id"] != nil || m["operation_index"] != nil {
						t.Fatalf("operation_id %v, want JSON null", m["operation_id"])
					}
				} else if m["operation_id"] != json.Number(fmt.Sprint(processor.OperationID(1000, w.tx, w.op))) {
					t.Fatalf("operation_id %v", m["operation_id"])
				}
			}
			st := p.(interface{ Stats() map[string]float64 }).Stats()
			failed := 0
			for _, w := range want {
				if !w.ok {
					failed++
				}
			}
			if st["events_found"] != float64(len(want)) || st["failed_events"] != float64(failed) {
				t.Errorf("stats %v", st)
			}
		})
	}
}
