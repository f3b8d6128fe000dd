package account

import (
	"fmt"
	"testing"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

type refCreate struct {
	key, funder, account, balance string
}

// refCreateAccounts walks the operation bodies of the successful transactions (the SDK's
// classic transaction reader on a full decode).
func refCreateAccounts(t testing.TB, raw []byte) []refCreate {
	t.Helper()
	lcm, txs := proctest.RefTxs(t, raw)
	var out []refCreate
	for _, tx := range txs {
		if !tx.Result.Successful() {
			continue
		}
		for i, op := range tx.Envelope.Operations() {
			if op.Body.Type != xdr.OperationTypeCreateAccount {
				continue
			}
			src := tx.Envelope.SourceAccount()
			if op.SourceAccount != nil {
				src = *op.SourceAccount
			}
			out = append(out, refCreate{key: fmt.Sprintf("pubnet:%d:%s:%d", lcm.LedgerSequence(), tx.Hash.HexString(), i),
				funder: src.ToAccountId().Address(), account: op.Body.CreateAccountOp.Destination.Address(),
				balance: amount.String(op.Body.CreateAccountOp.StartingBalance)})
		}
	}
	return out
}

func checkCreateAccounts(t *testing.T, raw []byte, recs []component.Record) {
	t.Helper()
	want := refCreateAccounts(t, raw)
	if len(recs) != len(want) {
		t.Fatalf("%d create_account records, the operation bodies have %d", len(recs), len(want))
	}
	// Each one created an account: the account changes made by that operation include the
	// new account's entry.
	created := map[string]int64{}
	for _, r := range proctest.Run(t, NewAccountData, map[string]any{"network": "pubnet"}, raw, nil) {
		if a := r.(AccountRecord); a.ChangeType == "created" && a.OperationID != nil {
			created[a.AccountID] = *a.OperationID
		}
	}
	for i, r := range recs {
		g, w := r.(CreateAccountRecord), want[i]
		if g.NaturalKey() != w.key || g.Funder != w.funder || g.Account != w.account || g.StartingBalance != w.balance ||
			g.Type != "create_account" || g.Timestamp != fmt.Sprint(g.ClosedAt.Unix()) ||
			g.OperationID != processor.OperationID(g.LedgerSequence, g.TransactionIndex, g.OperationIndex) {
			t.Fatalf("create_account %d: got %+v want %+v", i, g, w)
		}
		if id, ok := created[g.Account]; !ok || id != g.OperationID {
			t.Fatalf("create_account %d: no account created by operation %d (created: %v)", i, g.OperationID, created)
		}
	}
}

func TestCreateAccountMatchesOperations(t *testing.T) {
	for _, rl := range proctest.RealLedgers(t) {
		// Neither real ledger has a create_account operation (0 == 0 here; the synthetic
		// ledger below has the positive cases).
		recs := proctest.Run(t, NewCreateAccount, map[string]any{"network": "pubnet"}, rl.Raw, nil)
		checkCreateAccounts(t, rl.Raw, recs)
		if recs == nil {
			t.Fatal("nil slice")
		}
	}
	raw := synthLedger(t)
	p := proctest.New(t, NewCreateAccount, map[string]any{"network": "pubnet"})
	l, decodes := proctest.Wrap(t, raw)
	recs, err := p.Process(proctest.BG, l, []component.Record{AccountRecord{}})
	if err != nil {
		t.Fatal(err)
	}
	if decodes.Load() != 0 {
		t.Errorf("%d full decodes, want none (view path)", decodes.Load())
	}
	checkCreateAccounts(t, raw, recs)
	if len(recs) != 2 { // the failed transaction's create_account is not one
		t.Fatalf("%d create_account records, want 2", len(recs))
	}
	second := recs[1].(CreateAccountRecord)
	if second.Funder != synthC.Address() || second.FunderMuxed == nil || (*second.FunderMuxed)[0] != 'M' || second.StartingBalance != "5.0000000" {
		t.Fatalf("muxed funder: %+v", second)
	}
	if first := proctest.JSONOf(t, recs[0]); first["funder_muxed"] != nil || first["funder"] != synthA.Address() {
		t.Fatalf("funder from the transaction source: %v", first)
	}
	if st := p.(interface{ Stats() map[string]float64 }).Stats(); st["accounts_created"] != 2 || st["processed_ledgers"] != 1 {
		t.Errorf("stats %v", st)
	}
}
