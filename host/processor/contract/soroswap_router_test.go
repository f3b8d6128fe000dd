package contract

import (
	"slices"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

var synthRouter = xdr.ContractId{0x5e}

// synthRouterEvents: testnet ledger 3001. tx 1 (successful), one operation: the router's
// swap along A -> B -> C (amount in beyond 2^64), add and remove liquidity of A/B, its init
// event, a pair's swap (SoroswapPair namespace: not a router event, which upstream took
// for one), an "add" of another contract without the namespace, and a router swap whose
// amounts do not match its path. tx 2 (failed) repeats the swap.
func synthRouterEvents(t testing.TB) []byte {
	t.Helper()
	ns := scStr("SoroswapRouter")
	swap := event(synthRouter, scStruct("path", proctest.ScVec(scContract(synthA), scContract(synthB), scContract(synthC)),
		"amounts", proctest.ScVec(scI128Parts(1, 5), scI128(40), scI128(39)), "to", scAccount(synthAlice)), ns, scSym("swap"))
	liquidity := func(kind string, a, b, lp uint64) xdr.ContractEvent {
		return event(synthRouter, scStruct("token_a", scContract(synthA), "token_b", scContract(synthB), "pair", scContract(synthPair),
			"amount_a", scI128(a), "amount_b", scI128(b), "liquidity", scI128(lp), "to", scAccount(synthBob)), ns, scSym(kind))
	}
	op, res := bumpOp()
	return synthLedgerTxs(t, 3001, testnet,
		synthSpec{source: synthAlice, ops: []xdr.Operation{op}, results: []xdr.OperationResultTr{res},
			opMeta: []xdr.OperationMetaV2{{Events: []xdr.ContractEvent{
				swap, liquidity("add", 100, 200, 141), liquidity("remove", 10, 20, 14),
				event(synthRouter, scStruct("factory", scContract(synthFactory)), ns, scSym("init")),
				event(synthPair, scStruct("to", scAccount(synthAlice), "amount_0_in", scI128(10), "amount_1_in", scI128(0),
					"amount_0_out", scI128(0), "amount_1_out", scI128(9)), scStr("SoroswapPair"), scSym("swap")),
				event(synthC, scStruct("token_a", scContract(synthA)), scSym("add"), scSym("x")),
				event(synthRouter, scStruct("path", proctest.ScVec(scContract(synthA), scContract(synthB)), "amounts", proctest.ScVec(scI128(1)),
					"to", scAccount(synthAlice)), ns, scSym("swap")),
			}}}},
		synthSpec{source: synthBob, ops: []xdr.Operation{op}, results: []xdr.OperationResultTr{res}, failed: true,
			opMeta: []xdr.OperationMetaV2{{Events: []xdr.ContractEvent{swap}}}},
	)
}

// isRouter: the router's swap, add and remove events.
func isRouter(ts []xdr.ScVal) bool {
	return len(ts) >= 2 && name(ts[0]) == "SoroswapRouter" && slices.Contains([]string{"swap", "add", "remove"}, name(ts[1]))
}

func TestSoroswapRouterSynthetic(t *testing.T) {
	raw := synthRouterEvents(t)
	p := proctest.New(t, NewSoroswapRouter, nil)
	events, out := chain(t, "testnet", raw, p)
	router, pair, a, b, c := cstr(synthRouter), cstr(synthPair), cstr(synthA), cstr(synthB), cstr(synthC)
	alice, bob := synthAlice.Address(), synthBob.Address()
	want := []SoroswapRouterRecord{
		{Type: "swap", Account: alice, TokenA: a, TokenB: c, AmountA: "18446744073709551621", AmountB: "39",
			Path: []string{a, b, c}, Amounts: []string{"18446744073709551621", "40", "39"}},
		{Type: "add", Account: bob, TokenA: a, TokenB: b, AmountA: "100", AmountB: "200", Pair: pair, Liquidity: "141"},
		{Type: "remove", Account: bob, TokenA: a, TokenB: b, AmountA: "10", AmountB: "20", Pair: pair, Liquidity: "14"},
	}
	if len(out) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(out), len(want), out)
	}
	keys := map[string]bool{}
	for i, r := range out {
		g := r.(SoroswapRouterRecord)
		if g.ContractID != router || g.LedgerSequence != 3001 || g.TxHash == "" || g.Timestamp.IsZero() ||
			!strings.HasPrefix(g.NaturalKey(), "testnet:3001:"+g.TxHash+":") || keys[g.NaturalKey()] {
			t.Fatalf("record %d: %+v key %s", i, g, g.NaturalKey())
		}
		keys[g.NaturalKey()] = true
		w := want[i]
		w.Timestamp, w.LedgerSequence, w.ContractID, w.TxHash, w.key = g.Timestamp, g.LedgerSequence, g.ContractID, g.TxHash, g.key
		if !equalRouter(g, w) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	// The independent count (the SDK's transaction reader): the router's swap, add and remove
	// events of successful transactions are the three above and the malformed swap.
	if n := refTopicCount(t, raw, testnet, isRouter); n != len(want)+1 {
		t.Fatalf("reference: %d router events", n)
	}
	st := p.(component.StatsReporter).Stats()
	if st["swap_events"] != 1 || st["add_events"] != 1 || st["remove_events"] != 1 || st["decode_errors"] != 1 ||
		st["processed_events"] != float64(len(events)) || st["processed_ledgers"] != 1 {
		t.Errorf("stats %v", st)
	}
}

func equalRouter(a, b SoroswapRouterRecord) bool {
	return a.Type == b.Type && a.Account == b.Account && a.TokenA == b.TokenA && a.TokenB == b.TokenB && a.AmountA == b.AmountA &&
		a.AmountB == b.AmountB && a.Pair == b.Pair && a.Liquidity == b.Liquidity && slices.Equal(a.Path, b.Path) &&
		slices.Equal(a.Amounts, b.Amounts)
}

func TestSoroswapRouterRealLedgers(t *testing.T) {
	total := 0
	for _, rl := range proctest.RealLedgers(t) {
		// The real ledgers carry no Soroswap router events (0 == 0); the synthetic test has them.
		p := proctest.New(t, NewSoroswapRouter, nil)
		events, out := chain(t, "pubnet", rl.Raw, p)
		if want := refTopicCount(t, rl.Raw, pubnet, isRouter); len(out) != want || want != 0 {
			t.Fatalf("ledger %d: %d records, SDK reference %d", rl.Seq, len(out), want)
		}
		if st := p.(component.StatsReporter).Stats(); st["processed_events"] != float64(len(events)) {
			t.Errorf("ledger %d: stats %v of %d events", rl.Seq, st, len(events))
		}
		total += len(events)
	}
	if total == 0 {
		t.Fatal("no contract events on the real ledgers: the test would test nothing")
	}
}
