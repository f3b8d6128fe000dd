package contract

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// Contracts of the synthetic ledger.
var (
	synthA = xdr.ContractId{0xaa}
	synthB = xdr.ContractId{0xbb}
)

func synthEvent(id *xdr.ContractId, typ xdr.ContractEventType, topic string) xdr.ContractEvent {
	sym := xdr.ScSymbol(topic)
	amt := xdr.Int128Parts{Lo: 42}
	return xdr.ContractEvent{ContractId: id, Type: typ, Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{
		Topics: []xdr.ScVal{{Type: xdr.ScValTypeScvSymbol, Sym: &sym}},
		Data:   xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &amt},
	}}}
}

func synthTx(hash byte, code xdr.TransactionResultCode, txEvents []xdr.ContractEvent, opEvents ...[]xdr.ContractEvent) xdr.TransactionResultMetaV1 {
	results := make([]xdr.OperationResult, len(opEvents))
	ops := make([]xdr.OperationMetaV2, len(opEvents))
	for i, evs := range opEvents {
		results[i] = xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{
			Type: xdr.OperationTypeBumpSequence, BumpSeqResult: &xdr.BumpSequenceResult{}}}
		ops[i] = xdr.OperationMetaV2{Events: evs}
	}
	var tev []xdr.TransactionEvent
	for _, e := range txEvents {
		tev = append(tev, xdr.TransactionEvent{Stage: xdr.TransactionEventStageTransactionEventStageAfterTx, Event: e})
	}
	return xdr.TransactionResultMetaV1{
		Result: xdr.TransactionResultPair{TransactionHash: xdr.Hash{hash}, Result: xdr.TransactionResult{
			FeeCharged: 100, Result: xdr.TransactionResultResult{Code: code, Results: &results}}},
		TxApplyProcessing: xdr.TransactionMeta{V: 4, V4: &xdr.TransactionMetaV4{Operations: ops, Events: tev}},
	}
}

// synthLedger is a small LedgerCloseMeta V2 (sequence 1000) whose contract events cover what
// the real fixtures lack: several contracts, a system event without a contract id,
// transaction-level events, and a failed transaction with a (fee) event. Its tx set is empty:
// only TxProcessing is read by the view-based processors.
func synthLedger(t testing.TB) []byte {
	t.Helper()
	lcm := xdr.LedgerCloseMeta{V: 2, V2: &xdr.LedgerCloseMetaV2{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: 1000,
			ScpValue: xdr.StellarValue{CloseTime: 1700000000}}},
		TxSet: xdr.GeneralizedTransactionSet{V: 1, V1TxSet: &xdr.TransactionSetV1{}},
		TxProcessing: []xdr.TransactionResultMetaV1{
			synthTx(1, xdr.TransactionResultCodeTxSuccess,
				[]xdr.ContractEvent{synthEvent(&synthA, xdr.ContractEventTypeContract, "fee")},
				[]xdr.ContractEvent{
					synthEvent(&synthA, xdr.ContractEventTypeContract, "transfer"),
					synthEvent(&synthB, xdr.ContractEventTypeContract, "mint"),
					synthEvent(nil, xdr.ContractEventTypeSystem, "core"),
				},
				[]xdr.ContractEvent{synthEvent(&synthB, xdr.ContractEventTypeContract, "burn")}),
			synthTx(2, xdr.TransactionResultCodeTxFailed,
				[]xdr.ContractEvent{synthEvent(&synthA, xdr.ContractEventTypeContract, "fee")},
				[]xdr.ContractEvent{}),
		},
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
