package account

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// The synthetic ledger covers what the two real pubnet ledgers lack: create_account
// operations (one from a muxed operation source), an account created and one merged away
// (removed), a failed transaction with a create_account operation, a pool-share trustline,
// a trustline changed by set_trust_line_flags, and an account with the v3 extension, a
// sponsor, a home domain and an inflation destination.

const synthSeq = 1000

func synthAccount(n byte) xdr.AccountId {
	kp, err := keypair.FromRawSeed([32]byte{n})
	if err != nil {
		panic(err)
	}
	return xdr.MustAddress(kp.Address())
}

var (
	synthA, synthB, synthC, synthD = synthAccount(1), synthAccount(2), synthAccount(3), synthAccount(4)
	synthE, synthF, synthG, synthH = synthAccount(5), synthAccount(6), synthAccount(7), synthAccount(8)
	synthIssuer                    = synthAccount(9)
	synthUSD                       = xdr.MustNewCreditAsset("USD", synthIssuer.Address())
	synthPool                      = xdr.PoolId{0x77}
)

func muxed(id xdr.AccountId, mid uint64) xdr.MuxedAccount {
	return xdr.MuxedAccount{Type: xdr.CryptoKeyTypeKeyTypeMuxedEd25519, Med25519: &xdr.MuxedAccountMed25519{Id: xdr.Uint64(mid), Ed25519: *id.Ed25519}}
}

func accountEntry(id xdr.AccountId, balance, seq int64) xdr.LedgerEntry {
	return xdr.LedgerEntry{LastModifiedLedgerSeq: synthSeq, Data: xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeAccount,
		Account: &xdr.AccountEntry{AccountId: id, Balance: xdr.Int64(balance), SeqNum: xdr.SequenceNumber(seq), Thresholds: xdr.Thresholds{1, 0, 0, 0}}}}
}

// richAccount is A after the transaction: v3 extension, sponsor, home domain, inflation dest.
func richAccount(balance int64) xdr.LedgerEntry {
	e := accountEntry(synthA, balance, 42)
	a := e.Data.Account
	a.HomeDomain, a.InflationDest, a.Thresholds = "example.com", &synthIssuer, xdr.Thresholds{10, 1, 2, 3}
	a.Ext = xdr.AccountEntryExt{V: 1, V1: &xdr.AccountEntryExtensionV1{Ext: xdr.AccountEntryExtensionV1Ext{V: 2,
		V2: &xdr.AccountEntryExtensionV2{NumSponsored: 1, NumSponsoring: 2, Ext: xdr.AccountEntryExtensionV2Ext{V: 3,
			V3: &xdr.AccountEntryExtensionV3{SeqLedger: 999, SeqTime: 1699999999}}}}}}
	e.Ext = xdr.LedgerEntryExt{V: 1, V1: &xdr.LedgerEntryExtensionV1{SponsoringId: &synthIssuer}}
	return e
}

func trustlineEntry(id xdr.AccountId, asset xdr.TrustLineAsset, balance, limit int64, flags uint32) xdr.LedgerEntry {
	return xdr.LedgerEntry{LastModifiedLedgerSeq: synthSeq, Data: xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeTrustline,
		TrustLine: &xdr.TrustLineEntry{AccountId: id, Asset: asset, Balance: xdr.Int64(balance), Limit: xdr.Int64(limit), Flags: xdr.Uint32(flags)}}}
}

func poolShare() xdr.TrustLineAsset {
	id := synthPool
	return xdr.TrustLineAsset{Type: xdr.AssetTypeAssetTypePoolShare, LiquidityPoolId: &id}
}

func state(e xdr.LedgerEntry) xdr.LedgerEntryChange {
	return xdr.LedgerEntryChange{Type: xdr.LedgerEntryChangeTypeLedgerEntryState, State: &e}
}

func updated(pre, post xdr.LedgerEntry) []xdr.LedgerEntryChange {
	return []xdr.LedgerEntryChange{state(pre), {Type: xdr.LedgerEntryChangeTypeLedgerEntryUpdated, Updated: &post}}
}

func created(e xdr.LedgerEntry) xdr.LedgerEntryChange {
	return xdr.LedgerEntryChange{Type: xdr.LedgerEntryChangeTypeLedgerEntryCreated, Created: &e}
}

func removed(e xdr.LedgerEntry) []xdr.LedgerEntryChange {
	k, err := e.LedgerKey()
	if err != nil {
		panic(err)
	}
	return []xdr.LedgerEntryChange{state(e), {Type: xdr.LedgerEntryChangeTypeLedgerEntryRemoved, Removed: &k}}
}

func cat(groups ...[]xdr.LedgerEntryChange) xdr.LedgerEntryChanges {
	var out xdr.LedgerEntryChanges
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func op(src *xdr.MuxedAccount, body xdr.OperationBody) xdr.Operation {
	return xdr.Operation{SourceAccount: src, Body: body}
}

func opResult(t xdr.OperationType, fill func(*xdr.OperationResultTr)) xdr.OperationResult {
	tr := xdr.OperationResultTr{Type: t}
	fill(&tr)
	return xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &tr}
}

type synthTx struct {
	src     xdr.AccountId
	ops     []xdr.Operation
	results []xdr.OperationResult
	code    xdr.TransactionResultCode
	fee     xdr.LedgerEntryChanges
	before  xdr.LedgerEntryChanges
	opMeta  []xdr.LedgerEntryChanges
}

func (s synthTx) build(t testing.TB) (xdr.TransactionEnvelope, xdr.TransactionResultMeta) {
	env := xdr.TransactionEnvelope{Type: xdr.EnvelopeTypeEnvelopeTypeTx, V1: &xdr.TransactionV1Envelope{Tx: xdr.Transaction{
		SourceAccount: s.src.ToMuxedAccount(), Fee: 100 * xdr.Uint32(len(s.ops)), SeqNum: 42, Operations: s.ops}}}
	hash, err := network.HashTransactionInEnvelope(env, network.PublicNetworkPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]xdr.OperationMeta, len(s.opMeta))
	for i, c := range s.opMeta {
		ops[i] = xdr.OperationMeta{Changes: c}
	}
	results := s.results
	return env, xdr.TransactionResultMeta{
		Result: xdr.TransactionResultPair{TransactionHash: hash, Result: xdr.TransactionResult{FeeCharged: 100,
			Result: xdr.TransactionResultResult{Code: s.code, Results: &results}}},
		FeeProcessing:     s.fee,
		TxApplyProcessing: xdr.TransactionMeta{V: 3, V3: &xdr.TransactionMetaV3{TxChangesBefore: s.before, Operations: ops}},
	}
}

// synthLedger is a LedgerCloseMeta V1 (sequence 1000, pubnet passphrase) with two transactions:
//
//	tx 1 (A, successful): create_account B; create_account D from C (muxed source);
//	  account_merge E -> A; change_trust B USD (created); change_trust B pool share
//	  (created); change_trust A USD limit 0 (removed); set_trust_line_flags by the issuer on
//	  F's USD trustline (updated).
//	tx 2 (G, failed): create_account H (underfunded).
func synthLedger(t testing.TB) []byte {
	t.Helper()
	usd := synthUSD.ToTrustLineAsset()
	success := func(t xdr.OperationType) xdr.OperationResult {
		return opResult(t, func(tr *xdr.OperationResultTr) {
			switch t {
			case xdr.OperationTypeCreateAccount:
				tr.CreateAccountResult = &xdr.CreateAccountResult{Code: xdr.CreateAccountResultCodeCreateAccountSuccess}
			case xdr.OperationTypeAccountMerge:
				bal := xdr.Int64(3e7)
				tr.AccountMergeResult = &xdr.AccountMergeResult{Code: xdr.AccountMergeResultCodeAccountMergeSuccess, SourceAccountBalance: &bal}
			case xdr.OperationTypeChangeTrust:
				tr.ChangeTrustResult = &xdr.ChangeTrustResult{Code: xdr.ChangeTrustResultCodeChangeTrustSuccess}
			case xdr.OperationTypeSetTrustLineFlags:
				tr.SetTrustLineFlagsResult = &xdr.SetTrustLineFlagsResult{Code: xdr.SetTrustLineFlagsResultCodeSetTrustLineFlagsSuccess}
			}
		})
	}
	muxC, muxE, muxA, muxI := muxed(synthC, 7), synthE.ToMuxedAccount(), synthA.ToMuxedAccount(), synthIssuer.ToMuxedAccount()
	muxB := synthB.ToMuxedAccount()
	poolLine := xdr.ChangeTrustAsset{Type: xdr.AssetTypeAssetTypePoolShare, LiquidityPool: &xdr.LiquidityPoolParameters{
		Type: xdr.LiquidityPoolTypeLiquidityPoolConstantProduct, ConstantProduct: &xdr.LiquidityPoolConstantProductParameters{
			AssetA: xdr.MustNewNativeAsset(), AssetB: synthUSD, Fee: 30}}}
	tx1 := synthTx{
		src: synthA, code: xdr.TransactionResultCodeTxSuccess,
		ops: []xdr.Operation{
			op(nil, xdr.OperationBody{Type: xdr.OperationTypeCreateAccount, CreateAccountOp: &xdr.CreateAccountOp{Destination: synthB, StartingBalance: 100e7}}),
			op(&muxC, xdr.OperationBody{Type: xdr.OperationTypeCreateAccount, CreateAccountOp: &xdr.CreateAccountOp{Destination: synthD, StartingBalance: 5e7}}),
			op(&muxE, xdr.OperationBody{Type: xdr.OperationTypeAccountMerge, Destination: &muxA}),
			op(&muxB, xdr.OperationBody{Type: xdr.OperationTypeChangeTrust, ChangeTrustOp: &xdr.ChangeTrustOp{Line: synthUSD.ToChangeTrustAsset(), Limit: 1000e7}}),
			op(&muxB, xdr.OperationBody{Type: xdr.OperationTypeChangeTrust, ChangeTrustOp: &xdr.ChangeTrustOp{Line: poolLine, Limit: 50e7}}),
			op(nil, xdr.OperationBody{Type: xdr.OperationTypeChangeTrust, ChangeTrustOp: &xdr.ChangeTrustOp{Line: synthUSD.ToChangeTrustAsset(), Limit: 0}}),
			op(&muxI, xdr.OperationBody{Type: xdr.OperationTypeSetTrustLineFlags, SetTrustLineFlagsOp: &xdr.SetTrustLineFlagsOp{
				Trustor: synthF, Asset: synthUSD, SetFlags: xdr.Uint32(xdr.TrustLineFlagsAuthorizedFlag)}}),
		},
		fee:    cat(updated(accountEntry(synthA, 1000e7, 41), accountEntry(synthA, 1000e7-700, 41))),
		before: cat(updated(accountEntry(synthA, 1000e7-700, 41), accountEntry(synthA, 1000e7-700, 42))),
		opMeta: []xdr.LedgerEntryChanges{
			cat(updated(accountEntry(synthA, 1000e7-700, 42), accountEntry(synthA, 900e7-700, 42)),
				[]xdr.LedgerEntryChange{created(accountEntry(synthB, 100e7, 1000<<32))}),
			cat(updated(accountEntry(synthC, 50e7, 9), accountEntry(synthC, 45e7, 9)),
				[]xdr.LedgerEntryChange{created(accountEntry(synthD, 5e7, 1000<<32))}),
			cat(removed(accountEntry(synthE, 3e7, 5)), updated(accountEntry(synthA, 900e7-700, 42), richAccount(903e7-700))),
			{created(trustlineEntry(synthB, usd, 0, 1000e7, 1))},
			{created(trustlineEntry(synthB, poolShare(), 0, 50e7, 1))},
			cat(removed(trustlineEntry(synthA, usd, 0, 10e7, 1))),
			cat(updated(trustlineEntry(synthF, usd, 5e7, 100e7, 0), trustlineEntry(synthF, usd, 5e7, 100e7, 1))),
		},
		results: []xdr.OperationResult{success(xdr.OperationTypeCreateAccount), success(xdr.OperationTypeCreateAccount),
			success(xdr.OperationTypeAccountMerge), success(xdr.OperationTypeChangeTrust), success(xdr.OperationTypeChangeTrust),
			success(xdr.OperationTypeChangeTrust), success(xdr.OperationTypeSetTrustLineFlags)},
	}
	tx2 := synthTx{
		src: synthG, code: xdr.TransactionResultCodeTxFailed,
		ops: []xdr.Operation{op(nil, xdr.OperationBody{Type: xdr.OperationTypeCreateAccount, CreateAccountOp: &xdr.CreateAccountOp{Destination: synthH, StartingBalance: 1e9}})},
		results: []xdr.OperationResult{opResult(xdr.OperationTypeCreateAccount, func(tr *xdr.OperationResultTr) {
			tr.CreateAccountResult = &xdr.CreateAccountResult{Code: xdr.CreateAccountResultCodeCreateAccountUnderfunded}
		})},
		fee:    cat(updated(accountEntry(synthG, 10e7, 3), accountEntry(synthG, 10e7-100, 3))),
		before: cat(updated(accountEntry(synthG, 10e7-100, 3), accountEntry(synthG, 10e7-100, 4))),
		opMeta: []xdr.LedgerEntryChanges{},
	}
	var envs []xdr.TransactionEnvelope
	var metas []xdr.TransactionResultMeta
	for _, tx := range []synthTx{tx1, tx2} {
		e, m := tx.build(t)
		envs, metas = append(envs, e), append(metas, m)
	}
	baseFee := xdr.Int64(100)
	lcm := xdr.LedgerCloseMeta{V: 1, V1: &xdr.LedgerCloseMetaV1{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: synthSeq, LedgerVersion: 22,
			ScpValue: xdr.StellarValue{CloseTime: 1700000000}}},
		TxSet: xdr.GeneralizedTransactionSet{V: 1, V1TxSet: &xdr.TransactionSetV1{Phases: []xdr.TransactionPhase{{V: 0,
			V0Components: &[]xdr.TxSetComponent{{Type: xdr.TxSetComponentTypeTxsetCompTxsMaybeDiscountedFee,
				TxsMaybeDiscountedFee: &xdr.TxSetComponentTxsMaybeDiscountedFee{BaseFee: &baseFee, Txs: envs}}}}}}},
		TxProcessing: metas,
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
