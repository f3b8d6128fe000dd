package account

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// horizonNames are Horizon's operation type names (protocols/horizon/operations.TypeNames) of
// the types on the real ledgers.
var horizonNames = map[xdr.OperationType]string{
	xdr.OperationTypePayment: "payment", xdr.OperationTypeChangeTrust: "change_trust",
	xdr.OperationTypeManageSellOffer: "manage_sell_offer", xdr.OperationTypeManageBuyOffer: "manage_buy_offer",
	xdr.OperationTypePathPaymentStrictReceive: "path_payment_strict_receive",
	xdr.OperationTypePathPaymentStrictSend:    "path_payment_strict_send",
	xdr.OperationTypeCreateClaimableBalance:   "create_claimable_balance",
	xdr.OperationTypeClaimClaimableBalance:    "claim_claimable_balance",
	xdr.OperationTypeSetTrustLineFlags:        "set_trust_line_flags", xdr.OperationTypeExtendFootprintTtl: "extend_footprint_ttl",
	xdr.OperationTypeCreateAccount: "create_account", xdr.OperationTypeAccountMerge: "account_merge",
}

// refInvolved says whether the transaction involves the account, written from the operation
// bodies independently of the processor.
func refInvolved(tx ingest.LedgerTransaction, account string) bool {
	addr := func(m xdr.MuxedAccount) string { return m.ToAccountId().Address() }
	if addr(tx.Envelope.SourceAccount()) == account || addr(tx.Envelope.FeeAccount()) == account {
		return true
	}
	for _, op := range tx.Envelope.Operations() {
		if op.SourceAccount != nil && addr(*op.SourceAccount) == account {
			return true
		}
		var other string
		switch b := op.Body; b.Type {
		case xdr.OperationTypePayment:
			other = addr(b.PaymentOp.Destination)
		case xdr.OperationTypePathPaymentStrictReceive:
			other = addr(b.PathPaymentStrictReceiveOp.Destination)
		case xdr.OperationTypePathPaymentStrictSend:
			other = addr(b.PathPaymentStrictSendOp.Destination)
		case xdr.OperationTypeCreateAccount:
			other = b.CreateAccountOp.Destination.Address()
		case xdr.OperationTypeAccountMerge:
			other = addr(*b.Destination)
		case xdr.OperationTypeAllowTrust:
			other = b.AllowTrustOp.Trustor.Address()
		case xdr.OperationTypeSetTrustLineFlags:
			other = b.SetTrustLineFlagsOp.Trustor.Address()
		case xdr.OperationTypeClawback:
			other = addr(b.ClawbackOp.From)
		}
		if other == account {
			return true
		}
	}
	return false
}

func TestAccountTransactionEveryOperation(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		lcm, txs := proctest.RefTxs(t, rl.Raw)
		var want []string
		status := map[string]bool{}
		for _, tx := range txs {
			for i := range tx.Envelope.Operations() {
				k := fmt.Sprintf("pubnet:%d:%s:%d", rl.Seq, tx.Hash.HexString(), i)
				want = append(want, k)
				status[k] = tx.Result.Successful()
			}
		}
		p := proctest.New(t, NewAccountTransaction, map[string]any{"network": "pubnet"})
		recs, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) || len(want) == 0 {
			t.Fatalf("ledger %d: %d records, the transactions have %d operations", rl.Seq, len(recs), len(want))
		}
		byKey := map[string]xdr.Operation{}
		events := map[string]int{}
		for _, tx := range txs {
			for i, op := range tx.Envelope.Operations() {
				k := fmt.Sprintf("pubnet:%d:%s:%d", rl.Seq, tx.Hash.HexString(), i)
				byKey[k] = op
				evs, err := tx.GetContractEventsForOperation(uint32(i))
				if err != nil {
					t.Fatal(err)
				}
				events[k] = len(evs)
			}
		}
		ops := map[string]int{}
		for i, r := range recs {
			g := r.(AccountTransactionRecord)
			op := byKey[want[i]]
			if g.NaturalKey() != want[i] || g.TransactionStatus != status[want[i]] || !g.Timestamp.Equal(lcm.ClosedAt()) {
				t.Fatalf("ledger %d operation %d: got %+v, want %s (successful %v)", rl.Seq, i, g, want[i], status[want[i]])
			}
			ops[g.Operation]++
			if op.Body.Type == xdr.OperationTypeInvokeHostFunction {
				if g.Type != "soroban" {
					t.Fatalf("%s: type %s", g.NaturalKey(), g.Type)
				}
				if hf := op.Body.InvokeHostFunctionOp.HostFunction; hf.Type == xdr.HostFunctionTypeHostFunctionTypeInvokeContract {
					id, _ := hf.InvokeContract.ContractAddress.String()
					if g.Operation != "invoke_contract" || *g.ContractID != id || *g.FunctionName != string(hf.InvokeContract.FunctionName) {
						t.Fatalf("%s: %+v", g.NaturalKey(), g)
					}
				}
				var evs []map[string]any
				if g.ContractEvents != nil {
					if err := json.Unmarshal(g.ContractEvents, &evs); err != nil {
						t.Fatal(err)
					}
				}
				if len(evs) != events[want[i]] {
					t.Fatalf("%s: %d contract events, the meta has %d", g.NaturalKey(), len(evs), events[want[i]])
				}
				continue
			}
			if name := horizonNames[op.Body.Type]; name == "" || g.Operation != name || g.Type != "stellar" && op.Body.Type != xdr.OperationTypeExtendFootprintTtl {
				t.Fatalf("%s: operation %q type %s for %v", g.NaturalKey(), g.Operation, g.Type, op.Body.Type)
			}
			if op.Body.Type == xdr.OperationTypePayment {
				if *g.CounterpartyID != op.Body.PaymentOp.Destination.ToAccountId().Address() || *g.AssetCode != op.Body.PaymentOp.Asset.StringCanonical() {
					t.Fatalf("%s: %+v", g.NaturalKey(), g)
				}
			}
		}
		st := p.(interface{ Stats() map[string]float64 }).Stats()
		if st["operations_found"] != float64(len(recs)) || st["transactions_found"] != float64(len(txs)) {
			t.Errorf("stats %v", st)
		}
		t.Logf("ledger %d: %d transactions, %d operations %v", rl.Seq, len(txs), len(recs), ops)
	}
}

func TestAccountTransactionFilters(t *testing.T) {
	rl := proctest.RealLedgers(t)[0]
	_, txs := proctest.RefTxs(t, rl.Raw)
	// The account: the payment destination that is in the most transactions as a destination only.
	only := map[string]int{}
	for _, tx := range txs {
		seen := map[string]bool{}
		for _, op := range tx.Envelope.Operations() {
			if op.Body.Type != xdr.OperationTypePayment {
				continue
			}
			d := op.Body.PaymentOp.Destination.ToAccountId().Address()
			if !seen[d] && d != tx.Envelope.SourceAccount().ToAccountId().Address() && (op.SourceAccount == nil || op.SourceAccount.ToAccountId().Address() != d) {
				seen[d] = true
				only[d]++
			}
		}
	}
	var cands []string
	for a := range only {
		cands = append(cands, a)
	}
	sort.Slice(cands, func(i, j int) bool {
		return only[cands[i]] > only[cands[j]] || only[cands[i]] == only[cands[j]] && cands[i] < cands[j]
	})
	account := cands[0]
	wantTx, wantOps := map[string]bool{}, 0
	for _, tx := range txs {
		if refInvolved(tx, account) {
			wantTx[tx.Hash.HexString()] = true
			wantOps += len(tx.Envelope.Operations())
		}
	}
	recs := proctest.Run(t, NewAccountTransaction, map[string]any{"network": "pubnet", "account": account}, rl.Raw, nil)
	gotTx := map[string]bool{}
	for _, r := range recs {
		gotTx[r.(AccountTransactionRecord).TransactionHash] = true
	}
	if len(recs) != wantOps || len(gotTx) != len(wantTx) || len(wantTx) < 2 || len(wantTx) == len(txs) {
		t.Fatalf("account %s: %d operations of %d transactions, want %d of %d (of %d)", account, len(recs), len(gotTx), wantOps, len(wantTx), len(txs))
	}
	for h := range wantTx {
		if !gotTx[h] {
			t.Fatalf("transaction %s involving %s missing", h, account)
		}
	}
	t.Logf("account %s: %d transactions, %d operations", account, len(gotTx), len(recs))

	year := proctest.Shared(t, rl.Raw).CloseTime().UTC().Year()
	if n := len(proctest.Run(t, NewAccountTransaction, map[string]any{"network": "pubnet", "account": account, "year": year}, rl.Raw, nil)); n != len(recs) {
		t.Fatalf("year %d: %d records, want %d", year, n, len(recs))
	}
	p := proctest.New(t, NewAccountTransaction, map[string]any{"network": "pubnet", "year": year - 1})
	if out, err := p.Process(proctest.BG, proctest.Shared(t, rl.Raw), nil); err != nil || out == nil || len(out) != 0 {
		t.Fatalf("another year: %d records, %v", len(out), err)
	}
	if st := p.(interface{ Stats() map[string]float64 }).Stats(); st["ledgers_skipped"] != 1 || st["processed_ledgers"] != 1 {
		t.Fatalf("stats %v", st)
	}
	for _, cfg := range []map[string]any{
		{"network": "pubnet", "account": "GNOPE"},
		{"network": "pubnet", "account": "CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD2KM"},
		{"network": "pubnet", "year": -1},
	} {
		if _, err := component.Construct(NewAccountTransaction, cfg, proctest.Env()); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

// On the synthetic ledger: the failed transaction's operation is there with
// transaction_status false, create_account's asset is native, the merge names its destination.
func TestAccountTransactionSynthetic(t *testing.T) {
	recs := proctest.Run(t, NewAccountTransaction, map[string]any{"network": "pubnet", "account": synthH.Address()}, synthLedger(t), nil)
	if len(recs) != 1 {
		t.Fatalf("%d records for the failed transaction's destination", len(recs))
	}
	if g := recs[0].(AccountTransactionRecord); g.TransactionStatus || g.Operation != "create_account" || *g.AssetCode != "native" ||
		*g.Amount != "100.0000000" || *g.CounterpartyID != synthH.Address() || g.AccountID != synthG.Address() {
		t.Fatalf("%+v", g)
	}
	recs = proctest.Run(t, NewAccountTransaction, map[string]any{"network": "pubnet", "account": synthE.Address()}, synthLedger(t), nil)
	if len(recs) != 7 {
		t.Fatalf("%d records for the merged account's transaction", len(recs))
	}
	if g := recs[2].(AccountTransactionRecord); g.Operation != "account_merge" || g.AccountID != synthE.Address() || *g.CounterpartyID != synthA.Address() {
		t.Fatalf("%+v", g)
	}
	if g := recs[6].(AccountTransactionRecord); g.Operation != "set_trust_line_flags" || *g.CounterpartyID != synthF.Address() || *g.AssetCode != synthUSD.StringCanonical() {
		t.Fatalf("%+v", g)
	}
}
