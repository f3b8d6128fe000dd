package contract

import (
	"encoding/hex"
	"fmt"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// sorobanOp is one InvokeHostFunction operation of a ledger, found through the ledger's view
// (ingest.LedgerTransactionViewRange pairs each transaction's envelope, result and meta by
// hash): only Soroban transactions' envelopes and results are decoded, and of their meta
// only what is asked for (the operation's ledger entry changes, its events). The decoded
// values are the walk's own; raw slices and views alias the ledger and must not be kept.
type sorobanOp struct {
	txIndex      int // 1-based, apply order
	txHash       string
	txSuccessful bool
	opIndex      int
	env          *xdr.TransactionEnvelope // shared by the operations of one transaction
	op           xdr.Operation
	fn           xdr.InvokeHostFunctionOp
	successful   bool // the operation's result is InvokeHostFunctionSuccess
	meta         xdr.TransactionMetaView
	events       [][]byte // the operation's contract events (raw xdr.ContractEvent)
}

// source is the operation's source account, or the transaction's.
func (o *sorobanOp) source() xdr.AccountId {
	if o.op.SourceAccount != nil {
		return o.op.SourceAccount.ToAccountId()
	}
	return o.env.SourceAccount().ToAccountId()
}

// txSource is the (inner) transaction's source account.
func (o *sorobanOp) txSource() xdr.AccountId { return o.env.SourceAccount().ToAccountId() }

// changesRaw is the XDR of the operation's LedgerEntryChanges, aliasing the ledger (nil for a
// transaction whose operations did not run).
func (o *sorobanOp) changesRaw() ([]byte, error) {
	var raw []byte
	err := processor.Try(func() {
		switch v := processor.Must(o.meta.V()); v {
		case 3:
			ops := o.meta.MustV3().MustOperations()
			if o.opIndex < ops.MustCount() {
				raw = ops.MustAt(o.opIndex).MustChanges().MustRaw()
			}
		case 4:
			ops := o.meta.MustV4().MustOperations()
			if o.opIndex < ops.MustCount() {
				raw = ops.MustAt(o.opIndex).MustChanges().MustRaw()
			}
		default:
			processor.Fail("transaction meta version %d carries no Soroban operation changes", v)
		}
	})
	return raw, err
}

// changes decodes the operation's ledger entry changes into the SDK's Change pairs
// (ingest.GetChangesFromLedgerEntryChanges: state+updated become one change with Pre and
// Post, ordered by ledger key, as LedgerTransaction.GetOperationChanges returns them). A
// failed transaction has none.
func (o *sorobanOp) changes() ([]ingest.Change, error) {
	raw, err := o.changesRaw()
	if err != nil || raw == nil {
		return nil, err
	}
	var chs xdr.LedgerEntryChanges
	if err := xdr.SafeUnmarshal(raw, &chs); err != nil {
		return nil, fmt.Errorf("decoding operation changes: %w", err)
	}
	return ingest.GetChangesFromLedgerEntryChanges(chs), nil
}

// walkInvokeHostFunctions calls f for every InvokeHostFunction operation of the ledger, in
// apply order. The sorobanOp is reused between calls.
func walkInvokeHostFunctions(l *ledger.Ledger, passphrase string, f func(*sorobanOp) error) error {
	txs, err := ingest.LedgerTransactionViewRange(l.View(), 0, 0, passphrase)
	if err != nil {
		return fmt.Errorf("walking transactions of ledger %d: %w", l.Sequence(), err)
	}
	var o sorobanOp
	for i := range txs {
		tx := &txs[i]
		soroban, err := isSorobanEnvelope(tx.Envelope)
		if err != nil {
			return fmt.Errorf("ledger %d transaction %d: %w", l.Sequence(), tx.ApplicationOrder, err)
		}
		if !soroban {
			continue
		}
		var env xdr.TransactionEnvelope
		if err := xdr.SafeUnmarshal(tx.Envelope, &env); err != nil {
			return fmt.Errorf("ledger %d transaction %d: decoding envelope: %w", l.Sequence(), tx.ApplicationOrder, err)
		}
		var res xdr.TransactionResult
		if err := xdr.SafeUnmarshal(tx.Result, &res); err != nil {
			return fmt.Errorf("ledger %d transaction %d: decoding result: %w", l.Sequence(), tx.ApplicationOrder, err)
		}
		opResults, _ := res.OperationResults()
		for opIndex, op := range env.Operations() {
			fn, ok := op.Body.GetInvokeHostFunctionOp()
			if !ok {
				continue
			}
			o = sorobanOp{txIndex: int(tx.ApplicationOrder), txHash: hex.EncodeToString(tx.Hash[:]), txSuccessful: tx.Successful,
				opIndex: opIndex, env: &env, op: op, fn: fn, meta: xdr.TransactionMetaView(tx.Meta)}
			if opIndex < len(opResults) {
				if r, ok := opResults[opIndex].GetTr(); ok {
					if ir, ok := r.GetInvokeHostFunctionResult(); ok {
						o.successful = ir.Code == xdr.InvokeHostFunctionResultCodeInvokeHostFunctionSuccess
					}
				}
			}
			if opIndex < len(tx.ContractEvents) {
				o.events = tx.ContractEvents[opIndex]
			}
			if err := f(&o); err != nil {
				return err
			}
		}
	}
	return nil
}

// isSorobanEnvelope reads from the envelope's view whether its (inner) transaction carries
// SorobanTransactionData (Tx.Ext v1), as LedgerTransaction.IsSorobanTx decides it.
func isSorobanEnvelope(raw []byte) (bool, error) {
	var soroban bool
	err := processor.Try(func() {
		env := xdr.TransactionEnvelopeView(raw)
		switch env.MustType() {
		case xdr.EnvelopeTypeEnvelopeTypeTx:
			soroban = env.MustV1().MustTx().MustExt().MustV() == 1
		case xdr.EnvelopeTypeEnvelopeTypeTxFeeBump:
			soroban = env.MustFeeBump().MustTx().MustInnerTx().MustV1().MustTx().MustExt().MustV() == 1
		}
	})
	if err != nil {
		return false, fmt.Errorf("reading envelope: %w", err)
	}
	return soroban, nil
}
