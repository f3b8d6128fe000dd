package raw

import (
	"iter"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor"
)

// envTx is what the raw processors read of one transaction envelope through the zero-copy
// view. Byte slices alias the ledger: use them inside Process only.
type envTx struct {
	source   []byte // ed25519 key of the transaction's source (the inner one of a fee bump)
	feeBid   int64  // the envelope's fee bid (the outer fee of a fee bump)
	opCount  int
	ops      iter.Seq[xdr.OperationView]
	soroban  bool // the transaction carries SorobanTransactionData
	resource xdr.SorobanTransactionDataView
}

// readEnvelope reads env with Must accessors: call it inside processor.Try or a walk.
func readEnvelope(env xdr.TransactionEnvelopeView) envTx {
	var e envTx
	var tx xdr.TransactionView
	switch env.MustType() {
	case xdr.EnvelopeTypeEnvelopeTypeTxV0:
		v0 := env.MustV0().MustTx()
		ops := v0.MustOperations()
		e.source = v0.MustSourceAccountEd25519().MustRaw()
		e.feeBid = int64(v0.MustFee().MustValue())
		e.opCount, e.ops = ops.MustCount(), ops.MustIter()
		return e
	case xdr.EnvelopeTypeEnvelopeTypeTx:
		tx = env.MustV1().MustTx()
		e.feeBid = int64(tx.MustFee().MustValue())
	case xdr.EnvelopeTypeEnvelopeTypeTxFeeBump:
		fb := env.MustFeeBump().MustTx()
		tx = fb.MustInnerTx().MustV1().MustTx()
		e.feeBid = fb.MustFee().MustValue()
	default:
		processor.Fail("unknown envelope type %d", env.MustType())
	}
	ops := tx.MustOperations()
	e.source = accountKey(tx.MustSourceAccount())
	e.opCount, e.ops = ops.MustCount(), ops.MustIter()
	if ext := tx.MustExt(); ext.MustV() == 1 {
		e.soroban, e.resource = true, ext.MustSorobanData()
	}
	return e
}

// accountKey is the ed25519 key of a (possibly muxed) account.
func accountKey(m xdr.MuxedAccountView) []byte {
	switch t := m.MustType(); t {
	case xdr.CryptoKeyTypeKeyTypeEd25519:
		return m.MustEd25519().MustRaw()
	case xdr.CryptoKeyTypeKeyTypeMuxedEd25519:
		return m.MustMed25519().MustEd25519().MustRaw()
	default:
		processor.Fail("unknown account key type %d", t)
		return nil
	}
}

// opSource is the ed25519 key of an operation's own source account, or nil when it has none.
func opSource(op xdr.OperationView) []byte {
	if m, ok := op.MustSourceAccount().MustUnwrap(); ok {
		return accountKey(m)
	}
	return nil
}
