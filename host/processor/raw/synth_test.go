package raw

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor/proctest"
)

// synthAccount is the account the synthetic create_account operation creates.
var synthAccount = xdr.MustAddress("GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H")

// synthCreateAccount is real ledger 58752000 with one thing the real ledgers lack: the first
// operation of its first successful V1 transaction made of payments becomes a create_account
// (the same source, 5 XLM to synthAccount), with a success result and the account's creation
// in that operation's meta. The transaction's hash is recomputed so envelopes and results
// still pair. Returns the raw ledger and the transaction's apply index (0-based).
func synthCreateAccount(t testing.TB) ([]byte, int) {
	t.Helper()
	var lcm xdr.LedgerCloseMeta
	if err := xdr.SafeUnmarshal(proctest.RealLedgers(t)[0].Raw, &lcm); err != nil {
		t.Fatal(err)
	}
	_, txs := proctest.RefTxs(t, proctest.RealLedgers(t)[0].Raw)
	for i, tx := range txs {
		if !tx.Result.Successful() || tx.Envelope.Type != xdr.EnvelopeTypeEnvelopeTypeTx ||
			tx.Envelope.Operations()[0].Body.Type != xdr.OperationTypePayment || tx.UnsafeMeta.V != 3 {
			continue
		}
		env := findEnvelope(t, &lcm, tx.Result.TransactionHash)
		env.V1.Tx.Operations[0].Body = xdr.OperationBody{Type: xdr.OperationTypeCreateAccount,
			CreateAccountOp: &xdr.CreateAccountOp{Destination: synthAccount, StartingBalance: 50_000_000}}
		hash, err := network.HashTransactionInEnvelope(*env, network.PublicNetworkPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		tp := &lcm.V1.TxProcessing[i]
		tp.Result.TransactionHash = hash
		(*tp.Result.Result.Result.Results)[0].Tr = &xdr.OperationResultTr{Type: xdr.OperationTypeCreateAccount,
			CreateAccountResult: &xdr.CreateAccountResult{Code: xdr.CreateAccountResultCodeCreateAccountSuccess}}
		created := xdr.LedgerEntry{LastModifiedLedgerSeq: xdr.Uint32(lcm.LedgerSequence()), Data: xdr.LedgerEntryData{
			Type: xdr.LedgerEntryTypeAccount, Account: &xdr.AccountEntry{AccountId: synthAccount, Balance: 50_000_000}}}
		op := &tp.TxApplyProcessing.V3.Operations[0]
		op.Changes = append(op.Changes, xdr.LedgerEntryChange{Type: xdr.LedgerEntryChangeTypeLedgerEntryCreated, Created: &created})
		raw, err := lcm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return raw, i
	}
	t.Fatal("no successful V1 payment transaction in ledger 58752000")
	return nil, 0
}

// findEnvelope returns a pointer to the tx set envelope with the given hash.
func findEnvelope(t testing.TB, lcm *xdr.LedgerCloseMeta, hash xdr.Hash) *xdr.TransactionEnvelope {
	t.Helper()
	for _, ph := range lcm.V1.TxSet.V1TxSet.Phases {
		var envs [][]xdr.TransactionEnvelope
		if ph.V == 0 {
			for _, c := range *ph.V0Components {
				envs = append(envs, c.TxsMaybeDiscountedFee.Txs)
			}
		} else {
			for _, st := range ph.ParallelTxsComponent.ExecutionStages {
				for _, cl := range st {
					envs = append(envs, cl)
				}
			}
		}
		for _, list := range envs {
			for k := range list {
				if h, err := network.HashTransactionInEnvelope(list[k], network.PublicNetworkPassphrase); err == nil && h == hash {
					return &list[k]
				}
			}
		}
	}
	t.Fatalf("envelope %x not in the tx set", hash)
	return nil
}
