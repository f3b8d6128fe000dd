package contract

import (
	"crypto/sha256"
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

const (
	pubnet  = network.PublicNetworkPassphrase
	testnet = network.TestNetworkPassphrase
)

// Synthetic ledgers with real envelopes: each transaction's envelope is in the tx set and
// paired with its TxProcessing entry by its network hash, so the SDK's classic transaction
// reader (the tests' reference) reads them like a real ledger.

// Accounts of the synthetic transactions.
var (
	synthAlice = xdr.MustAddress("GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7")
	synthBob   = xdr.MustAddress("GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H")
)

// synthSpec is one synthetic transaction.
type synthSpec struct {
	source   xdr.AccountId
	ops      []xdr.Operation
	soroban  bool                    // the envelope carries SorobanTransactionData (footprint below)
	readOnly []xdr.LedgerKey         // soroban footprint
	readWr   []xdr.LedgerKey         // soroban footprint
	failed   bool                    // txFAILED instead of txSUCCESS
	results  []xdr.OperationResultTr // one per op
	opMeta   []xdr.OperationMetaV2   // one per op (changes, events)
	txEvents []xdr.TransactionEvent
}

func (s synthSpec) envelope() xdr.TransactionEnvelope {
	tx := xdr.Transaction{
		SourceAccount: s.source.ToMuxedAccount(), Fee: 100, SeqNum: 1,
		Cond: xdr.Preconditions{Type: xdr.PreconditionTypePrecondNone}, Memo: xdr.Memo{Type: xdr.MemoTypeMemoNone},
		Operations: s.ops,
	}
	if s.soroban {
		tx.Ext = xdr.TransactionExt{V: 1, SorobanData: &xdr.SorobanTransactionData{
			Resources: xdr.SorobanResources{Footprint: xdr.LedgerFootprint{ReadOnly: s.readOnly, ReadWrite: s.readWr}}}}
	}
	return xdr.TransactionEnvelope{Type: xdr.EnvelopeTypeEnvelopeTypeTx, V1: &xdr.TransactionV1Envelope{Tx: tx}}
}

// synthLedgerTxs builds a LedgerCloseMeta V2 (protocol 23, TransactionMeta V4) of the given
// transactions, hashed for passphrase.
func synthLedgerTxs(t testing.TB, seq uint32, passphrase string, specs ...synthSpec) []byte {
	t.Helper()
	var envs []xdr.TransactionEnvelope
	var procs []xdr.TransactionResultMetaV1
	for _, s := range specs {
		env := s.envelope()
		hash, err := network.HashTransactionInEnvelope(env, passphrase)
		if err != nil {
			t.Fatal(err)
		}
		results := make([]xdr.OperationResult, len(s.results))
		for i := range s.results {
			results[i] = xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &s.results[i]}
		}
		code := xdr.TransactionResultCodeTxSuccess
		if s.failed {
			code = xdr.TransactionResultCodeTxFailed
		}
		opMeta := s.opMeta
		if opMeta == nil {
			opMeta = make([]xdr.OperationMetaV2, len(s.ops))
		}
		envs = append(envs, env)
		procs = append(procs, xdr.TransactionResultMetaV1{
			Result: xdr.TransactionResultPair{TransactionHash: hash, Result: xdr.TransactionResult{
				FeeCharged: 100, Result: xdr.TransactionResultResult{Code: code, Results: &results}}},
			TxApplyProcessing: xdr.TransactionMeta{V: 4, V4: &xdr.TransactionMetaV4{Operations: opMeta, Events: s.txEvents}},
		})
	}
	lcm := xdr.LedgerCloseMeta{V: 2, V2: &xdr.LedgerCloseMetaV2{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: xdr.Uint32(seq), LedgerVersion: 23,
			ScpValue: xdr.StellarValue{CloseTime: 1700000000}}},
		TxSet: xdr.GeneralizedTransactionSet{V: 1, V1TxSet: &xdr.TransactionSetV1{Phases: []xdr.TransactionPhase{{V: 0,
			V0Components: &[]xdr.TxSetComponent{{Type: xdr.TxSetComponentTypeTxsetCompTxsMaybeDiscountedFee,
				TxsMaybeDiscountedFee: &xdr.TxSetComponentTxsMaybeDiscountedFee{Txs: envs}}}}}}},
		TxProcessing: procs,
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Soroban value and entry helpers.

func scSym(s string) xdr.ScVal {
	v := xdr.ScSymbol(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &v}
}

func scStr(s string) xdr.ScVal {
	v := xdr.ScString(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvString, Str: &v}
}

func scI128(lo uint64) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &xdr.Int128Parts{Lo: xdr.Uint64(lo)}}
}

func scU64(v uint64) xdr.ScVal {
	u := xdr.Uint64(v)
	return xdr.ScVal{Type: xdr.ScValTypeScvU64, U64: &u}
}

func scBytes(b []byte) xdr.ScVal {
	v := xdr.ScBytes(b)
	return xdr.ScVal{Type: xdr.ScValTypeScvBytes, Bytes: &v}
}

func scContract(id xdr.ContractId) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &id}}
}

func scAccount(a xdr.AccountId) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeAccount, AccountId: &a}}
}

// scStruct is a Soroban contracttype struct: a map with symbol keys, in the given order.
var scStruct = proctest.ScStruct

func event(id xdr.ContractId, data xdr.ScVal, topics ...xdr.ScVal) xdr.ContractEvent {
	return xdr.ContractEvent{ContractId: &id, Type: xdr.ContractEventTypeContract,
		Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{Topics: topics, Data: data}}}
}

func contractDataEntry(id xdr.ContractId, key, val xdr.ScVal, lastModified uint32) xdr.LedgerEntry {
	return xdr.LedgerEntry{LastModifiedLedgerSeq: xdr.Uint32(lastModified), Data: xdr.LedgerEntryData{
		Type: xdr.LedgerEntryTypeContractData, ContractData: &xdr.ContractDataEntry{
			Contract: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &id},
			Key:      key, Durability: xdr.ContractDataDurabilityPersistent, Val: val}}}
}

func instanceEntry(id xdr.ContractId, exec xdr.ContractExecutable) xdr.LedgerEntry {
	return contractDataEntry(id, xdr.ScVal{Type: xdr.ScValTypeScvLedgerKeyContractInstance},
		xdr.ScVal{Type: xdr.ScValTypeScvContractInstance, Instance: &xdr.ScContractInstance{Executable: exec}}, 1000)
}

func ttlEntry(t testing.TB, of xdr.LedgerEntry, liveUntil uint32) xdr.LedgerEntry {
	t.Helper()
	key, err := of.LedgerKey()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return xdr.LedgerEntry{LastModifiedLedgerSeq: 1000, Data: xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTtl,
		Ttl: &xdr.TtlEntry{KeyHash: sha256.Sum256(kb), LiveUntilLedgerSeq: xdr.Uint32(liveUntil)}}}
}

func created(e xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryCreated, Created: &e}}
}

func updated(pre, post xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &pre},
		{Type: xdr.LedgerEntryChangeTypeLedgerEntryUpdated, Updated: &post}}
}

func invokeOp(fn xdr.HostFunction, source *xdr.AccountId, auth ...xdr.SorobanAuthorizationEntry) xdr.Operation {
	op := xdr.Operation{Body: xdr.OperationBody{Type: xdr.OperationTypeInvokeHostFunction,
		InvokeHostFunctionOp: &xdr.InvokeHostFunctionOp{HostFunction: fn, Auth: auth}}}
	if source != nil {
		m := source.ToMuxedAccount()
		op.SourceAccount = &m
	}
	return op
}

func invokeContract(id xdr.ContractId, fn string, args ...xdr.ScVal) xdr.HostFunction {
	return xdr.HostFunction{Type: xdr.HostFunctionTypeHostFunctionTypeInvokeContract, InvokeContract: &xdr.InvokeContractArgs{
		ContractAddress: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &id},
		FunctionName:    xdr.ScSymbol(fn), Args: args}}
}

func invokeResult(ok bool) xdr.OperationResultTr {
	r := xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionTrapped}
	if ok {
		r = xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess, Success: &xdr.Hash{}}
	}
	return xdr.OperationResultTr{Type: xdr.OperationTypeInvokeHostFunction, InvokeHostFunctionResult: &r}
}

func bumpOp() (xdr.Operation, xdr.OperationResultTr) {
	return xdr.Operation{Body: xdr.OperationBody{Type: xdr.OperationTypeBumpSequence, BumpSequenceOp: &xdr.BumpSequenceOp{BumpTo: 2}}},
		xdr.OperationResultTr{Type: xdr.OperationTypeBumpSequence, BumpSeqResult: &xdr.BumpSequenceResult{}}
}
