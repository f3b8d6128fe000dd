package wallet

import (
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/effects"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// TestWalletBackendRealLedgers checks WalletBackend's state changes on both real ledgers
// against counts computed independently: token rows against the SDK's token transfer events
// (one row per G or C party), offer rows against the offer entry changes of the SDK's change
// reader, trustline and sponsorship rows against StellarEffects (checked on its own against an
// independent count), contract event rows against the SDK's transaction events; and for every
// account and asset whose balance an operation changed, the token rows' amounts add up to the
// balance change the change reader reports.
func TestWalletBackendRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		t.Run(fmt.Sprint(rl.Seq), func(t *testing.T) {
			lcm, txs := proctest.RefTxs(t, rl.Raw)
			recs := proctest.Run(t, NewWalletBackend, map[string]any{"network": "pubnet"}, rl.Raw, nil)
			got := map[string]int{}
			keys := map[string]bool{}
			type flowKey struct {
				tx, account, asset string
				op                 int32
			}
			flows := map[flowKey]*big.Int{}
			bounds := map[flowKey][2]string{}
			for _, r := range recs {
				s := r.(StateChangeRecord)
				got[s.Type]++
				if keys[s.NaturalKey()] {
					t.Fatalf("duplicate key %s", s.NaturalKey())
				}
				keys[s.NaturalKey()] = true
				if s.Timestamp != lcm.ClosedAt().Unix() || s.LedgerSequence != rl.Seq || s.Account == "" {
					t.Fatalf("record %+v", s)
				}
				if s.BalanceBefore == nil {
					continue
				}
				k := flowKey{s.TransactionHash, s.Account, fmt.Sprint(*s.AssetType, deref(s.AssetCode), deref(s.AssetIssuer)), s.OperationIndex}
				if flows[k] == nil {
					flows[k] = new(big.Int)
				}
				amt, _ := new(big.Int).SetString(*s.Amount, 10)
				if s.Type == "CREDIT" || s.Type == "MINT" {
					flows[k].Add(flows[k], amt)
				} else {
					flows[k].Sub(flows[k], amt)
				}
				bounds[k] = [2]string{*s.BalanceBefore, *s.BalanceAfter}
			}
			for k, sum := range flows {
				before, _ := new(big.Int).SetString(bounds[k][0], 10)
				after, _ := new(big.Int).SetString(bounds[k][1], 10)
				if new(big.Int).Sub(after, before).Cmp(sum) != 0 {
					t.Errorf("%+v: balance %s -> %s, token rows add up to %s", k, bounds[k][0], bounds[k][1], sum)
				}
			}

			want := map[string]int{}
			evs, err := token_transfer.NewEventsProcessor(network.PublicNetworkPassphrase).EventsFromLedger(lcm)
			if err != nil {
				t.Fatal(err)
			}
			wallet := func(a string) bool { return strkey.IsValidEd25519PublicKey(a) || strkey.IsValidContractAddress(a) }
			for _, ev := range evs {
				switch e := ev.GetEvent().(type) {
				case *token_transfer.TokenTransferEvent_Transfer:
					if wallet(e.Transfer.From) {
						want["DEBIT"]++
					}
					if wallet(e.Transfer.To) {
						want["CREDIT"]++
					}
				case *token_transfer.TokenTransferEvent_Mint:
					if wallet(e.Mint.To) {
						want["MINT"]++
					}
				case *token_transfer.TokenTransferEvent_Burn:
					if wallet(e.Burn.From) {
						want["BURN"]++
					}
				case *token_transfer.TokenTransferEvent_Clawback:
					if wallet(e.Clawback.From) {
						want["CLAWBACK"]++
					}
				}
			}
			for _, tx := range txs {
				if !tx.Result.Successful() {
					continue
				}
				for i := range tx.Envelope.Operations() {
					changes, err := tx.GetOperationChanges(uint32(i))
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range changes {
						if c.Type != xdr.LedgerEntryTypeOffer {
							continue
						}
						switch {
						case c.Pre == nil:
							want["OFFER_CREATED"]++
						case c.Post == nil:
							want["OFFER_REMOVED"]++
						default:
							want["OFFER_UPDATED"]++
						}
					}
				}
				tev, err := tx.GetTransactionEvents()
				if err != nil {
					t.Fatal(err)
				}
				want["CONTRACT_EVENT"] += len(tev.TransactionEvents)
				for _, list := range tev.OperationEvents {
					want["CONTRACT_EVENT"] += len(list)
				}
			}
			for _, r := range proctest.Run(t, effects.NewStellarEffects, map[string]any{"network": "pubnet"}, rl.Raw, nil) {
				e := r.(effects.EffectRecord)
				switch {
				case strings.HasSuffix(e.TypeString, "_sponsorship_created"), strings.HasSuffix(e.TypeString, "_sponsorship_updated"),
					strings.HasSuffix(e.TypeString, "_sponsorship_removed"):
					want["SPONSORSHIP"]++
				case strings.HasPrefix(e.TypeString, "trustline_created"):
					want["TRUSTLINE_CREATED"]++
				case strings.HasPrefix(e.TypeString, "trustline_removed"):
					want["TRUSTLINE_REMOVED"]++
				case strings.HasPrefix(e.TypeString, "trustline_updated"):
					want["TRUSTLINE_UPDATED"]++
				}
			}
			for k, n := range want {
				if n == 0 {
					delete(want, k)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || len(got) < 5 {
				t.Errorf("state changes by type\n got %v\nwant %v", got, want)
			}
			t.Logf("ledger %d: %d state changes %v; %d balance flows add up", rl.Seq, len(recs), got, len(flows))
			if len(flows) == 0 {
				t.Error("no balance checked")
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestWalletBackendNoContractEvents: extract_contract_events false drops exactly the
// CONTRACT_EVENT rows; the chain's earlier records come first.
func TestWalletBackendNoContractEvents(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	all := proctest.Run(t, NewWalletBackend, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	in := []component.Record{fakeRecord{"a"}, fakeRecord{"b"}}
	some := proctest.Run(t, NewWalletBackend, map[string]any{"network": "pubnet", "extract_contract_events": false,
		"track_participants": true}, rl.Raw, in)
	events := 0
	for _, r := range all {
		if r.(StateChangeRecord).Type == "CONTRACT_EVENT" {
			events++
		}
	}
	if events == 0 || len(some) != len(all)-events+2 || some[0] != in[0] || some[1] != in[1] {
		t.Fatalf("%d records with events (%d events), %d without (and 2 forwarded)", len(all), events, len(some))
	}
	for _, r := range some[2:] {
		if r.(StateChangeRecord).Type == "CONTRACT_EVENT" {
			t.Fatal("contract event extracted")
		}
	}
}
