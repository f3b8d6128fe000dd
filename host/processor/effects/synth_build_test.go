package effects

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Builders of the synthetic ledger (synth_test.go): entries, changes, operations and
// transactions built with the SDK's xdr types.

const synthSeq = 1000

// acct is a test account made from one byte.
func acct(b byte) xdr.AccountId {
	return xdr.MustAddress(strkey.MustEncode(strkey.VersionByteAccountID, append([]byte{b}, make([]byte, 31)...)))
}

func addr(b byte) string { id := acct(b); return id.Address() }

func muxed(b byte, id uint64) xdr.MuxedAccount {
	m, err := xdr.MuxedAccountFromAccountId(addr(b), id)
	if err != nil {
		panic(err)
	}
	return m
}

func plain(b byte) xdr.MuxedAccount { id := acct(b); return id.ToMuxedAccount() }

func usd(issuer byte) xdr.Asset { return xdr.MustNewCreditAsset("USD", addr(issuer)) }

func sponsored(e xdr.LedgerEntry, sponsor byte) xdr.LedgerEntry {
	id := acct(sponsor)
	e.Ext = xdr.LedgerEntryExt{V: 1, V1: &xdr.LedgerEntryExtensionV1{SponsoringId: &id}}
	return e
}

func entry(d xdr.LedgerEntryData) xdr.LedgerEntry {
	return xdr.LedgerEntry{LastModifiedLedgerSeq: synthSeq, Data: d}
}

type signer struct {
	key     byte
	weight  uint32
	sponsor byte // 0: none
}

func account(id byte, balance, seq int64, thresholds [4]byte, signers ...signer) xdr.LedgerEntry {
	a := xdr.AccountEntry{AccountId: acct(id), Balance: xdr.Int64(balance), SeqNum: xdr.SequenceNumber(seq),
		Thresholds: xdr.Thresholds(thresholds)}
	var ids []xdr.SponsorshipDescriptor
	for _, s := range signers {
		a.Signers = append(a.Signers, xdr.Signer{Key: xdr.MustSigner(addr(s.key)), Weight: xdr.Uint32(s.weight)})
		var sp xdr.SponsorshipDescriptor
		if s.sponsor != 0 {
			id := acct(s.sponsor)
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

func trustline(id byte, asset xdr.Asset, balance, limit int64, flags uint32) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTrustline, TrustLine: &xdr.TrustLineEntry{
		AccountId: acct(id), Asset: asset.ToTrustLineAsset(), Balance: xdr.Int64(balance), Limit: xdr.Int64(limit), Flags: xdr.Uint32(flags)}})
}

func poolShareTrustline(id byte, pool xdr.PoolId, balance int64) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTrustline, TrustLine: &xdr.TrustLineEntry{
		AccountId: acct(id), Asset: xdr.TrustLineAsset{Type: xdr.AssetTypeAssetTypePoolShare, LiquidityPoolId: &pool},
		Balance: xdr.Int64(balance), Limit: 1 << 62}})
}

func dataEntry(id byte, name, value string) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeData, Data: &xdr.DataEntry{
		AccountId: acct(id), DataName: xdr.String64(name), DataValue: xdr.DataValue(value)}})
}

func balanceIDOf(b byte) xdr.ClaimableBalanceId {
	return xdr.ClaimableBalanceId{Type: xdr.ClaimableBalanceIdTypeClaimableBalanceIdTypeV0, V0: &xdr.Hash{b}}
}

func claimableBalance(b byte, asset xdr.Asset, amount int64, claimants ...byte) xdr.LedgerEntry {
	cb := xdr.ClaimableBalanceEntry{BalanceId: balanceIDOf(b), Asset: asset, Amount: xdr.Int64(amount)}
	for _, c := range claimants {
		cb.Claimants = append(cb.Claimants, xdr.Claimant{Type: xdr.ClaimantTypeClaimantTypeV0, V0: &xdr.ClaimantV0{
			Destination: acct(c), Predicate: xdr.ClaimPredicate{Type: xdr.ClaimPredicateTypeClaimPredicateUnconditional}}})
	}
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeClaimableBalance, ClaimableBalance: &cb})
}

// synthPool is the constant product pool native/USD:issuer 30 bp.
func synthPoolParams(issuer byte) xdr.LiquidityPoolConstantProductParameters {
	return xdr.LiquidityPoolConstantProductParameters{AssetA: xdr.MustNewNativeAsset(), AssetB: usd(issuer), Fee: 30}
}

func synthPoolID(issuer byte) xdr.PoolId {
	p := synthPoolParams(issuer)
	id, err := xdr.NewPoolId(p.AssetA, p.AssetB, p.Fee)
	if err != nil {
		panic(err)
	}
	return id
}

func pool(issuer byte, a, b, shares, trustlines int64) xdr.LedgerEntry {
	return entry(xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeLiquidityPool, LiquidityPool: &xdr.LiquidityPoolEntry{
		LiquidityPoolId: synthPoolID(issuer),
		Body: xdr.LiquidityPoolEntryBody{Type: xdr.LiquidityPoolTypeLiquidityPoolConstantProduct,
			ConstantProduct: &xdr.LiquidityPoolEntryConstantProduct{Params: synthPoolParams(issuer),
				ReserveA: xdr.Int64(a), ReserveB: xdr.Int64(b), TotalPoolShares: xdr.Int64(shares), PoolSharesTrustLineCount: xdr.Int64(trustlines)}}}})
}

// Changes as core writes them: created; state + updated; state + removed.
func created(e xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryCreated, Created: &e}}
}

func updated(pre, post xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &pre},
		{Type: xdr.LedgerEntryChangeTypeLedgerEntryUpdated, Updated: &post}}
}

func removed(pre xdr.LedgerEntry) []xdr.LedgerEntryChange {
	key, err := pre.LedgerKey()
	if err != nil {
		panic(err)
	}
	return []xdr.LedgerEntryChange{{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &pre},
		{Type: xdr.LedgerEntryChangeTypeLedgerEntryRemoved, Removed: &key}}
}

func changes(parts ...[]xdr.LedgerEntryChange) xdr.LedgerEntryChanges {
	var out xdr.LedgerEntryChanges
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// synthOp is one operation of a synthetic transaction: body, optional source, result and
// ledger entry changes.
type synthOp struct {
	source     *xdr.MuxedAccount
	body       any // an xdr operation body value (xdr.PaymentOp, ...), or nil for bodiless types
	typ        xdr.OperationType
	result     any               // the operation type's result value
	resultType xdr.OperationType // the result's arm when it differs from typ (core's passive offer quirk)
	changes    xdr.LedgerEntryChanges
}

// synthTx is one synthetic transaction.
type synthTx struct {
	name   string
	source xdr.MuxedAccount
	ops    []synthOp
	failed bool
	events []xdr.ContractEvent // Soroban events (meta V3)
	want   []wantEffect        // the effects Horizon's rules give it
}

// synthLedgerBytes builds a LedgerCloseMeta V1 (protocol 22) holding the transactions, with
// results and meta V3, encoded.
func synthLedgerBytes(t testing.TB, txs []synthTx) []byte {
	t.Helper()
	var envs []xdr.TransactionEnvelope
	var procs []xdr.TransactionResultMeta
	for i, stx := range txs {
		var ops []xdr.Operation
		var results []xdr.OperationResult
		var metas []xdr.OperationMeta
		for _, o := range stx.ops {
			body, err := xdr.NewOperationBody(o.typ, o.body)
			if err != nil {
				t.Fatalf("%s: operation body: %v", stx.name, err)
			}
			ops = append(ops, xdr.Operation{SourceAccount: o.source, Body: body})
			rt := o.typ
			if o.resultType != 0 {
				rt = o.resultType
			}
			tr, err := xdr.NewOperationResultTr(rt, o.result)
			if err != nil {
				t.Fatalf("%s: operation result: %v", stx.name, err)
			}
			results = append(results, xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &tr})
			metas = append(metas, xdr.OperationMeta{Changes: o.changes})
		}
		env := xdr.TransactionEnvelope{Type: xdr.EnvelopeTypeEnvelopeTypeTx, V1: &xdr.TransactionV1Envelope{Tx: xdr.Transaction{
			SourceAccount: stx.source, Fee: 100 * xdr.Uint32(len(ops)), SeqNum: xdr.SequenceNumber(i + 1), Operations: ops,
			Memo: xdr.Memo{Type: xdr.MemoTypeMemoNone}, Cond: xdr.Preconditions{Type: xdr.PreconditionTypePrecondNone}}}}
		hash, err := network.HashTransactionInEnvelope(env, network.PublicNetworkPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		code := xdr.TransactionResultCodeTxSuccess
		meta := xdr.TransactionMetaV3{Operations: metas}
		if stx.failed {
			code, meta.Operations = xdr.TransactionResultCodeTxFailed, nil
		}
		if stx.events != nil {
			meta.SorobanMeta = &xdr.SorobanTransactionMeta{Events: stx.events, ReturnValue: xdr.ScVal{Type: xdr.ScValTypeScvVoid}}
		}
		envs = append(envs, env)
		procs = append(procs, xdr.TransactionResultMeta{
			Result: xdr.TransactionResultPair{TransactionHash: hash, Result: xdr.TransactionResult{FeeCharged: 100,
				Result: xdr.TransactionResultResult{Code: code, Results: &results}}},
			TxApplyProcessing: xdr.TransactionMeta{V: 3, V3: &meta},
		})
	}
	comps := []xdr.TxSetComponent{{Type: xdr.TxSetComponentTypeTxsetCompTxsMaybeDiscountedFee,
		TxsMaybeDiscountedFee: &xdr.TxSetComponentTxsMaybeDiscountedFee{Txs: envs}}}
	lcm := xdr.LedgerCloseMeta{V: 1, V1: &xdr.LedgerCloseMetaV1{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: synthSeq, LedgerVersion: 22,
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

// Soroban values of the SAC events.
func scSym(s string) xdr.ScVal {
	v := xdr.ScSymbol(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvSymbol, Sym: &v}
}
func scStr(s string) xdr.ScVal {
	v := xdr.ScString(s)
	return xdr.ScVal{Type: xdr.ScValTypeScvString, Str: &v}
}
func scI128(n uint64) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvI128, I128: &xdr.Int128Parts{Lo: xdr.Uint64(n)}}
}
func scAccount(b byte) xdr.ScVal {
	id := acct(b)
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeAccount, AccountId: &id}}
}
func scContract(c xdr.ContractId) xdr.ScVal {
	return xdr.ScVal{Type: xdr.ScValTypeScvAddress, Address: &xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &c}}
}

// sacEvent is an event of asset's Stellar Asset Contract on pubnet.
func sacEvent(asset xdr.Asset, data xdr.ScVal, topics ...xdr.ScVal) xdr.ContractEvent {
	id, err := asset.ContractID(network.PublicNetworkPassphrase)
	if err != nil {
		panic(err)
	}
	cid := xdr.ContractId(id)
	topics = append(topics, scStr(asset.StringCanonical()))
	return xdr.ContractEvent{Type: xdr.ContractEventTypeContract, ContractId: &cid,
		Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{Topics: topics, Data: data}}}
}
