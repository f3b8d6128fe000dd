package effects

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/stellar/go-stellar-sdk/amount"
	hz "github.com/stellar/go-stellar-sdk/protocols/horizon/effects"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestStellarEffectsRealLedgers checks, operation by operation, the effects of every
// successful transaction of both real ledgers against the test's independent count (refEffects),
// and the records' fields and keys.
func TestStellarEffectsRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		t.Run(fmt.Sprint(rl.Seq), func(t *testing.T) {
			_, txs := proctest.RefTxs(t, rl.Raw)
			p := proctest.New(t, NewStellarEffects, map[string]any{"network": "pubnet"})
			l, decodes := proctest.Wrap(t, rl.Raw)
			recs, err := p.Process(proctest.BG, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			if decodes.Load() != 1 {
				t.Errorf("%d decodes, want 1", decodes.Load())
			}
			type opKey struct {
				hash string
				op   int
			}
			got := map[opKey]map[string]int{}
			keys := map[string]bool{}
			for _, r := range recs {
				e := r.(EffectRecord)
				if keys[e.NaturalKey()] {
					t.Fatalf("duplicate key %s", e.NaturalKey())
				}
				keys[e.NaturalKey()] = true
				k := opKey{e.TransactionHash, e.OperationIndex}
				if got[k] == nil {
					got[k] = map[string]int{}
				}
				got[k][e.TypeString]++
				checkRecord(t, e, rl.Seq)
			}
			byOpType, byEffect := map[string][2]int{}, map[string][2]int{}
			wantTotal := 0
			for _, tx := range txs {
				if !tx.Result.Successful() {
					continue
				}
				for i, op := range tx.Envelope.Operations() {
					want := refEffects(tx, i)
					k := opKey{tx.Hash.HexString(), i}
					if fmt.Sprint(want) != fmt.Sprint(got[k]) && !(len(want) == 0 && len(got[k]) == 0) {
						t.Errorf("tx %s op %d (%s): effects %v, independent count %v", k.hash, i, op.Body.Type, got[k], want)
					}
					delete(got, k)
					ot := op.Body.Type.String()
					c := byOpType[ot]
					for name, n := range want {
						c[1] += n
						wantTotal += n
						b := byEffect[name]
						b[1] += n
						byEffect[name] = b
					}
					byOpType[ot] = c
				}
			}
			for k, v := range got {
				t.Errorf("effects of an operation the reference has none for (failed tx?): %v %v", k, v)
			}
			opTypes := map[string][]string{}
			for _, tx := range txs {
				for _, op := range tx.Envelope.Operations() {
					opTypes[tx.Hash.HexString()] = append(opTypes[tx.Hash.HexString()], op.Body.Type.String())
				}
			}
			for _, r := range recs {
				e := r.(EffectRecord)
				ot := opTypes[e.TransactionHash][e.OperationIndex]
				c := byOpType[ot]
				c[0]++
				byOpType[ot] = c
				b := byEffect[e.TypeString]
				b[0]++
				byEffect[e.TypeString] = b
			}
			if len(recs) != wantTotal || wantTotal == 0 {
				t.Errorf("%d effects, independent count %d", len(recs), wantTotal)
			}
			t.Logf("ledger %d: %d effects; by operation type (got, independent): %v", rl.Seq, len(recs), sortedCounts(byOpType))
			t.Logf("by effect type: %v", sortedCounts(byEffect))
			st := p.(component.StatsReporter).Stats()
			if st["effects_found"] != float64(len(recs)) || st["transactions_processed"] != float64(len(txs)) {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func checkRecord(t *testing.T, e EffectRecord, seq uint32) {
	t.Helper()
	if e.LedgerSequence != seq || e.TypeString != hz.EffectTypeNames[hz.EffectType(e.Type)] ||
		e.OperationID != processor.OperationID(seq, e.TransactionIndex, e.OperationIndex) ||
		e.EffectID != fmt.Sprintf("%d-%d", e.OperationID, e.EffectIndex) || !strkey.IsValidEd25519PublicKey(e.Address) ||
		e.NaturalKey() != fmt.Sprintf("pubnet:%d:%s", seq, e.EffectID) {
		t.Fatalf("record %+v", e)
	}
	var d map[string]any
	if err := json.Unmarshal(e.Details, &d); err != nil || d == nil {
		t.Fatalf("details %s: %v", e.Details, err)
	}
	if e.AddressMuxed != nil && !strkey.IsValidMuxedAccountEd25519PublicKey(*e.AddressMuxed) {
		t.Fatalf("address_muxed %s", *e.AddressMuxed)
	}
}

func sortedCounts(m map[string][2]int) []string {
	var out []string
	for k, v := range m {
		if v[0] != v[1] {
			out = append(out, fmt.Sprintf("%s=%d!=%d", k, v[0], v[1]))
		} else {
			out = append(out, fmt.Sprintf("%s=%d", k, v[0]))
		}
	}
	sort.Strings(out)
	return out
}

// TestStellarEffectsValues checks the effects' values against the operations and their
// results on both real ledgers: payments' credits and debits (accounts, amounts, assets), the
// claimable balance ids create_claimable_balance results report, path payments' amounts from
// their results, and the pool trades' amounts from the claim atoms.
func TestStellarEffectsValues(t *testing.T) {
	checked := map[string]int{}
	for _, rl := range proctest.RealLedgers(t) {
		_, txs := proctest.RefTxs(t, rl.Raw)
		recs := proctest.Run(t, NewStellarEffects, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		byOp := map[string][]map[string]any{}
		for _, r := range recs {
			e := r.(EffectRecord)
			m := proctest.JSONOf(t, e)
			k := fmt.Sprintf("%s/%d", e.TransactionHash, e.OperationIndex)
			byOp[k] = append(byOp[k], m)
		}
		for _, tx := range txs {
			if !tx.Result.Successful() {
				continue
			}
			results, _ := tx.Result.OperationResults()
			for i, op := range tx.Envelope.Operations() {
				effs := byOp[fmt.Sprintf("%s/%d", tx.Hash.HexString(), i)]
				src := tx.Envelope.SourceAccount()
				if op.SourceAccount != nil {
					src = *op.SourceAccount
				}
				srcID := src.ToAccountId()
				detail := func(j int, key string) string { return fmt.Sprint(effs[j]["details"].(map[string]any)[key]) }
				switch op.Body.Type {
				case xdr.OperationTypePayment:
					p := op.Body.MustPaymentOp()
					dest := p.Destination.ToAccountId()
					if effs[0]["type_string"] != "account_credited" || effs[0]["address"] != dest.Address() ||
						detail(0, "amount") != amount.String(p.Amount) || detail(0, "asset_type") != assetType(p.Asset) ||
						effs[1]["type_string"] != "account_debited" || effs[1]["address"] != srcID.Address() {
						t.Fatalf("payment %s/%d: %v", tx.Hash.HexString(), i, effs)
					}
					checked["payment"]++
				case xdr.OperationTypePathPaymentStrictSend:
					res := results[i].MustTr().MustPathPaymentStrictSendResult().MustSuccess()
					if detail(0, "amount") != amount.String(res.Last.Amount) ||
						detail(1, "amount") != amount.String(op.Body.MustPathPaymentStrictSendOp().SendAmount) {
						t.Fatalf("path payment %s/%d: %v", tx.Hash.HexString(), i, effs)
					}
					checked["path_payment_strict_send"]++
				case xdr.OperationTypeCreateClaimableBalance:
					id, err := xdr.MarshalHex(*results[i].MustTr().MustCreateClaimableBalanceResult().BalanceId)
					if err != nil || effs[0]["type_string"] != "claimable_balance_created" || detail(0, "balance_id") != id {
						t.Fatalf("create claimable balance %s/%d: %v, want balance %s", tx.Hash.HexString(), i, effs, id)
					}
					checked["create_claimable_balance"]++
				case xdr.OperationTypeManageBuyOffer, xdr.OperationTypeManageSellOffer, xdr.OperationTypePathPaymentStrictReceive:
					var claims []xdr.ClaimAtom
					switch op.Body.Type {
					case xdr.OperationTypeManageBuyOffer:
						claims = results[i].MustTr().MustManageBuyOfferResult().MustSuccess().OffersClaimed
					case xdr.OperationTypeManageSellOffer:
						claims = results[i].MustTr().MustManageSellOfferResult().MustSuccess().OffersClaimed
					default:
						claims = results[i].MustTr().MustPathPaymentStrictReceiveResult().MustSuccess().Offers
					}
					j := 0
					for _, e := range effs {
						if e["type_string"] != "liquidity_pool_trade" {
							continue
						}
						for claims[j].Type != xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool {
							j++
						}
						lp := claims[j].MustLiquidityPool()
						d := e["details"].(map[string]any)
						if fmt.Sprint(d["sold"]) != fmt.Sprint(map[string]any{"asset": lp.AssetSold.StringCanonical(), "amount": amount.String(lp.AmountSold)}) {
							t.Fatalf("pool trade %v, claim %+v", d, lp)
						}
						j++
						checked["liquidity_pool_trade"]++
					}
				}
			}
		}
	}
	t.Logf("checked %v", checked)
	for _, k := range []string{"payment", "path_payment_strict_send", "create_claimable_balance", "liquidity_pool_trade"} {
		if checked[k] == 0 {
			t.Errorf("no %s checked", k)
		}
	}
}

func assetType(a xdr.Asset) string {
	var typ string
	if err := a.Extract(&typ, nil, nil); err != nil {
		return err.Error()
	}
	return typ
}
