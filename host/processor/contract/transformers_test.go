package contract

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// chain runs ContractEvent (all events) on raw and hands its records to the processor p.
func chain(t *testing.T, network string, raw []byte, p component.Processor) ([]component.Record, []component.Record) {
	t.Helper()
	events := proctest.Run(t, NewContractEvent, map[string]any{"network": network}, raw, nil)
	out, err := p.Process(proctest.BG, proctest.Shared(t, raw), events)
	if err != nil {
		t.Fatal(err)
	}
	return events, out
}

// refTopicCount counts, through the SDK's transaction reader, the events of successful
// transactions whose first topic's text is ns and second topic is the symbol kind ("" any).
func refTopicCount(t testing.TB, raw []byte, passphrase string, pred func(topics []xdr.ScVal) bool) int {
	t.Helper()
	n := 0
	for _, e := range refRPCEvents(t, raw, passphrase) {
		if e.ok && e.ev.Type == xdr.ContractEventTypeContract && pred(e.ev.Body.V0.Topics) {
			n++
		}
	}
	return n
}

func isSoroswap(ts []xdr.ScVal) bool {
	return len(ts) >= 2 && (name(ts[0]) == "SoroswapPair" || name(ts[0]) == "SoroswapFactory")
}

func isPayment(ts []xdr.ScVal) bool { return firstSymbol(ts) == "payment" }

func TestSoroswapAndPaymentsRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		// Neither ledger carries Soroswap or Kwickbit events (0 == 0); the synthetic tests
		// below have them.
		for name, tc := range map[string]struct {
			p    component.Processor
			pred func([]xdr.ScVal) bool
		}{
			"Soroswap":              {proctest.New(t, NewSoroswap, nil), isSoroswap},
			"EventPaymentExtractor": {proctest.New(t, NewEventPaymentExtractor, nil), isPayment},
		} {
			events, out := chain(t, "pubnet", rl.Raw, tc.p)
			if want := refTopicCount(t, rl.Raw, pubnet, tc.pred); len(out) != want || want != 0 {
				t.Fatalf("%s on %d: %d records, SDK reference %d", name, rl.Seq, len(out), want)
			}
			if st := tc.p.(component.StatsReporter).Stats(); st["processed_ledgers"] != 1 ||
				(st["processed_events"]+st["total_events"]) != float64(len(events)) {
				t.Errorf("%s stats %v", name, st)
			}
		}
	}
}

func TestSoroswapSynthetic(t *testing.T) {
	raw := synthAppEvents(t)
	p := proctest.New(t, NewSoroswap, nil)
	events, out := chain(t, "testnet", raw, p)
	pair, f1, f2 := cstr(synthPair), cstr(synthFactory), cstr(synthFactory2)
	var got []string
	for _, r := range out {
		switch g := r.(type) {
		case SoroswapNewPairRecord:
			got = append(got, fmt.Sprintf("new_pair %s %s %s/%s", g.ContractID[:4], g.PairAddress[:4], g.Token0[:4], g.Token1[:4]))
			if g.PairAddress != pair || g.Token0 != cstr(synthA) || g.Token1 != cstr(synthB) || (g.ContractID != f1 && g.ContractID != f2) {
				t.Fatalf("%+v", g)
			}
		case SoroswapSyncRecord:
			got = append(got, fmt.Sprintf("sync %s %s/%s", g.ContractID[:4], g.NewReserve0, g.NewReserve1))
		case SoroswapSwapRecord:
			got = append(got, fmt.Sprintf("swap %s %s %s,%s,%s,%s", g.ContractID[:4], g.To[:4], g.Amount0In, g.Amount1In, g.Amount0Out, g.Amount1Out))
		}
		if !strings.HasPrefix(r.NaturalKey(), "testnet:3000:") || r.RecordKind() != "soroswap_"+strings.Fields(got[len(got)-1])[0] {
			t.Fatalf("key %s kind %s", r.NaturalKey(), r.RecordKind())
		}
	}
	want := []string{
		"new_pair " + f1[:4] + " " + pair[:4] + " " + cstr(synthA)[:4] + "/" + cstr(synthB)[:4],
		"new_pair " + f2[:4] + " " + pair[:4] + " " + cstr(synthA)[:4] + "/" + cstr(synthB)[:4],
		"sync " + pair[:4] + " 18446744073709551621/7", // 1<<64 + 5: every bit of the i128
		"swap " + pair[:4] + " " + synthAlice.Address()[:4] + " 10,0,0,9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The reference counts every Soroswap-namespace event of the successful transaction:
	// the four above, the deposit (not a kind Soroswap emits) and the malformed sync.
	if n := refTopicCount(t, raw, testnet, isSoroswap); n != len(want)+2 {
		t.Fatalf("reference: %d Soroswap events", n)
	}
	st := p.(component.StatsReporter).Stats()
	if st["new_pair_events"] != 2 || st["sync_events"] != 1 || st["swap_events"] != 1 || st["decode_errors"] != 1 ||
		st["processed_events"] != float64(len(events)) {
		t.Errorf("stats %v", st)
	}
	only := proctest.New(t, NewSoroswap, map[string]any{"factory_contract_id": f1})
	_, out = chain(t, "testnet", raw, only)
	if len(out) != 3 || out[0].(SoroswapNewPairRecord).ContractID != f1 {
		t.Fatalf("factory filter: %+v", out)
	}
}

func TestEventPaymentExtractorSynthetic(t *testing.T) {
	raw := synthAppEvents(t)
	for _, tc := range []struct {
		cfg  map[string]any
		want int
	}{{nil, 2}, {map[string]any{"payment_contract_id": cstr(synthKwick)}, 1}} {
		p := proctest.New(t, NewEventPaymentExtractor, tc.cfg)
		_, out := chain(t, "testnet", raw, p)
		if len(out) != tc.want {
			t.Fatalf("%v: %d payments, want %d", tc.cfg, len(out), tc.want)
		}
		g := out[0].(EventPaymentRecord)
		// The payment is the first event of the second operation: event index 8 in its
		// transaction (after the fee event and the first operation's 7), 0 in its operation.
		hash := g.TxHash
		if g.ID != "3000-"+hash[:8]+"-0" || g.NaturalKey() != "testnet:3000:"+hash+":8" || g.PaymentID != "0x71b203"+strings.Repeat("0", 58) ||
			g.TokenID != cstr(synthToken) || g.Amount != 100000 || g.FromID != synthAlice.Address() || g.MerchantID != synthBob.Address() ||
			g.RoyaltyAmount != 2000 || g.BlockHeight != 3000 || g.BlockTimestamp.Unix() != 1700000000 {
			t.Fatalf("%+v key %s", g, g.NaturalKey())
		}
		st := p.(component.StatsReporter).Stats()
		if st["extracted_payments"] != float64(tc.want) || (tc.cfg == nil && st["extraction_errors"] != 1) {
			t.Errorf("stats %v", st)
		}
	}
	// The reference: three payment events in the successful transaction (two well formed,
	// one of them another contract's, and one broken).
	if n := refTopicCount(t, raw, testnet, isPayment); n != 3 {
		t.Fatalf("reference: %d payment events", n)
	}
}

func TestContractFilter(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	kale := "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"
	want := 0
	for _, e := range refContractEvents(t, rl.Raw) {
		if e.contractID == kale {
			want++
		}
	}
	for _, tc := range []struct {
		cfg  map[string]any
		want int
	}{
		{map[string]any{"contract_id": kale}, want},
		{map[string]any{"contract_ids": []any{cstr(synthA), kale}}, want},
		{map[string]any{"contract_ids": cstr(synthA)}, 0},
	} {
		p := proctest.New(t, NewContractFilter, tc.cfg)
		events, out := chain(t, "pubnet", rl.Raw, p)
		if len(out) != tc.want || want == 0 || len(events) != 18 {
			t.Fatalf("%v: %d of %d events kept, want %d", tc.cfg, len(out), len(events), tc.want)
		}
	}
	// Mixed kinds: invocations of A and events of A pass, B's do not, foreign kinds are dropped.
	raw := synthSoroban(t)
	invs := proctest.Run(t, NewContractInvocation, map[string]any{"network": "testnet"}, raw, nil)
	in := append(append([]component.Record{}, invs...), foreign{}, ContractEventRecord{ContractID: ptr(cstr(synthA))}, ContractEventRecord{})
	p := proctest.New(t, NewContractFilter, map[string]any{"contract_id": cstr(synthA)})
	out, err := p.Process(proctest.BG, proctest.Shared(t, raw), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].(ContractInvocationRecord).ContractID != cstr(synthA) || out[2].RecordKind() != "contract_events" {
		t.Fatalf("kept %+v", out)
	}
	if st := p.(component.StatsReporter).Stats(); st["records_other_kind"] != 1 || st["records_filtered"] != float64(len(in)-4) {
		t.Errorf("stats %v", st)
	}
	if _, err := component.Construct(NewContractFilter, map[string]any{}, proctest.Env()); err == nil {
		t.Error("a ContractFilter without contracts was accepted")
	}
}

type foreign struct{}

func (foreign) RecordKind() string { return "foreign" }
func (foreign) NaturalKey() string { return "x" }

func ptr[T any](v T) *T { return &v }

// TestKwickbitChain runs upstream's kwickbit chain: ContractEvent (contract_id) ->
// ContractFilter -> EventPaymentExtractor (payment_contract_id).
func TestKwickbitChain(t *testing.T) {
	raw := synthAppEvents(t)
	kwick := cstr(synthKwick)
	l := proctest.Shared(t, raw)
	var recs []component.Record
	for _, p := range []component.Processor{
		proctest.New(t, NewContractEvent, map[string]any{"network": "testnet", "contract_id": kwick}),
		proctest.New(t, NewContractFilter, map[string]any{"contract_id": kwick}),
		proctest.New(t, NewEventPaymentExtractor, map[string]any{"payment_contract_id": kwick}),
	} {
		var err error
		if recs, err = p.Process(proctest.BG, l, recs); err != nil {
			t.Fatal(err)
		}
	}
	if len(recs) != 1 || recs[0].(EventPaymentRecord).Amount != 100000 {
		t.Fatalf("%+v", recs)
	}
}
