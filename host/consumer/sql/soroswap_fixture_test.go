package sql

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/contract"
	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
)

var (
	swFactory, swPair, swRouter  = xdr.ContractId{0xf1}, xdr.ContractId{0xe1}, xdr.ContractId{0x5e}
	swTokenA, swTokenB, swTokenC = xdr.ContractId{0xaa}, xdr.ContractId{0xbb}, xdr.ContractId{0xcc}
)

func cid(c xdr.ContractId) string { return strkey.MustEncode(strkey.VersionByteContract, c[:]) }

// soroswapLedger: a synthetic pubnet ledger (the real ledgers hold no Soroswap events) with
// one Soroswap transaction: the factory's new_pair, two syncs of the pair (the first's
// reserve beyond 2^64), the pair's swap, the router's swap along A -> B -> C and its add.
func soroswapLedger(t *testing.T) []byte {
	t.Helper()
	pairNS, routerNS := pt.ScStr("SoroswapPair"), pt.ScStr("SoroswapRouter")
	big := xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &xdr.Int128Parts{Hi: 1, Lo: 5}}
	sync := func(r0, r1 xdr.ScVal) xdr.ContractEvent {
		return pt.ContractEvent(swPair, pt.ScStruct("new_reserve_0", r0, "new_reserve_1", r1), pairNS, pt.ScSym("sync"))
	}
	return pt.SynthLedger(t, []pt.SynthTx{{Name: "soroswap", Source: pt.Plain(1), Ops: []pt.SynthOp{pt.InvokeOp(swRouter, "swap")},
		Events: []xdr.ContractEvent{
			pt.ContractEvent(swFactory, pt.ScStruct("token_0", pt.ScContract(swTokenA), "token_1", pt.ScContract(swTokenB),
				"pair", pt.ScContract(swPair), "new_pairs_length", xdr.ScVal{Type: xdr.ScValTypeScvU32, U32: new(xdr.Uint32)}),
				pt.ScStr("SoroswapFactory"), pt.ScSym("new_pair")),
			sync(big, pt.ScI128(7)), sync(pt.ScI128(8), pt.ScI128(9)),
			pt.ContractEvent(swPair, pt.ScStruct("to", pt.ScAccount(1), "amount_0_in", pt.ScI128(10), "amount_1_in", pt.ScI128(0),
				"amount_0_out", pt.ScI128(0), "amount_1_out", pt.ScI128(9)), pairNS, pt.ScSym("swap")),
			pt.ContractEvent(swRouter, pt.ScStruct("path", pt.ScVec(pt.ScContract(swTokenA), pt.ScContract(swTokenB), pt.ScContract(swTokenC)),
				"amounts", pt.ScVec(pt.ScI128(40), pt.ScI128(30), pt.ScI128(20)), "to", pt.ScAccount(1)), routerNS, pt.ScSym("swap")),
			pt.ContractEvent(swRouter, pt.ScStruct("token_a", pt.ScContract(swTokenA), "token_b", pt.ScContract(swTokenB),
				"pair", pt.ScContract(swPair), "amount_a", pt.ScI128(100), "amount_b", pt.ScI128(200), "liquidity", pt.ScI128(141),
				"to", pt.ScAccount(2)), routerNS, pt.ScSym("add")),
		}}})
}

// soroswapRecords runs ContractEvent then the transformer on the ledger.
func soroswapRecords[C any](t *testing.T, raw []byte, ctor func(*C, component.Env) (component.Processor, error)) []component.Record {
	t.Helper()
	events := pt.Run(t, contract.NewContractEvent, map[string]any{"network": "pubnet"}, raw, nil)
	out, err := pt.New(t, ctor, nil).Process(pt.BG, pt.Shared(t, raw), events)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
