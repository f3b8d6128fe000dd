package proctest

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Synthetic ledgers for the operation kinds the real ledgers lack: a LedgerCloseMeta built with
// the SDK's xdr types from transactions, their results and their ledger entry changes, and the
// builders of its entries, changes and Soroban events.

// SynthSeq is the synthetic ledger's sequence.
const SynthSeq = 1000

// Acct is a test account made from one byte.
func Acct(b byte) xdr.AccountId {
	return xdr.MustAddress(strkey.MustEncode(strkey.VersionByteAccountID, append([]byte{b}, make([]byte, 31)...)))
}

// Addr is Acct's G address.
func Addr(b byte) string { id := Acct(b); return id.Address() }

// Muxed is the muxed account (M address) of Acct(b) with the given id.
func Muxed(b byte, id uint64) xdr.MuxedAccount {
	m, err := xdr.MuxedAccountFromAccountId(Addr(b), id)
	if err != nil {
		panic(err)
	}
	return m
}

// Plain is Acct(b) as a (non-muxed) MuxedAccount.
func Plain(b byte) xdr.MuxedAccount { id := Acct(b); return id.ToMuxedAccount() }

// USD is the asset USD issued by Acct(issuer).
func USD(issuer byte) xdr.Asset { return xdr.MustNewCreditAsset("USD", Addr(issuer)) }

// Sponsored returns e sponsored by Acct(sponsor).
func Sponsored(e xdr.LedgerEntry, sponsor byte) xdr.LedgerEntry {
	id := Acct(sponsor)
	e.Ext = xdr.LedgerEntryExt{V: 1, V1: &xdr.LedgerEntryExtensionV1{SponsoringId: &id}}
	return e
}

func entry(d xdr.LedgerEntryData) xdr.LedgerEntry {
	return xdr.LedgerEntry{LastModifiedLedgerSeq: SynthSeq, Data: d}
}

// Signer is a signer of an Account: Acct(Key) with a weight, sponsored by Acct(Sponsor).
type Signer struct {
	Key     byte
	Weight  uint32
	Sponsor byte // 0: none
}

// Account is an account entry.
func Account(id byte, balance, seq int64, thresholds [4]byte, signers ...Signer) xdr.LedgerEntry {
	a := xdr.AccountEntry{AccountId: Acct(id), Balance: xdr.Int64(balance), SeqNum: xdr.SequenceNumber(seq),
		Thresholds: xdr.Thresholds(thresholds)}
	var ids []xdr.SponsorshipDescriptor
	for _, s := range signers {
		a.Signers = append(a.Signers, xdr.Signer{Key: xdr.MustSigner(Addr(s.Key)), Weight: xdr.Uint32(s.Weight)})
		var sp xdr.SponsorshipDescriptor
		if s.Sponsor != 0 {
			id := Acct(s.Sponsor)
			sp = &id
		}
		ids = append(ids, sp)
	}
	if len(signers) > 0 {
		a.Ext = xdr.AccountEntryExt{V: 1, V1: &xdr.AccountEntryExtensionV1{Ext: xdr.AccountEntryExtensionV1Ext{V: 2,
			V2: &xdr.AccountEntryExtensionV2{SignerSponsoringIDs: ids}}}}
	}
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeAccount, Account: &a})
}

// Trustline is a trustline entry of Acct(id).
func Trustline(id byte, asset xdr.Asset, balance, limit int64, flags uint32) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTrustline, TrustLine: &xdr.TrustLineEntry{
		AccountId: Acct(id), Asset: asset.ToTrustLineAsset(), Balance: xdr.Int64(balance), Limit: xdr.Int64(limit), Flags: xdr.Uint32(flags)}})
}

// PoolShareTrustline is a pool share trustline entry of Acct(id).
func PoolShareTrustline(id byte, pool xdr.PoolId, balance int64) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTrustline, TrustLine: &xdr.TrustLineEntry{
		AccountId: Acct(id), Asset: xdr.TrustLineAsset{Type: xdr.AssetTypeAssetTypePoolShare, LiquidityPoolId: &pool},
		Balance: xdr.Int64(balance), Limit: 1 << 62}})
}

// DataEntry is a data entry of Acct(id).
func DataEntry(id byte, name, value string) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeData, Data: &xdr.DataEntry{
		AccountId: Acct(id), DataName: xdr.String64(name), DataValue: xdr.DataValue(value)}})
}

// BalanceID is the claimable balance id made from one byte.
func BalanceID(b byte) xdr.ClaimableBalanceId {
	return xdr.ClaimableBalanceId{Type: xdr.ClaimableBalanceIdTypeClaimableBalanceIdTypeV0, V0: &xdr.Hash{b}}
}

// ClaimableBalance is a claimable balance entry with unconditional claimants.
func ClaimableBalance(b byte, asset xdr.Asset, amount int64, claimants ...byte) xdr.LedgerEntry {
	cb := xdr.ClaimableBalanceEntry{BalanceId: BalanceID(b), Asset: asset, Amount: xdr.Int64(amount)}
	for _, c := range claimants {
		cb.Claimants = append(cb.Claimants, xdr.Claimant{Type: xdr.ClaimantTypeClaimantTypeV0, V0: &xdr.ClaimantV0{
			Destination: Acct(c), Predicate: xdr.ClaimPredicate{Type: xdr.ClaimPredicateTypeClaimPredicateUnconditional}}})
	}
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeClaimableBalance, ClaimableBalance: &cb})
}

// PoolParams are the parameters of the constant product pool native/USD(issuer), 30 bp.
func PoolParams(issuer byte) xdr.LiquidityPoolConstantProductParameters {
	return xdr.LiquidityPoolConstantProductParameters{AssetA: xdr.MustNewNativeAsset(), AssetB: USD(issuer), Fee: 30}
}

// PoolID is the id of that pool.
func PoolID(issuer byte) xdr.PoolId {
	p := PoolParams(issuer)
	id, err := xdr.NewPoolId(p.AssetA, p.AssetB, p.Fee)
	if err != nil {
		panic(err)
	}
	return id
}

// Pool is that pool's entry.
func Pool(issuer byte, a, b, shares, trustlines int64) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeLiquidityPool, LiquidityPool: &xdr.LiquidityPoolEntry{
		LiquidityPoolId: PoolID(issuer),
		Body: xdr.LiquidityPoolEntryBody{Type: xdr.LiquidityPoolTypeLiquidityPoolConstantProduct,
			ConstantProduct: &xdr.LiquidityPoolEntryConstantProduct{Params: PoolParams(issuer),
				ReserveA: xdr.Int64(a), ReserveB: xdr.Int64(b), TotalPoolShares: xdr.Int64(shares), PoolSharesTrustLineCount: xdr.Int64(trustlines)}}}})
}

// Created, Updated and Removed are changes as core writes them: created; state + updated;
// state + removed.
func Created(e xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryCreated, Created: &e}}
}

func Updated(pre, post xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &pre},
		{Type: xdr.LedgerEntryChangeTypeLedgerEntryUpdated, Updated: &post}}
}

func Removed(pre xdr.LedgerEntry) []xdr.LedgerEntryChange {
	key, err := pre.LedgerKey()
	if err != nil {
		panic(err)
	}
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &pre},
		{Type: xdr.LedgerEntryChangeTypeLedgerEntryRemoved, Removed: &key}}
}

// Changes concatenates changes.
func Changes(parts ...[]xdr.LedgerEntryChange) xdr.LedgerEntryChanges {
	var out xdr.LedgerEntryChanges
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// SynthOp is one operation of a synthetic transaction: body, optional source, result and
// ledger entry changes.
type SynthOp struct {
	Source     *xdr.MuxedAccount
	Body       any // an xdr operation body value (xdr.PaymentOp, ...), or nil for bodiless types
	Type       xdr.OperationType
	Result     any               // the operation type's result value
	ResultType xdr.OperationType // the result's arm when it differs from Type (core's passive offer quirk)
	Changes    xdr.LedgerEntryChanges
}

// SynthTx is one synthetic transaction.
type SynthTx struct {
	Name   string
	Source xdr.MuxedAccount
	Ops    []SynthOp
	Failed bool
	Events []xdr.ContractEvent // Soroban events; the transaction is then a Soroban one
	MetaV4 bool                // meta V4 (protocol 23: events per operation) instead of V3
}

// SynthLedger builds a LedgerCloseMeta V1 (protocol 22, sequence SynthSeq) holding the
// transactions in this order, with results and meta V3 (or V4), encoded.
func SynthLedger(t testing.TB, txs []SynthTx) []byte {
	t.Helper()
	var envs []xdr.TransactionEnvelope
	var procs []xdr.TransactionResultMeta
	for i, stx := range txs {
		var ops []xdr.Operation
		var results []xdr.OperationResult
		var metas []xdr.OperationMeta
		for _, o := range stx.Ops {
			body, err := xdr.NewOperationBody(o.Type, o.Body)
			if err != nil {
				t.Fatalf("%s: operation body: %v", stx.Name, err)
			}
			ops = append(ops, xdr.Operation{SourceAccount: o.Source, Body: body})
			rt := o.Type
			if o.ResultType != 0 {
				rt = o.ResultType
			}
			tr, err := xdr.NewOperationResultTr(rt, o.Result)
			if err != nil {
				t.Fatalf("%s: operation result: %v", stx.Name, err)
			}
			results = append(results, xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &tr})
			metas = append(metas, xdr.OperationMeta{Changes: o.Changes})
		}
		env := xdr.TransactionEnvelope{Type: xdr.EnvelopeTypeEnvelopeTypeTx, V1: &xdr.TransactionV1Envelope{Tx: xdr.Transaction{
			SourceAccount: stx.Source, Fee: 100 * xdr.Uint32(len(ops)), SeqNum: xdr.SequenceNumber(i + 1), Operations: ops,
			Memo: xdr.Memo{Type: xdr.MemoTypeMemoNone}, Cond: xdr.Preconditions{Type: xdr.PreconditionTypePrecondNone}}}}
		if stx.Events != nil {
			env.V1.Tx.Ext = xdr.TransactionExt{V: 1, SorobanData: &xdr.SorobanTransactionData{}}
		}
		hash, err := network.HashTransactionInEnvelope(env, network.PublicNetworkPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		code := xdr.TransactionResultCodeTxSuccess
		meta := xdr.TransactionMetaV3{Operations: metas}
		if stx.Failed {
			code, meta.Operations = xdr.TransactionResultCodeTxFailed, nil
		}
		if stx.Events != nil {
			meta.SorobanMeta = &xdr.SorobanTransactionMeta{Events: stx.Events, ReturnValue: xdr.ScVal{Type: xdr.ScValTypeScvVoid}}
		}
		txMeta := xdr.TransactionMeta{V: 3, V3: &meta}
		if stx.MetaV4 {
			v4 := xdr.TransactionMetaV4{}
			for j, m := range meta.Operations {
				om := xdr.OperationMetaV2{Changes: m.Changes}
				if j == 0 {
					om.Events = stx.Events
				}
				v4.Operations = append(v4.Operations, om)
			}
			if stx.Events != nil {
				v4.SorobanMeta = &xdr.SorobanTransactionMetaV2{}
			}
			txMeta = xdr.TransactionMeta{V: 4, V4: &v4}
		}
		envs = append(envs, env)
		procs = append(procs, xdr.TransactionResultMeta{
			Result: xdr.TransactionResultPair{TransactionHash: hash, Result: xdr.TransactionResult{FeeCharged: 100,
				Result: xdr.TransactionResultResult{Code: code, Results: &results}}},
			TxApplyProcessing: txMeta,
		})
	}
	comps := []xdr.TxSetComponent{{Type: xdr.TxSetComponentTypeTxsetCompTxsMaybeDiscountedFee,
		TxsMaybeDiscountedFee: &xdr.TxSetComponentTxsMaybeDiscountedFee{Txs: envs}}}
	lcm := xdr.LedgerCloseMeta{V: 1, V1: &xdr.LedgerCloseMetaV1{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: SynthSeq, LedgerVersion: 22,
			ScpValue: xdr.StellarValue{CloseTime: 1700000000}}},
		TxSet: xdr.GeneralizedTransactionSet{V: 1, V1TxSet: &xdr.TransactionSetV1{
			Phases: []xdr.TransactionPhase{{V: 0, V0Components: &comps}}}},
		TxProcessing: procs,
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatalf("encoding the synthetic ledger: %v", err)
	}
	return raw
}

// ScSym, ScStr, ScI128, ScAccount and ScContract are Soroban values for events.
func ScSym(s string) xdr.ScVal {
	v := xdr.ScSymbol(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &v}
}
func ScStr(s string) xdr.ScVal {
	v := xdr.ScString(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvString, Str: &v}
}
func ScI128(n uint64) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &xdr.Int128Parts{Lo: xdr.Uint64(n)}}
}
func ScAccount(b byte) xdr.ScVal {
	id := Acct(b)
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeAccount, AccountId: &id}}
}
func ScContract(c xdr.ContractId) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &c}}
}

// ScMuxedAmount is the CAP-67 (protocol 23) token event data: the amount and a muxed id.
func ScMuxedAmount(n, muxedID uint64) xdr.ScVal {
	amt, id := ScI128(n), xdr.Uint64(muxedID)
	m := xdr.ScMap{{Key: ScSym("amount"), Val: amt}, {Key: ScSym("to_muxed_id"), Val: xdr.ScVal{Type: xdr.ScValTypeScvU64, U64: &id}}}
	pm := &m
	return xdr.ScVal{Type: xdr.ScValTypeScvMap, Map: &pm}
}

// SACEvent is an event of asset's Stellar Asset Contract on pubnet.
func SACEvent(asset xdr.Asset, data xdr.ScVal, topics ...xdr.ScVal) xdr.ContractEvent {
	id, err := asset.ContractID(network.PublicNetworkPassphrase)
	if err != nil {
		panic(err)
	}
	cid := xdr.ContractId(id)
	topics = append(topics, ScStr(asset.StringCanonical()))
	return xdr.ContractEvent{Type: xdr.ContractEventTypeContract, ContractId: &cid,
		Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{Topics: topics, Data: data}}}
}

// ScStruct is a Soroban contracttype struct (a map with symbol keys, in the given order) of
// key, value pairs.
func ScStruct(kv ...any) xdr.ScVal {
	m := xdr.ScMap{}
	for i := 0; i < len(kv); i += 2 {
		m = append(m, xdr.ScMapEntry{Key: ScSym(kv[i].(string)), Val: kv[i+1].(xdr.ScVal)})
	}
	pm := &m
	return xdr.ScVal{Type: xdr.ScValTypeScvMap, Map: &pm}
}

// ScVec is a Soroban vector.
func ScVec(vs ...xdr.ScVal) xdr.ScVal {
	v := xdr.ScVec(vs)
	pv := &v
	return xdr.ScVal{Type: xdr.ScValTypeScvVec, Vec: &pv}
}

// InvokeOp is a successful InvokeHostFunction operation calling fn on contract c.
func InvokeOp(c xdr.ContractId, fn string) SynthOp {
	return SynthOp{Type: xdr.OperationTypeInvokeHostFunction, Body: xdr.InvokeHostFunctionOp{HostFunction: xdr.HostFunction{
		Type: xdr.HostFunctionTypeHostFunctionTypeInvokeContract, InvokeContract: &xdr.InvokeContractArgs{
			ContractAddress: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &c}, FunctionName: xdr.ScSymbol(fn)}}},
		Result: xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess, Success: &xdr.Hash{}}}
}

// ContractEvent is a contract event of c.
func ContractEvent(c xdr.ContractId, data xdr.ScVal, topics ...xdr.ScVal) xdr.ContractEvent {
	return xdr.ContractEvent{Type: xdr.ContractEventTypeContract, ContractId: &c,
		Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{Topics: topics, Data: data}}}
}
