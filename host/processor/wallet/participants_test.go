package wallet

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// refParticipants is the test's own participant set of a transaction of the real ledgers:
// the owners of the entries the SDK's change reader reports for it (fees, transaction,
// operations, refunds), its source and fee-bump account, each operation's source, and the
// accounts the operation types of the real ledgers name (payment and path payment
// destinations, claimable balance claimants).
func refParticipants(tx ingest.LedgerTransaction) []string {
	set := map[string]bool{}
	add := func(id xdr.AccountId) { set[id.Address()] = true }
	changes, err := tx.GetChanges()
	if err != nil {
		panic(err)
	}
	changes = append(append(changes, tx.GetFeeChanges()...), tx.GetPostApplyFeeChanges()...)
	for _, c := range changes {
		e := c.Post
		if e == nil {
			e = c.Pre
		}
		switch e.Data.Type {
		case xdr.LedgerEntryTypeAccount:
			add(e.Data.Account.AccountId)
		case xdr.LedgerEntryTypeTrustline:
			add(e.Data.TrustLine.AccountId)
		case xdr.LedgerEntryTypeOffer:
			add(e.Data.Offer.SellerId)
		case xdr.LedgerEntryTypeData:
			add(e.Data.Data.AccountId)
		}
	}
	add(tx.Envelope.SourceAccount().ToAccountId())
	add(tx.Envelope.FeeAccount().ToAccountId())
	for _, op := range tx.Envelope.Operations() {
		if op.SourceAccount != nil {
			add(op.SourceAccount.ToAccountId())
		}
		switch op.Body.Type {
		case xdr.OperationTypePayment:
			add(op.Body.PaymentOp.Destination.ToAccountId())
		case xdr.OperationTypePathPaymentStrictReceive:
			add(op.Body.PathPaymentStrictReceiveOp.Destination.ToAccountId())
		case xdr.OperationTypePathPaymentStrictSend:
			add(op.Body.PathPaymentStrictSendOp.Destination.ToAccountId())
		case xdr.OperationTypeCreateClaimableBalance:
			for _, c := range op.Body.CreateClaimableBalanceOp.Claimants {
				add(c.V0.Destination)
			}
		}
	}
	var out []string
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// TestParticipantsRealLedgers compares every transaction's participants with refParticipants,
// and the destination role with the operations' destinations.
func TestParticipantsRealLedgers(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		t.Run(fmt.Sprint(rl.Seq), func(t *testing.T) {
			_, txs := proctest.RefTxs(t, rl.Raw)
			recs := proctest.Run(t, NewParticipantExtractor, map[string]any{"network": "pubnet"}, rl.Raw, nil)
			if len(recs) != len(txs) {
				t.Fatalf("%d records for %d transactions", len(recs), len(txs))
			}
			total, beyondSources := 0, 0
			for i, tx := range txs {
				r := recs[i].(ParticipantRecord)
				want := refParticipants(tx)
				if r.TransactionHash != tx.Hash.HexString() || r.Successful != tx.Result.Successful() ||
					strings.Join(r.Participants, ",") != strings.Join(want, ",") {
					t.Fatalf("tx %s (successful %v): participants\n got %v\nwant %v", tx.Hash.HexString(), tx.Result.Successful(), r.Participants, want)
				}
				var dests []string
				for _, op := range tx.Envelope.Operations() {
					switch op.Body.Type {
					case xdr.OperationTypePayment:
						dests = append(dests, op.Body.PaymentOp.Destination.ToAccountId().Address())
					case xdr.OperationTypeCreateClaimableBalance:
						for _, c := range op.Body.CreateClaimableBalanceOp.Claimants {
							dests = append(dests, c.V0.Destination.Address())
						}
					}
				}
				for _, d := range dests {
					if !contains(r.DestinationAccounts, d) {
						t.Fatalf("tx %s: destination %s not in %v", r.TransactionHash, d, r.DestinationAccounts)
					}
				}
				total += len(r.Participants)
				beyondSources += len(r.Participants) - len(r.SourceAccounts)
			}
			t.Logf("ledger %d: %d transactions, %d participants (%d beyond the sources)", rl.Seq, len(txs), total, beyondSources)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
