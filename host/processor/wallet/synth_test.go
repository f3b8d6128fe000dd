package wallet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	pt "github.com/withobsrvr/cdpd/host/processor/proctest"
)

// The synthetic ledger covers what the real ledgers lack for ParticipantExtractor and
// WalletBackend: sponsorship sandwiches and revocations, set_options, trustline flags,
// clawbacks, merges, offers created and crossed, Soroban token events.

// Accounts of the synthetic ledger.
const (
	aA, aB, aI, aT, aS, aN, aK, aX, aA2 byte = 1, 2, 3, 4, 5, 6, 7, 10, 11
)

// wantChange is an expected state change: "TYPE account" and the columns that matter.
type wantChange struct {
	typ     string
	account string
	fields  string // "column=value ..." of the non-null columns checked
}

type walletCase struct {
	tx           pt.SynthTx
	participants []byte
	roles        string // "source=... dest=... signer=... trust=... offer=... contract=..." (letters of the accounts)
	changes      []wantChange
}

var names = map[byte]string{aA: "A", aB: "B", aI: "I", aT: "T", aS: "S", aN: "N", aK: "K", aX: "X", aA2: "A2"}

func walletCases() []walletCase {
	th := [4]byte{1, 0, 0, 0}
	usd := pt.USD(aI)
	native := xdr.MustNewNativeAsset()
	contract := xdr.ContractId{0xcc}
	tl := pt.Trustline(aT, usd, 0, 1000, 1)
	tlKey, err := tl.LedgerKey()
	if err != nil {
		panic(err)
	}
	m := func(b byte) *xdr.MuxedAccount { a := pt.Plain(b); return &a }
	offer := func(seller byte, id, amt int64) xdr.LedgerEntry {
		return xdr.LedgerEntry{LastModifiedLedgerSeq: pt.SynthSeq, Data: xdr.LedgerEntryData{Type: xdr.LedgerEntryTypeOffer, Offer: &xdr.OfferEntry{
			SellerId: pt.Acct(seller), OfferId: xdr.Int64(id), Selling: usd, Buying: native, Amount: xdr.Int64(amt), Price: xdr.Price{N: 2, D: 1}}}}
	}
	return []walletCase{
		{tx: pt.SynthTx{Name: "sponsored create_account", Source: pt.Plain(aS), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeBeginSponsoringFutureReserves, Body: xdr.BeginSponsoringFutureReservesOp{SponsoredId: pt.Acct(aN)},
				Result: xdr.BeginSponsoringFutureReservesResult{Code: xdr.BeginSponsoringFutureReservesResultCodeBeginSponsoringFutureReservesSuccess}},
			{Type: xdr.OperationTypeCreateAccount, Body: xdr.CreateAccountOp{Destination: pt.Acct(aN), StartingBalance: 100000000},
				Result: xdr.CreateAccountResult{Code: xdr.CreateAccountResultCodeCreateAccountSuccess},
				Changes: pt.Changes(pt.Created(pt.Sponsored(pt.Account(aN, 100000000, 1, th), aS)),
					pt.Updated(pt.Account(aS, 500000000, 1, th), pt.Account(aS, 400000000, 1, th)))},
			{Type: xdr.OperationTypeEndSponsoringFutureReserves, Source: m(aN),
				Result: xdr.EndSponsoringFutureReservesResult{Code: xdr.EndSponsoringFutureReservesResultCodeEndSponsoringFutureReservesSuccess}},
		}}, participants: []byte{aS, aN}, roles: "source=S,N dest=N",
			changes: []wantChange{
				{"DEBIT", "S", "amount=100000000 asset_type=native asset_code=XLM balance_before=500000000 balance_after=400000000"},
				{"CREDIT", "N", "amount=100000000 asset_type=native balance_before=0 balance_after=100000000"},
				{"ACCOUNT_CREATED", "N", ""},
				{"SIGNER", "N", "signer_key=N signer_weight=1"},
				{"SPONSORSHIP", "N", "sponsorship_account=S"},
			}},
		{tx: pt.SynthTx{Name: "set_options", Source: pt.Muxed(aA, 7), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeSetOptions, Body: xdr.SetOptionsOp{InflationDest: &[]xdr.AccountId{pt.Acct(aB)}[0],
				ClearFlags: &[]xdr.Uint32{8}[0], SetFlags: &[]xdr.Uint32{3}[0], MasterWeight: &[]xdr.Uint32{0}[0],
				LowThreshold: &[]xdr.Uint32{1}[0], HighThreshold: &[]xdr.Uint32{3}[0], HomeDomain: &[]xdr.String32{"example.com"}[0],
				Signer: &xdr.Signer{Key: xdr.MustSigner(pt.Addr(aK)), Weight: 5}},
				Result:  xdr.SetOptionsResult{Code: xdr.SetOptionsResultCodeSetOptionsSuccess},
				Changes: pt.Updated(pt.Account(aA, 100, 5, th), pt.Account(aA, 100, 5, [4]byte{0, 1, 0, 3}, pt.Signer{Key: aK, Weight: 5, Sponsor: aS}))},
		}}, participants: []byte{aA, aS}, roles: "source=A signer=K",
			changes: []wantChange{
				{"HOME_DOMAIN", "A", "data_value=example.com"},
				{"THRESHOLD", "A", "threshold_type=low threshold_value=1"},
				{"THRESHOLD", "A", "threshold_type=high threshold_value=3"},
				{"FLAGS", "A", "flags_set=3 flags_clear=8"},
				{"INFLATION", "A", ""},
				{"SIGNER", "A", "signer_key=A signer_weight=0"},
				{"SIGNER", "A", "signer_key=K signer_weight=5"},
				{"SPONSORSHIP", "A", "sponsorship_account=S"},
			}},
		{tx: pt.SynthTx{Name: "set_trust_line_flags", Source: pt.Plain(aI), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeSetTrustLineFlags, Body: xdr.SetTrustLineFlagsOp{Trustor: pt.Acct(aT), Asset: usd, ClearFlags: 1},
				Result:  xdr.SetTrustLineFlagsResult{Code: xdr.SetTrustLineFlagsResultCodeSetTrustLineFlagsSuccess},
				Changes: pt.Updated(pt.Trustline(aT, usd, 0, 1000, 1), pt.Trustline(aT, usd, 0, 1000, 0))},
		}}, participants: []byte{aI, aT}, roles: "source=I trust=T",
			changes: []wantChange{{"TRUSTLINE_UPDATED", "T", "asset_type=credit_alphanum4 asset_code=USD asset_issuer=I flags_clear=1"}}},
		{tx: pt.SynthTx{Name: "clawback", Source: pt.Plain(aI), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeClawback, Body: xdr.ClawbackOp{Asset: usd, From: pt.Muxed(aT, 3), Amount: 5},
				Result:  xdr.ClawbackResult{Code: xdr.ClawbackResultCodeClawbackSuccess},
				Changes: pt.Updated(pt.Trustline(aT, usd, 100, 1000, 1), pt.Trustline(aT, usd, 95, 1000, 1))},
		}}, participants: []byte{aI, aT}, roles: "source=I,T",
			changes: []wantChange{{"CLAWBACK", "T", "amount=5 asset_code=USD balance_before=100 balance_after=95"}}},
		{tx: pt.SynthTx{Name: "revoke_sponsorship", Source: pt.Plain(aS), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeRevokeSponsorship, Body: xdr.RevokeSponsorshipOp{Type: xdr.RevokeSponsorshipTypeRevokeSponsorshipLedgerEntry, LedgerKey: &tlKey},
				Result:  xdr.RevokeSponsorshipResult{Code: xdr.RevokeSponsorshipResultCodeRevokeSponsorshipSuccess},
				Changes: pt.Updated(pt.Sponsored(pt.Trustline(aT, usd, 0, 1000, 1), aS), pt.Trustline(aT, usd, 0, 1000, 1))},
		}}, participants: []byte{aS, aT}, roles: "source=S",
			changes: []wantChange{{"SPONSORSHIP", "T", "sponsorship_account=S"}}},
		{tx: pt.SynthTx{Name: "manage_sell_offer crossing an offer", Source: pt.Plain(aA), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeManageSellOffer, Body: xdr.ManageSellOfferOp{Selling: native, Buying: usd, Amount: 100, Price: xdr.Price{N: 1, D: 2}},
				Result: xdr.ManageSellOfferResult{Code: xdr.ManageSellOfferResultCodeManageSellOfferSuccess, Success: &xdr.ManageOfferSuccessResult{
					OffersClaimed: []xdr.ClaimAtom{{Type: xdr.ClaimAtomTypeClaimAtomTypeOrderBook, OrderBook: &xdr.ClaimOfferAtom{
						SellerId: pt.Acct(aX), OfferId: 42, AssetSold: usd, AmountSold: 10, AssetBought: native, AmountBought: 20}}},
					Offer: xdr.ManageOfferSuccessResultOffer{Effect: xdr.ManageOfferEffectManageOfferDeleted}}},
				Changes: pt.Changes(pt.Updated(offer(aX, 42, 100), offer(aX, 42, 90)),
					pt.Updated(pt.Account(aX, 1000, 1, th), pt.Account(aX, 1020, 1, th)),
					pt.Updated(pt.Trustline(aX, usd, 500, 1000, 1), pt.Trustline(aX, usd, 490, 1000, 1)),
					pt.Updated(pt.Account(aA, 1000, 1, th), pt.Account(aA, 980, 1, th)),
					pt.Updated(pt.Trustline(aA, usd, 0, 1000, 1), pt.Trustline(aA, usd, 10, 1000, 1)),
					pt.Created(offer(aA, 43, 80)))},
		}}, participants: []byte{aA, aX}, roles: "source=A offer=A",
			changes: []wantChange{
				{"DEBIT", "X", "amount=10 asset_code=USD balance_before=500 balance_after=490"},
				{"CREDIT", "A", "amount=10 asset_code=USD balance_before=0 balance_after=10"},
				{"DEBIT", "A", "amount=20 asset_code=XLM balance_before=1000 balance_after=980"},
				{"CREDIT", "X", "amount=20 asset_code=XLM balance_before=1000 balance_after=1020"},
				{"OFFER_CREATED", "A", "amount=80 asset_code=USD"}, // the change reader's order: by ledger key
				{"OFFER_UPDATED", "X", "amount=90 asset_code=USD"},
			}},
		{tx: pt.SynthTx{Name: "invoke_host_function with token events", Source: pt.Plain(aA), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeInvokeHostFunction, Body: xdr.InvokeHostFunctionOp{HostFunction: xdr.HostFunction{
				Type: xdr.HostFunctionTypeHostFunctionTypeInvokeContract, InvokeContract: &xdr.InvokeContractArgs{
					ContractAddress: xdr.ScAddress{Type: xdr.ScAddressTypeScAddressTypeContract, ContractId: &contract}, FunctionName: "go"}}},
				Result:  xdr.InvokeHostFunctionResult{Code: xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess, Success: &xdr.Hash{}},
				Changes: pt.Created(pt.Trustline(aT, usd, 300, 1000, 1))},
		}, Events: []xdr.ContractEvent{
			pt.SACEvent(native, pt.ScI128(1000), pt.ScSym("transfer"), pt.ScAccount(aA), pt.ScContract(contract)),
			pt.SACEvent(usd, pt.ScI128(300), pt.ScSym("mint"), pt.ScAccount(aI), pt.ScAccount(aT)),
			pt.SACEvent(usd, pt.ScI128(40), pt.ScSym("burn"), pt.ScAccount(aA)),
			{Type: xdr.ContractEventTypeContract, ContractId: &contract, Body: xdr.ContractEventBody{V: 0, V0: &xdr.ContractEventV0{
				Topics: []xdr.ScVal{pt.ScSym("transfer"), pt.ScAccount(aA), pt.ScAccount(aB), pt.ScStr("TOKEN")}, Data: pt.ScI128(5)}}},
		}}, participants: []byte{aA, aT}, roles: "source=A contract=C",
			changes: []wantChange{
				{"DEBIT", "A", "amount=1000 asset_code=XLM contract_id=SAC"},
				{"CREDIT", "C", "amount=1000 asset_code=XLM contract_id=SAC"},
				{"MINT", "T", "amount=300 asset_code=USD balance_before=0 balance_after=300 contract_id=SAC"},
				{"BURN", "A", "amount=40 asset_code=USD contract_id=SAC"},
				{"DEBIT", "A", "amount=5 contract_id=C"},
				{"CREDIT", "B", "amount=5 contract_id=C"},
				{"TRUSTLINE_CREATED", "T", "asset_code=USD amount=1000"},
				{"CONTRACT_EVENT", "A", "contract_event_type=transfer contract_id=SAC"},
				{"CONTRACT_EVENT", "A", "contract_event_type=mint contract_id=SAC"},
				{"CONTRACT_EVENT", "A", "contract_event_type=burn contract_id=SAC"},
				{"CONTRACT_EVENT", "A", "contract_event_type=transfer contract_id=C"},
			}},
		{tx: pt.SynthTx{Name: "account_merge", Source: pt.Plain(aA2), Ops: []pt.SynthOp{
			{Type: xdr.OperationTypeAccountMerge, Body: pt.Muxed(aB, 9),
				Result:  xdr.AccountMergeResult{Code: xdr.AccountMergeResultCodeAccountMergeSuccess, SourceAccountBalance: &[]xdr.Int64{500}[0]},
				Changes: pt.Changes(pt.Removed(pt.Account(aA2, 500, 1, th)), pt.Updated(pt.Account(aB, 1, 1, th), pt.Account(aB, 501, 1, th)))},
		}}, participants: []byte{aA2, aB}, roles: "source=A2 dest=B",
			changes: []wantChange{
				{"DEBIT", "A2", "amount=500 balance_before=500 balance_after=0"},
				{"CREDIT", "B", "amount=500 balance_before=1 balance_after=501"},
				{"ACCOUNT_REMOVED", "A2", ""},
			}},
	}
}

// name gives an address its test letter (C: the test contract, SAC: a Stellar Asset Contract).
func name(a string) string {
	for b, n := range names {
		if pt.Addr(b) == a {
			return n
		}
	}
	if a == strkey.MustEncode(strkey.VersionByteContract, []byte{0xcc, 31: 0}) {
		return "C"
	}
	if strkey.IsValidContractAddress(a) {
		return "SAC"
	}
	return a
}

func letters(list []string) string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = name(a)
	}
	return strings.Join(out, ",")
}

func synthRaw(t *testing.T, cases []walletCase) []byte {
	var txs []pt.SynthTx
	for _, c := range cases {
		txs = append(txs, c.tx)
	}
	return pt.SynthLedger(t, txs)
}

func TestParticipantsSynthetic(t *testing.T) {
	cases := walletCases()
	recs := pt.Run(t, NewParticipantExtractor, map[string]any{"network": "pubnet"}, synthRaw(t, cases), nil)
	if len(recs) != len(cases) {
		t.Fatalf("%d records", len(recs))
	}
	for i, c := range cases {
		r := recs[i].(ParticipantRecord)
		var want []string
		for _, b := range c.participants {
			want = append(want, pt.Addr(b))
		}
		var roles []string
		for _, kv := range [][2]any{{"source", r.SourceAccounts}, {"dest", r.DestinationAccounts}, {"signer", r.SignerAccounts},
			{"trust", r.TrustlineAccounts}, {"offer", r.OfferAccounts}, {"contract", r.ContractAccounts}} {
			if l := kv[1].([]string); len(l) > 0 {
				roles = append(roles, fmt.Sprintf("%s=%s", kv[0], letters(l)))
			}
		}
		if letters(r.Participants) != letters(sortedAddrs(want)) || strings.Join(roles, " ") != c.roles {
			t.Errorf("%s: participants %s roles %q, want %s roles %q", c.tx.Name, letters(r.Participants), strings.Join(roles, " "),
				letters(sortedAddrs(want)), c.roles)
		}
	}
}

func sortedAddrs(l []string) []string {
	out := append([]string(nil), l...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestWalletBackendSynthetic(t *testing.T) {
	cases := walletCases()
	recs := pt.Run(t, NewWalletBackend, map[string]any{"network": "pubnet"}, synthRaw(t, cases), nil)
	byTx := map[int32][]StateChangeRecord{}
	for _, r := range recs {
		s := r.(StateChangeRecord)
		byTx[s.TransactionIndex] = append(byTx[s.TransactionIndex], s)
	}
	for i, c := range cases {
		got := byTx[int32(i+1)]
		if len(got) != len(c.changes) {
			var list []string
			for _, g := range got {
				list = append(list, g.Type+" "+name(g.Account))
			}
			t.Errorf("%s: %d changes %v, want %d", c.tx.Name, len(got), list, len(c.changes))
			continue
		}
		for j, w := range c.changes {
			g := got[j]
			if g.Type != w.typ || name(g.Account) != w.account || g.ApplicationOrder != int32(j) {
				t.Errorf("%s change %d: %s %s (order %d), want %s %s", c.tx.Name, j, g.Type, name(g.Account), g.ApplicationOrder, w.typ, w.account)
				continue
			}
			cols := pt.JSONOf(t, g)
			for _, f := range strings.Fields(w.fields) {
				k, v, _ := strings.Cut(f, "=")
				gv := fmt.Sprint(cols[k])
				if s, ok := cols[k].(string); ok {
					gv = name(s)
				}
				if gv != v {
					t.Errorf("%s change %d (%s %s): %s = %v, want %s", c.tx.Name, j, w.typ, w.account, k, cols[k], v)
				}
			}
		}
	}
}
