package effects

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
)

// The synthetic ledger covers the operation types the real ledgers lack (and muxed accounts,
// sponsorships, pool revocations, SAC events to contracts): each transaction lists the
// effects Horizon's rules give it, with their details.

// Accounts of the synthetic ledger.
const (
	aA, aB, aI, aT, aS, aN, aK, aP1, aP2, aX, aA2 byte = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)

// synthTx is a synthetic transaction (pt.SynthTx) with the effects Horizon's rules give it.
type synthTx struct {
	name   string
	source xdr.MuxedAccount
	ops    []synthOp
	failed bool
	events []xdr.ContractEvent
	metaV4 bool
	want   []wantEffect
}

type synthOp struct {
	source     *xdr.MuxedAccount
	body       any
	typ        xdr.OperationType
	result     any
	resultType xdr.OperationType
	changes    xdr.LedgerEntryChanges
}

func synthLedger(t *testing.T, txs []synthTx) []byte {
	var out []pt.SynthTx
	for _, tx := range txs {
		s := pt.SynthTx{Name: tx.name, Source: tx.source, Failed: tx.failed, Events: tx.events, MetaV4: tx.metaV4}
		for _, o := range tx.ops {
			s.Ops = append(s.Ops, pt.SynthOp{Source: o.source, Body: o.body, Type: o.typ, Result: o.result, ResultType: o.resultType, Changes: o.changes})
		}
		out = append(out, s)
	}
	return pt.SynthLedger(t, out)
}

type wantEffect struct {
	op      int
	typ     string
	address byte
	muxed   *xdr.MuxedAccount
	details map[string]any
}

type obj = map[string]any

func ptr[T any](v T) *T { return &v }

func hexID(b byte) string {
	s, err := xdr.MarshalHex(pt.BalanceID(b))
	if err != nil {
		panic(err)
	}
	return s
}

func poolJSON(a, b, shares, trustlines string) obj {
	return obj{"id": poolID(pt.PoolID(aI)), "fee_bp": 30, "type": "constant_product", "total_trustlines": trustlines,
		"total_shares": shares, "reserves": []obj{{"asset": "native", "amount": a}, {"asset": "USD:" + pt.Addr(aI), "amount": b}}}
}

func usdDetails(extra obj) obj {
	d := obj{"asset_type": "credit_alphanum4", "asset_code": "USD", "asset_issuer": pt.Addr(aI)}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func synthTxs() []synthTx {
	mA, mB, mT := pt.Muxed(aA, 7), pt.Muxed(aB, 9), pt.Muxed(aT, 3)
	src := func(b byte) *xdr.MuxedAccount { m := pt.Plain(b); return &m }
	th := [4]byte{1, 0, 0, 0}
	usdI := pt.USD(aI)
	key := func(e xdr.LedgerEntry) xdr.LedgerKey {
		k, err := e.LedgerKey()
		if err != nil {
			panic(err)
		}
		return k
	}
	tlKey, nKey := key(pt.Trustline(aT, usdI, 0, 1000, 1)), key(pt.Account(aN, 1, 1, th))
	contract := xdr.ContractId{0xcc}
	contractAddr := strkey.MustEncode(strkey.VersionByteContract, contract[:])
	orderbook := xdr.ClaimAtom{Type: xdr.ClaimAtomTypeClaimAtomTypeOrderBook, OrderBook: &xdr.ClaimOfferAtom{
		SellerId: pt.Acct(aX), OfferId: 42, AssetSold: usdI, AmountSold: 10, AssetBought: xdr.MustNewNativeAsset(), AmountBought: 20}}
	empty := xdr.ClaimAtom{Type: xdr.ClaimAtomTypeClaimAtomTypeOrderBook, OrderBook: &xdr.ClaimOfferAtom{
		SellerId: pt.Acct(aX), OfferId: 43, AssetSold: usdI, AssetBought: xdr.MustNewNativeAsset()}}
	lpClaim := xdr.ClaimAtom{Type: xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool, LiquidityPool: &xdr.ClaimLiquidityAtom{
		LiquidityPoolId: pt.PoolID(aI), AssetSold: xdr.MustNewNativeAsset(), AmountSold: 5, AssetBought: usdI, AmountBought: 3}}
	offerResult := xdr.ManageSellOfferResult{Code: xdr.ManageSellOfferResultCodeManageSellOfferSuccess, Success: &xdr.ManageOfferSuccessResult{
		OffersClaimed: []xdr.ClaimAtom{orderbook, empty, lpClaim}, Offer: xdr.ManageOfferSuccessResultOffer{Effect: xdr.ManageOfferEffectManageOfferDeleted}}}
	trade := func(op int) []wantEffect {
		return []wantEffect{
			{op, "trade", aA, &mA, obj{"offer_id": 42, "seller": pt.Addr(aX), "bought_amount": "0.0000010", "bought_asset_type": "credit_alphanum4",
				"bought_asset_code": "USD", "bought_asset_issuer": pt.Addr(aI), "sold_amount": "0.0000020", "sold_asset_type": "native"}},
			{op, "trade", aX, nil, obj{"offer_id": 42, "seller": pt.Addr(aA), "seller_muxed": mA.Address(), "seller_muxed_id": 7,
				"bought_amount": "0.0000020", "bought_asset_type": "native", "sold_amount": "0.0000010", "sold_asset_type": "credit_alphanum4",
				"sold_asset_code": "USD", "sold_asset_issuer": pt.Addr(aI)}},
			{op, "liquidity_pool_trade", aA, &mA, obj{"liquidity_pool": poolJSON("0.0000995", "0.0002003", "0.0000500", "2"),
				"sold": obj{"asset": "native", "amount": "0.0000005"}, "bought": obj{"asset": "USD:" + pt.Addr(aI), "amount": "0.0000003"}}},
		}
	}
	return []synthTx{
		{name: "sponsored create_account", source: pt.Plain(aS), ops: []synthOp{
			{typ: xdr.OperationTypeBeginSponsoringFutureReserves, body: xdr.BeginSponsoringFutureReservesOp{SponsoredId: pt.Acct(aN)},
				result: xdr.BeginSponsoringFutureReservesResult{Code: xdr.BeginSponsoringFutureReservesResultCodeBeginSponsoringFutureReservesSuccess}},
			{typ: xdr.OperationTypeCreateAccount, body: xdr.CreateAccountOp{Destination: pt.Acct(aN), StartingBalance: 100000000},
				result:  xdr.CreateAccountResult{Code: xdr.CreateAccountResultCodeCreateAccountSuccess},
				changes: pt.Changes(pt.Created(pt.Sponsored(pt.Account(aN, 100000000, 1, th), aS)), pt.Updated(pt.Account(aS, 500000000, 1, th), pt.Account(aS, 400000000, 1, th)))},
			{typ: xdr.OperationTypeEndSponsoringFutureReserves, source: src(aN),
				result: xdr.EndSponsoringFutureReservesResult{Code: xdr.EndSponsoringFutureReservesResultCodeEndSponsoringFutureReservesSuccess}},
		}, want: []wantEffect{
			{1, "account_created", aN, nil, obj{"starting_balance": "10.0000000"}},
			{1, "account_debited", aS, nil, obj{"asset_type": "native", "amount": "10.0000000"}},
			{1, "signer_created", aN, nil, obj{"public_key": pt.Addr(aN), "weight": 1}},
			{1, "account_sponsorship_created", aN, nil, obj{"sponsor": pt.Addr(aS)}},
		}},
		{name: "set_options from a muxed account", source: mA, ops: []synthOp{
			{typ: xdr.OperationTypeSetOptions, body: xdr.SetOptionsOp{InflationDest: ptr(pt.Acct(aB)), ClearFlags: ptr(xdr.Uint32(8)),
				SetFlags: ptr(xdr.Uint32(3)), MasterWeight: ptr(xdr.Uint32(0)), LowThreshold: ptr(xdr.Uint32(1)), HighThreshold: ptr(xdr.Uint32(3)),
				HomeDomain: ptr(xdr.String32("example.com")), Signer: &xdr.Signer{Key: xdr.MustSigner(pt.Addr(aK)), Weight: 5}},
				result:  xdr.SetOptionsResult{Code: xdr.SetOptionsResultCodeSetOptionsSuccess},
				changes: pt.Updated(pt.Account(aA, 100, 5, th), pt.Account(aA, 100, 5, [4]byte{0, 1, 0, 3}, pt.Signer{Key: aK, Weight: 5, Sponsor: aS}))},
		}, want: []wantEffect{
			{0, "account_home_domain_updated", aA, &mA, obj{"home_domain": "example.com"}},
			{0, "account_thresholds_updated", aA, &mA, obj{"low_threshold": 1, "high_threshold": 3}},
			{0, "account_flags_updated", aA, &mA, obj{"auth_required_flag": true, "auth_revocable_flag": true, "auth_clawback_enabled_flag": false}},
			{0, "account_inflation_destination_updated", aA, &mA, obj{"inflation_destination": pt.Addr(aB)}},
			{0, "signer_removed", aA, &mA, obj{"public_key": pt.Addr(aA)}},
			{0, "signer_created", aA, &mA, obj{"public_key": pt.Addr(aK), "weight": 5}},
			{0, "signer_sponsorship_created", aA, nil, obj{"sponsor": pt.Addr(aS), "signer": pt.Addr(aK)}},
		}},
		{name: "allow_trust", source: pt.Plain(aI), ops: []synthOp{
			{typ: xdr.OperationTypeAllowTrust, body: xdr.AllowTrustOp{Trustor: pt.Acct(aT), Asset: xdr.MustNewAssetCodeFromString("USD"), Authorize: 1},
				result:  xdr.AllowTrustResult{Code: xdr.AllowTrustResultCodeAllowTrustSuccess},
				changes: pt.Updated(pt.Trustline(aT, usdI, 0, 1000, 0), pt.Trustline(aT, usdI, 0, 1000, 1))},
		}, want: []wantEffect{
			{0, "trustline_authorized", aI, nil, usdDetails(obj{"trustor": pt.Addr(aT)})},
			{0, "trustline_flags_updated", aI, nil, usdDetails(obj{"trustor": pt.Addr(aT), "authorized_flag": true})},
		}},
		{name: "set_trust_line_flags revoking pool shares", source: pt.Plain(aI), ops: []synthOp{
			{typ: xdr.OperationTypeSetTrustLineFlags, body: xdr.SetTrustLineFlagsOp{Trustor: pt.Acct(aT), Asset: usdI, ClearFlags: 1},
				result: xdr.SetTrustLineFlagsResult{Code: xdr.SetTrustLineFlagsResultCodeSetTrustLineFlagsSuccess},
				changes: pt.Changes(pt.Updated(pt.Trustline(aT, usdI, 0, 1000, 1), pt.Trustline(aT, usdI, 0, 1000, 0)),
					pt.Removed(pt.PoolShareTrustline(aT, pt.PoolID(aI), 50)),
					pt.Updated(pt.Pool(aI, 1000, 2000, 500, 2), pt.Pool(aI, 900, 1800, 450, 1)),
					pt.Created(pt.ClaimableBalance(21, xdr.MustNewNativeAsset(), 100, aT)),
					pt.Created(pt.ClaimableBalance(22, usdI, 200, aT)))},
		}, want: []wantEffect{
			{0, "trustline_flags_updated", aI, nil, usdDetails(obj{"trustor": pt.Addr(aT), "authorized_flag": false})},
			{0, "claimable_balance_created", aI, nil, obj{"balance_id": hexID(21), "amount": "0.0000100", "asset": "native"}},
			{0, "claimable_balance_claimant_created", aT, nil, obj{"balance_id": hexID(21), "amount": "0.0000100", "asset": "native",
				"predicate": obj{"unconditional": true}}},
			{0, "claimable_balance_created", aI, nil, obj{"balance_id": hexID(22), "amount": "0.0000200", "asset": "USD:" + pt.Addr(aI)}},
			{0, "claimable_balance_claimant_created", aT, nil, obj{"balance_id": hexID(22), "amount": "0.0000200", "asset": "USD:" + pt.Addr(aI),
				"predicate": obj{"unconditional": true}}},
			{0, "liquidity_pool_revoked", aI, nil, obj{"liquidity_pool": poolJSON("0.0000900", "0.0001800", "0.0000450", "1"),
				"reserves_revoked": []obj{
					{"asset": "native", "amount": "0.0000100", "claimable_balance_id": hexID(21)},
					{"asset": "USD:" + pt.Addr(aI), "amount": "0.0000200", "claimable_balance_id": hexID(22)}},
				"shares_revoked": "0.0000050"}},
		}},
		{name: "account_merge into a muxed account", source: pt.Plain(aA2), ops: []synthOp{
			{typ: xdr.OperationTypeAccountMerge, body: mB,
				result:  xdr.AccountMergeResult{Code: xdr.AccountMergeResultCodeAccountMergeSuccess, SourceAccountBalance: ptr(xdr.Int64(500000000))},
				changes: pt.Changes(pt.Removed(pt.Account(aA2, 500000000, 1, th)), pt.Updated(pt.Account(aB, 1, 1, th), pt.Account(aB, 500000001, 1, th)))},
		}, want: []wantEffect{
			{0, "account_debited", aA2, nil, obj{"amount": "50.0000000", "asset_type": "native"}},
			{0, "account_credited", aB, &mB, obj{"amount": "50.0000000", "asset_type": "native"}},
			{0, "account_removed", aA2, nil, obj{}},
		}},
		{name: "inflation", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeInflation, result: xdr.InflationResult{Code: xdr.InflationResultCodeInflationSuccess,
				Payouts: &[]xdr.InflationPayout{{Destination: pt.Acct(aP1), Amount: 100000000}, {Destination: pt.Acct(aP2), Amount: 200000000}}}},
		}, want: []wantEffect{
			{0, "account_credited", aP1, nil, obj{"amount": "10.0000000", "asset_type": "native"}},
			{0, "account_credited", aP2, nil, obj{"amount": "20.0000000", "asset_type": "native"}},
		}},
		{name: "manage_data create, update, remove", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeManageData, body: xdr.ManageDataOp{DataName: "k", DataValue: ptr(xdr.DataValue("v1"))},
				result:  xdr.ManageDataResult{Code: xdr.ManageDataResultCodeManageDataSuccess},
				changes: pt.Created(pt.Sponsored(pt.DataEntry(aA, "k", "v1"), aS))},
			{typ: xdr.OperationTypeManageData, body: xdr.ManageDataOp{DataName: "k", DataValue: ptr(xdr.DataValue("v2"))},
				result:  xdr.ManageDataResult{Code: xdr.ManageDataResultCodeManageDataSuccess},
				changes: pt.Updated(pt.Sponsored(pt.DataEntry(aA, "k", "v1"), aS), pt.Sponsored(pt.DataEntry(aA, "k", "v2"), aS))},
			{typ: xdr.OperationTypeManageData, body: xdr.ManageDataOp{DataName: "old"},
				result:  xdr.ManageDataResult{Code: xdr.ManageDataResultCodeManageDataSuccess},
				changes: pt.Removed(pt.Sponsored(pt.DataEntry(aA, "old", "x"), aS))},
		}, want: []wantEffect{
			{0, "data_created", aA, nil, obj{"name": "k", "value": base64.StdEncoding.EncodeToString([]byte("v1"))}},
			{0, "data_sponsorship_created", aA, nil, obj{"sponsor": pt.Addr(aS), "data_name": "k"}},
			{1, "data_updated", aA, nil, obj{"name": "k", "value": base64.StdEncoding.EncodeToString([]byte("v2"))}},
			{2, "data_removed", aA, nil, obj{"name": "old"}},
			{2, "data_sponsorship_removed", aA, nil, obj{"former_sponsor": pt.Addr(aS), "data_name": "old"}},
		}},
		{name: "bump_sequence", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeBumpSequence, body: xdr.BumpSequenceOp{BumpTo: 100},
				result:  xdr.BumpSequenceResult{Code: xdr.BumpSequenceResultCodeBumpSequenceSuccess},
				changes: pt.Updated(pt.Account(aA, 100, 10, th), pt.Account(aA, 100, 100, th))},
		}, want: []wantEffect{{0, "sequence_bumped", aA, nil, obj{"new_seq": 100}}}},
		{name: "revoke_sponsorship", source: pt.Plain(aS), ops: []synthOp{
			{typ: xdr.OperationTypeRevokeSponsorship, body: xdr.RevokeSponsorshipOp{Type: xdr.RevokeSponsorshipTypeRevokeSponsorshipLedgerEntry, LedgerKey: &tlKey},
				result:  xdr.RevokeSponsorshipResult{Code: xdr.RevokeSponsorshipResultCodeRevokeSponsorshipSuccess},
				changes: pt.Updated(pt.Sponsored(pt.Trustline(aT, usdI, 0, 1000, 1), aS), pt.Trustline(aT, usdI, 0, 1000, 1))},
			{typ: xdr.OperationTypeRevokeSponsorship, body: xdr.RevokeSponsorshipOp{Type: xdr.RevokeSponsorshipTypeRevokeSponsorshipSigner,
				Signer: &xdr.RevokeSponsorshipOpSigner{AccountId: pt.Acct(aA), SignerKey: xdr.MustSigner(pt.Addr(aK))}},
				result:  xdr.RevokeSponsorshipResult{Code: xdr.RevokeSponsorshipResultCodeRevokeSponsorshipSuccess},
				changes: pt.Updated(pt.Account(aA, 100, 5, th, pt.Signer{Key: aK, Weight: 1, Sponsor: aS}), pt.Account(aA, 100, 5, th, pt.Signer{Key: aK, Weight: 1, Sponsor: aB}))},
			{typ: xdr.OperationTypeRevokeSponsorship, body: xdr.RevokeSponsorshipOp{Type: xdr.RevokeSponsorshipTypeRevokeSponsorshipLedgerEntry, LedgerKey: &nKey},
				result:  xdr.RevokeSponsorshipResult{Code: xdr.RevokeSponsorshipResultCodeRevokeSponsorshipSuccess},
				changes: pt.Updated(pt.Sponsored(pt.Account(aN, 1, 1, th), aS), pt.Sponsored(pt.Account(aN, 1, 1, th), aB))},
		}, want: []wantEffect{
			{0, "trustline_sponsorship_removed", aT, nil, obj{"former_sponsor": pt.Addr(aS), "asset": "USD:" + pt.Addr(aI)}},
			{1, "signer_sponsorship_updated", aA, nil, obj{"former_sponsor": pt.Addr(aS), "new_sponsor": pt.Addr(aB), "signer": pt.Addr(aK)}},
			{2, "account_sponsorship_updated", aN, nil, obj{"former_sponsor": pt.Addr(aS), "new_sponsor": pt.Addr(aB)}},
		}},
		{name: "clawback from a muxed account", source: pt.Plain(aI), ops: []synthOp{
			{typ: xdr.OperationTypeClawback, body: xdr.ClawbackOp{Asset: usdI, From: mT, Amount: 5},
				result: xdr.ClawbackResult{Code: xdr.ClawbackResultCodeClawbackSuccess}},
		}, want: []wantEffect{
			{0, "account_credited", aI, nil, usdDetails(obj{"amount": "0.0000005"})},
			{0, "account_debited", aT, &mT, usdDetails(obj{"amount": "0.0000005"})},
		}},
		{name: "clawback_claimable_balance", source: pt.Plain(aI), ops: []synthOp{
			{typ: xdr.OperationTypeClawbackClaimableBalance, body: xdr.ClawbackClaimableBalanceOp{BalanceId: pt.BalanceID(23)},
				result:  xdr.ClawbackClaimableBalanceResult{Code: xdr.ClawbackClaimableBalanceResultCodeClawbackClaimableBalanceSuccess},
				changes: pt.Removed(pt.Sponsored(pt.ClaimableBalance(23, usdI, 70, aT), aS))},
		}, want: []wantEffect{
			{0, "claimable_balance_clawed_back", aI, nil, obj{"balance_id": hexID(23)}},
			{0, "account_credited", aI, nil, usdDetails(obj{"amount": "0.0000070"})},
			{0, "claimable_balance_sponsorship_removed", aI, nil, obj{"former_sponsor": pt.Addr(aS), "balance_id": hexID(23)}},
		}},
		{name: "liquidity_pool_deposit and withdraw", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeLiquidityPoolDeposit, body: xdr.LiquidityPoolDepositOp{LiquidityPoolId: pt.PoolID(aI), MaxAmountA: 100,
				MaxAmountB: 200, MinPrice: xdr.Price{N: 1, D: 1}, MaxPrice: xdr.Price{N: 1, D: 1}},
				result:  xdr.LiquidityPoolDepositResult{Code: xdr.LiquidityPoolDepositResultCodeLiquidityPoolDepositSuccess},
				changes: pt.Updated(pt.Pool(aI, 1000, 2000, 500, 2), pt.Pool(aI, 1100, 2200, 550, 2))},
			{typ: xdr.OperationTypeLiquidityPoolWithdraw, body: xdr.LiquidityPoolWithdrawOp{LiquidityPoolId: pt.PoolID(aI), Amount: 50},
				result:  xdr.LiquidityPoolWithdrawResult{Code: xdr.LiquidityPoolWithdrawResultCodeLiquidityPoolWithdrawSuccess},
				changes: pt.Updated(pt.Pool(aI, 1100, 2200, 550, 2), pt.Pool(aI, 1000, 2000, 500, 2))},
		}, want: []wantEffect{
			{0, "liquidity_pool_deposited", aA, nil, obj{"liquidity_pool": poolJSON("0.0001100", "0.0002200", "0.0000550", "2"),
				"reserves_deposited": []obj{{"asset": "native", "amount": "0.0000100"}, {"asset": "USD:" + pt.Addr(aI), "amount": "0.0000200"}},
				"shares_received":    "0.0000050"}},
			{1, "liquidity_pool_withdrew", aA, nil, obj{"liquidity_pool": poolJSON("0.0001000", "0.0002000", "0.0000500", "2"),
				"reserves_received": []obj{{"asset": "native", "amount": "0.0000100"}, {"asset": "USD:" + pt.Addr(aI), "amount": "0.0000200"}},
				"shares_redeemed":   "0.0000050"}},
		}},
		{name: "change_trust on pool shares", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeChangeTrust, body: xdr.ChangeTrustOp{Limit: 1000, Line: xdr.ChangeTrustAsset{Type: xdr.AssetTypeAssetTypePoolShare,
				LiquidityPool: &xdr.LiquidityPoolParameters{Type: xdr.LiquidityPoolTypeLiquidityPoolConstantProduct, ConstantProduct: ptr(pt.PoolParams(aI))}}},
				result: xdr.ChangeTrustResult{Code: xdr.ChangeTrustResultCodeChangeTrustSuccess},
				changes: pt.Changes(pt.Updated(pt.Trustline(aA, usdI, 0, 1000, 1), pt.Trustline(aA, usdI, 0, 1000, 1)),
					pt.Created(pt.Pool(aI, 0, 0, 0, 1)), pt.Created(pt.PoolShareTrustline(aA, pt.PoolID(aI), 0)))},
		}, want: []wantEffect{
			{0, "trustline_created", aA, nil, obj{"limit": "0.0001000", "asset_type": "liquidity_pool_shares", "liquidity_pool_id": poolID(pt.PoolID(aI))}},
			{0, "liquidity_pool_created", aA, nil, obj{"liquidity_pool": poolJSON("0.0000000", "0.0000000", "0.0000000", "1")}},
		}},
		{name: "manage_sell_offer crossing an offer and a pool", source: mA, ops: []synthOp{
			{typ: xdr.OperationTypeManageSellOffer, body: xdr.ManageSellOfferOp{Selling: xdr.MustNewNativeAsset(), Buying: usdI, Amount: 100, Price: xdr.Price{N: 1, D: 1}},
				result: offerResult, changes: pt.Updated(pt.Pool(aI, 1000, 2000, 500, 2), pt.Pool(aI, 995, 2003, 500, 2))},
		}, want: trade(0)},
		{name: "create_passive_sell_offer with core's manage_sell_offer result arm", source: mA, ops: []synthOp{
			{typ: xdr.OperationTypeCreatePassiveSellOffer, resultType: xdr.OperationTypeManageSellOffer,
				body:   xdr.CreatePassiveSellOfferOp{Selling: xdr.MustNewNativeAsset(), Buying: usdI, Amount: 100, Price: xdr.Price{N: 1, D: 1}},
				result: offerResult, changes: pt.Updated(pt.Pool(aI, 1000, 2000, 500, 2), pt.Pool(aI, 995, 2003, 500, 2))},
		}, want: trade(0)},
		{name: "extend_footprint_ttl", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeExtendFootprintTtl, body: xdr.ExtendFootprintTtlOp{ExtendTo: 100},
				result: xdr.ExtendFootprintTtlResult{Code: xdr.ExtendFootprintTtlResultCodeExtendFootprintTtlSuccess}},
		}},
		{name: "restore_footprint", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeRestoreFootprint, body: xdr.RestoreFootprintOp{},
				result: xdr.RestoreFootprintResult{Code: xdr.RestoreFootprintResultCodeRestoreFootprintSuccess}},
		}},
		{name: "invoke_host_function with SAC events", source: pt.Plain(aA), ops: []synthOp{
			{typ: xdr.OperationTypeInvokeHostFunction, body: xdr.InvokeHostFunctionOp{HostFunction: xdr.HostFunction{
				Type: xdr.HostFunctionTypeHostFunctionTypeInvokeContract, InvokeContract: &xdr.InvokeContractArgs{
					ContractAddress: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &contract}, FunctionName: "go"}}},
				result:  xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess, Success: &xdr.Hash{}},
				changes: pt.Created(pt.Trustline(aT, usdI, 0, 1000, 1))},
		}, events: []xdr.ContractEvent{
			pt.SACEvent(xdr.MustNewNativeAsset(), pt.ScI128(1000), pt.ScSym("transfer"), pt.ScAccount(aA), pt.ScContract(contract)),
			pt.SACEvent(usdI, pt.ScI128(300), pt.ScSym("mint"), pt.ScAccount(aI), pt.ScAccount(aT)),
			pt.SACEvent(usdI, pt.ScI128(40), pt.ScSym("burn"), pt.ScAccount(aA)),
			{Type: xdr.ContractEventTypeContract, ContractId: &contract, Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{
				Topics: []xdr.ScVal{pt.ScSym("transfer"), pt.ScAccount(aA), pt.ScAccount(aB), pt.ScStr("native")}, Data: pt.ScI128(5)}}},
		}, want: []wantEffect{
			{0, "account_debited", aA, nil, obj{"asset_type": "native", "amount": "0.0001000"}},
			{0, "contract_credited", aA, nil, obj{"asset_type": "native", "amount": "0.0001000", "contract": contractAddr}},
			{0, "account_credited", aT, nil, usdDetails(obj{"amount": "0.0000300"})},
			{0, "account_debited", aA, nil, usdDetails(obj{"amount": "0.0000040"})},
			{0, "trustline_created", aT, nil, usdDetails(obj{"limit": "0.0001000"})},
		}},
		{name: "invoke_host_function with protocol 23 SAC events (muxed destination, admin-less mint and clawback)", source: pt.Plain(aA),
			metaV4: true, ops: []synthOp{
				{typ: xdr.OperationTypeInvokeHostFunction, body: xdr.InvokeHostFunctionOp{HostFunction: xdr.HostFunction{
					Type: xdr.HostFunctionTypeHostFunctionTypeInvokeContract, InvokeContract: &xdr.InvokeContractArgs{
						ContractAddress: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &contract}, FunctionName: "go"}}},
					result: xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess, Success: &xdr.Hash{}}},
			}, events: []xdr.ContractEvent{
				pt.SACEvent(xdr.MustNewNativeAsset(), pt.ScMuxedAmount(1000, 77), pt.ScSym("transfer"), pt.ScAccount(aA), pt.ScAccount(aT)),
				pt.SACEvent(usdI, pt.ScI128(300), pt.ScSym("mint"), pt.ScAccount(aT)),
				pt.SACEvent(usdI, pt.ScI128(10), pt.ScSym("clawback"), pt.ScAccount(aT)),
			}, want: []wantEffect{
				{0, "account_debited", aA, nil, obj{"asset_type": "native", "amount": "0.0001000"}},
				{0, "account_credited", aT, ptr(pt.Muxed(aT, 77)), obj{"asset_type": "native", "amount": "0.0001000"}},
				{0, "account_credited", aT, nil, usdDetails(obj{"amount": "0.0000300"})},
				{0, "account_debited", aT, nil, usdDetails(obj{"amount": "0.0000010"})},
			}},
		{name: "payment between muxed accounts", source: mA, ops: []synthOp{
			{typ: xdr.OperationTypePayment, body: xdr.PaymentOp{Destination: mB, Asset: xdr.MustNewNativeAsset(), Amount: 1000000},
				result: xdr.PaymentResult{Code: xdr.PaymentResultCodePaymentSuccess}},
		}, want: []wantEffect{
			{0, "account_credited", aB, &mB, obj{"amount": "0.1000000", "asset_type": "native"}},
			{0, "account_debited", aA, &mA, obj{"amount": "0.1000000", "asset_type": "native"}},
		}},
		{name: "failed payment", source: pt.Plain(aA), failed: true, ops: []synthOp{
			{typ: xdr.OperationTypePayment, body: xdr.PaymentOp{Destination: pt.Plain(aB), Asset: xdr.MustNewNativeAsset(), Amount: 1},
				result: xdr.PaymentResult{Code: xdr.PaymentResultCodePaymentUnderfunded}},
		}},
	}
}

func norm(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStellarEffectsSynthetic runs StellarEffects on the synthetic ledger and compares every
// transaction's effects (type, account, muxed account, details, order) with Horizon's.
func TestStellarEffectsSynthetic(t *testing.T) {
	txs := synthTxs()
	raw := synthLedger(t, txs)
	recs := pt.Run(t, NewStellarEffects, map[string]any{"network": "pubnet"}, raw, nil)
	byTx := map[int][]EffectRecord{}
	for _, r := range recs {
		e := r.(EffectRecord)
		byTx[e.TransactionIndex] = append(byTx[e.TransactionIndex], e)
	}
	covered := map[string]bool{}
	total := 0
	for i, tx := range txs {
		for _, o := range tx.ops {
			covered[o.typ.String()] = true
		}
		got := byTx[i+1]
		total += len(tx.want)
		if len(got) != len(tx.want) {
			t.Errorf("%s: %d effects, want %d: %+v", tx.name, len(got), len(tx.want), got)
			continue
		}
		for j, w := range tx.want {
			g := got[j]
			wantMuxed := ""
			if w.muxed != nil {
				wantMuxed = w.muxed.Address()
			}
			gotMuxed := ""
			if g.AddressMuxed != nil {
				gotMuxed = *g.AddressMuxed
			}
			var gd any
			if err := json.Unmarshal(g.Details, &gd); err != nil {
				t.Fatal(err)
			}
			if g.TypeString != w.typ || g.Address != pt.Addr(w.address) || gotMuxed != wantMuxed || g.OperationIndex != w.op ||
				!reflect.DeepEqual(gd, norm(t, w.details)) {
				t.Errorf("%s effect %d:\n got %s %s %q op %d %s\nwant %s %s %q op %d %s", tx.name, j,
					g.TypeString, g.Address, gotMuxed, g.OperationIndex, g.Details,
					w.typ, pt.Addr(w.address), wantMuxed, w.op, fmt.Sprint(norm(t, w.details)))
			}
		}
	}
	if len(recs) != total {
		t.Errorf("%d effects, want %d", len(recs), total)
	}
	// With the real ledgers' types (payments, path payments, offers, claimable balances,
	// change_trust, invoke_host_function), every operation type is covered.
	for _, typ := range xdr.OperationTypeToStringMap {
		real := map[string]bool{"OperationTypePathPaymentStrictReceive": true, "OperationTypePathPaymentStrictSend": true,
			"OperationTypeManageBuyOffer": true, "OperationTypeCreateClaimableBalance": true, "OperationTypeClaimClaimableBalance": true}
		if !covered[typ] && !real[typ] {
			t.Errorf("no synthetic %s", typ)
		}
	}
}
