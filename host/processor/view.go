package processor

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// Walking a ledger through the SDK's zero-copy views: the Must accessors panic on malformed
// input, so a walk runs under Try, which turns that (and Fail / Must) into an error.

// WalkEnvelopes calls f for every transaction envelope of the ledger's tx set, in tx-set order
// (not apply order). f may use Must accessors, Must and Fail: a failure is returned as an error.
func WalkEnvelopes(v xdr.LedgerCloseMetaView, f func(xdr.TransactionEnvelopeView)) error {
	return Try(func() {
		walkGen := func(ts xdr.GeneralizedTransactionSetView) {
			for phase := range ts.MustV1TxSet().MustPhases().MustIter() {
				switch pv := phase.MustV(); pv {
				case 0:
					for comp := range phase.MustV0Components().MustIter() {
						for env := range comp.MustTxsMaybeDiscountedFee().MustTxs().MustIter() {
							f(env)
						}
					}
				case 1:
					for stage := range phase.MustParallelTxsComponent().MustExecutionStages().MustIter() {
						for cluster := range stage.MustIter() {
							for env := range cluster.MustIter() {
								f(env)
							}
						}
					}
				default:
					Fail("unknown transaction phase %d", pv)
				}
			}
		}
		switch lv := Must(v.V()); lv {
		case 0:
			for env := range Must(v.V0()).MustTxSet().MustTxs().MustIter() {
				f(env)
			}
		case 1:
			walkGen(Must(v.V1()).MustTxSet())
		case 2:
			walkGen(Must(v.V2()).MustTxSet())
		default:
			Fail("unknown LedgerCloseMeta version %d", lv)
		}
	})
}

// walkError carries an error out of a Must-style walk (see Try).
type walkError struct{ err error }

// Fail aborts a Must-style walk with an error; Try returns it.
func Fail(format string, args ...any) { panic(walkError{fmt.Errorf(format, args...)}) }

// Must returns v or aborts a Must-style walk with err.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(walkError{err})
	}
	return v
}

// Try runs a walk that uses the views' Must accessors (which panic with *xdr.ViewError on
// malformed input), Fail and Must, and returns their failure as an error. Other panics pass.
func Try(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch e := r.(type) {
			case *xdr.ViewError:
				err = e
			case walkError:
				err = e.err
			default:
				panic(r)
			}
		}
	}()
	fn()
	return nil
}

// TxParts are the ledger's transactions read from its zero-copy view, in apply order (what the
// SDK's ingest.ExtractLedgerTxParts returns), computed once per ledger for every pipeline holding
// it (ledger.DeriveView). They alias the ledger's raw bytes: read only, and only while the ledger
// is held.
func TxParts(l *ledger.Ledger) ([]ingest.LedgerTxParts, error) {
	w, err := txs(l)
	return w.parts, err
}

// TxPartsAndEvents are TxParts and, index-aligned, their contract events (what
// ingest.EventsFromTxParts returns), from the same one walk; as TxParts, read only and valid
// while the ledger is held.
func TxPartsAndEvents(l *ledger.Ledger) ([]ingest.LedgerTxParts, []ingest.TxEvents, error) {
	w, err := txs(l)
	return w.parts, w.events, err
}

// HasEvents reports whether a transaction's events (TxPartsAndEvents) hold any: most
// transactions have none, and a processor skips them before reading anything else.
func HasEvents(e ingest.TxEvents) bool {
	if len(e.TransactionEvents) > 0 {
		return true
	}
	for _, op := range e.OperationEvents {
		if len(op) > 0 {
			return true
		}
	}
	return false
}

// txs is the ledger's walkTxs, once per ledger.
func txs(l *ledger.Ledger) (txWalk, error) {
	return ledger.DeriveView(l, "processor.walkTxs", func(v xdr.LedgerCloseMetaView) (txWalk, error) {
		w, err := walkTxs(v)
		if err != nil {
			return txWalk{}, fmt.Errorf("walking the transactions of ledger %d: %w", l.Sequence(), err)
		}
		return w, nil
	})
}
