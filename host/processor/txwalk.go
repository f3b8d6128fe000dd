package processor

import (
	"iter"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// txWalk is a ledger's transactions in apply order and, index-aligned, their contract events:
// exactly what the SDK's ingest.ExtractLedgerTxParts and ingest.EventsFromTxParts return
// (TestWalkTxsMatchesSDK compares them on the real ledgers and on random ones of every
// LedgerCloseMeta version), found in one walk of TxProcessing instead of two.
//
// Why: XDR carries no lengths for structs, so every field in front of the one wanted is sized
// by walking it. ExtractLedgerTxParts sizes each transaction's meta whole to step to the next
// transaction; EventsFromTxParts then walks the same meta again to step over its ledger entry
// changes to the events (over a quarter of ContractEvent's CPU, BENCHMARKS.md). Here the meta
// is walked once, field by field, and its extent is where its last field ends. Only the
// navigation is ours: the fields are read through the SDK's generated views, and the one rule
// (a fee-bump's inner hash comes from its result code) is the SDK's, as its doc states it.
type txWalk struct {
	parts  []ingest.LedgerTxParts
	events []ingest.TxEvents
}

// walkTxs walks the ledger's TxProcessing once. Malformed input is an error, never a panic.
func walkTxs(v xdr.LedgerCloseMetaView) (w txWalk, err error) {
	err = Try(func() {
		switch lv := Must(v.V()); lv {
		case 0:
			elements(&w, Must(Must(v.V0()).TxProcessing()), false)
		case 1:
			elements(&w, Must(Must(v.V1()).TxProcessing()), false)
		case 2:
			elements(&w, Must(Must(v.V2()).TxProcessing()), true)
		default:
			Fail("unknown LedgerCloseMeta version %d", lv)
		}
	})
	return w, err
}

// txProcessing is a TxProcessing array of any LedgerCloseMeta version: the element count is
// the array's, the elements follow its 4-byte length.
type txProcessing interface {
	~[]byte
	Count() (int, error)
}

// elements walks the TxProcessing array's elements: TransactionResultMeta {result,
// feeProcessing, txApplyProcessing}, or with v1 TransactionResultMetaV1 {ext, result,
// feeProcessing, txApplyProcessing, postTxApplyFeeProcessing}.
func elements[A txProcessing](w *txWalk, arr A, v1 bool) {
	n := Must(arr.Count())
	w.parts = make([]ingest.LedgerTxParts, 0, n)
	w.events = make([]ingest.TxEvents, 0, n)
	b := []byte(arr)[4:]
	for range n {
		off := 0
		if v1 {
			off += len(xdr.ExtensionPointView(b).MustRaw())
		}
		res := xdr.TransactionResultPairView(xdr.TransactionResultPairView(b[off:]).MustRaw())
		off += len(res)
		off += len(xdr.LedgerEntryChangesView(b[off:]).MustRaw())
		meta, events := metaAndEvents(xdr.TransactionMetaView(b[off:]))
		off += len(meta)
		if v1 {
			off += len(xdr.LedgerEntryChangesView(b[off:]).MustRaw())
		}
		part := ingest.LedgerTxParts{Result: res, Meta: meta, Hash: [32]byte(res.MustTransactionHash().MustValue())}
		r := res.MustResult().MustResult()
		switch r.MustCode() {
		case xdr.TransactionResultCodeTxFeeBumpInnerSuccess, xdr.TransactionResultCodeTxFeeBumpInnerFailed:
			part.InnerHash = [32]byte(r.MustInnerResultPair().MustTransactionHash().MustValue())
			part.FeeBump = true
		}
		w.parts = append(w.parts, part)
		w.events = append(w.events, events)
		b = b[off:]
	}
}

// metaAndEvents returns the TransactionMeta at the start of m, trimmed to its extent, and its
// contract events as ingest.EventsFromTxParts gives them (empty, not nil, where there are
// none).
func metaAndEvents(m xdr.TransactionMetaView) (xdr.TransactionMetaView, ingest.TxEvents) {
	ev := ingest.TxEvents{TransactionEvents: [][]byte{}, OperationEvents: [][][]byte{}}
	switch mv := Must(m.V()); mv {
	case 3:
		// ext, txChangesBefore, operations, txChangesAfter, sorobanMeta: located in one pass.
		f := Must(m.MustV3().Fields())
		if sm, ok := f.SorobanMeta.MustUnwrap(); ok {
			ev.OperationEvents = [][][]byte{raws(sm.MustEvents().MustIter())}
		}
		return m[:4+len(f.View)], ev
	case 4:
		// ext, txChangesBefore, operations (each: ext, changes, events), txChangesAfter,
		// sorobanMeta, events, diagnosticEvents: walked field by field, each operation once.
		b := []byte(m.MustV4())
		off := len(xdr.ExtensionPointView(b).MustRaw())
		off += len(xdr.LedgerEntryChangesView(b[off:]).MustRaw())
		nops := xdr.TransactionMetaV4OperationsView(b[off:]).MustCount()
		off += 4
		ev.OperationEvents = make([][][]byte, 0, nops)
		for range nops {
			op := Must(xdr.OperationMetaV2View(b[off:]).Fields())
			ev.OperationEvents = append(ev.OperationEvents, raws(op.Events.MustIter()))
			off += len(op.View)
		}
		off += len(xdr.LedgerEntryChangesView(b[off:]).MustRaw())
		off += len(xdr.TransactionMetaV4SorobanMetaOptView(b[off:]).MustRaw())
		events := xdr.TransactionMetaV4EventsView(xdr.TransactionMetaV4EventsView(b[off:]).MustRaw())
		ev.TransactionEvents = raws(events.MustIter())
		off += len(events)
		off += len(xdr.TransactionMetaV4DiagnosticEventsView(b[off:]).MustRaw())
		return m[:4+off], ev
	case 0, 1, 2:
		return xdr.TransactionMetaView(m.MustRaw()), ev // no contract events before V3
	default:
		Fail("unsupported TransactionMeta version %d", mv)
		return nil, ev
	}
}

// raws collects the raw bytes of an array view's elements (aliases, empty not nil).
func raws[V interface{ MustRaw() []byte }](it iter.Seq[V]) [][]byte {
	out := [][]byte{}
	for e := range it {
		out = append(out, e.MustRaw())
	}
	return out
}
