package contract

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// Contract events of applications the real ledgers do not carry (Soroswap, Kwickbit's
// payment processor), testnet ledger 3000, on the event shapes of those contracts.

var (
	synthFactory  = xdr.ContractId{0xf1}
	synthFactory2 = xdr.ContractId{0xf2}
	synthPair     = xdr.ContractId{0xe1}
	synthKwick    = xdr.ContractId{0x4b}
	synthToken    = xdr.ContractId{0x70}
	synthPayID    = [32]byte{0x71, 0xb2, 0x03}
)

func scI128Parts(hi int64, lo uint64) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &xdr.Int128Parts{Hi: xdr.Int64(hi), Lo: xdr.Uint64(lo)}}
}

func scU32(v uint32) xdr.ScVal {
	u := xdr.Uint32(v)
	return xdr.ScVal{Type: xdr.ScValTypeScvU32, U32: &u}
}

func kwickPayment(id xdr.ContractId, amount xdr.ScVal) xdr.ContractEvent {
	return event(id, scStruct("amount", amount, "from", scAccount(synthAlice), "merchant", scAccount(synthBob),
		"payment_id", scBytes(synthPayID[:]), "royalty_amount", scU64(2000), "token", scContract(synthToken)),
		scSym("payment"), scAccount(synthBob))
}

// synthAppEvents: tx 1 (successful) carries a transaction-level fee event, then on its first
// operation: Soroswap factory new_pair (factory F) and one of another factory, the pair's
// sync (a reserve beyond 2^64), swap and deposit, a decoy "sync" of another contract, a
// Soroswap sync whose data is not a struct; on its second operation: Kwickbit payments (one
// with an i128 amount, one of another contract, one missing its merchant) and a transfer.
// tx 2 (failed) repeats a sync and a payment.
func synthAppEvents(t testing.TB) []byte {
	t.Helper()
	pairNS, factoryNS := scStr("SoroswapPair"), scStr("SoroswapFactory")
	newPair := func(f xdr.ContractId) xdr.ContractEvent {
		return event(f, scStruct("token_0", scContract(synthA), "token_1", scContract(synthB), "pair", scContract(synthPair),
			"new_pairs_length", scU32(1)), factoryNS, scSym("new_pair"))
	}
	sync := event(synthPair, scStruct("new_reserve_0", scI128Parts(1, 5), "new_reserve_1", scI128(7)), pairNS, scSym("sync"))
	op, res := bumpOp()
	broken := event(synthKwick, scStruct("amount", scI128(1), "from", scAccount(synthAlice)), scSym("payment"))
	return synthLedgerTxs(t, 3000, testnet,
		synthSpec{source: synthAlice, ops: []xdr.Operation{op, op}, results: []xdr.OperationResultTr{res, res},
			txEvents: []xdr.TransactionEvent{{Stage: xdr.TransactionEventStageTransactionEventStageBeforeAllTxs,
				Event: event(synthToken, scI128(100), scSym("fee"), scAccount(synthAlice))}},
			opMeta: []xdr.OperationMetaV2{
				{Events: []xdr.ContractEvent{
					newPair(synthFactory), newPair(synthFactory2), sync,
					event(synthPair, scStruct("to", scAccount(synthAlice), "amount_0_in", scI128(10), "amount_1_in", scI128(0),
						"amount_0_out", scI128(0), "amount_1_out", scI128(9)), pairNS, scSym("swap")),
					event(synthPair, scStruct("to", scAccount(synthAlice)), pairNS, scSym("deposit")),
					event(synthC, scStruct("new_reserve_0", scI128(1), "new_reserve_1", scI128(2)), scSym("sync"), scSym("x")),
					event(synthPair, scU64(3), pairNS, scSym("sync")),
				}},
				{Events: []xdr.ContractEvent{
					kwickPayment(synthKwick, scI128(100000)), kwickPayment(synthC, scU64(5)), broken,
					event(synthToken, scI128(1), scSym("transfer"), scAccount(synthAlice), scAccount(synthBob)),
				}},
			}},
		synthSpec{source: synthBob, ops: []xdr.Operation{op}, results: []xdr.OperationResultTr{res}, failed: true,
			opMeta: []xdr.OperationMetaV2{{Events: []xdr.ContractEvent{sync, kwickPayment(synthKwick, scI128(1))}}}},
	)
}
