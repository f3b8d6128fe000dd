// Package consumertest owns what the consumer domains' tests share (host/consumer/kv, stream,
// ...): minimal ledgers to hand a consumer. Imported by test code only.
package consumertest

import (
	"testing"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/ledger"
)

// CloseTime0 is the close time of ledger 0 (Unix seconds, 2025-07-01 00:00:00 UTC); ledger
// seq closes 5*seq seconds later.
const CloseTime0 = 1751328000

// Ledger is a minimal ledger with sequence seq and close time CloseTime0+5*seq, without
// transactions.
func Ledger(tb testing.TB, seq uint32) *ledger.Ledger {
	tb.Helper()
	lcm := xdr.LedgerCloseMeta{V: 0, V0: &xdr.LedgerCloseMetaV0{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{LedgerSeq: xdr.Uint32(seq),
			ScpValue: xdr.StellarValue{CloseTime: xdr.TimePoint(CloseTime0 + int64(seq)*5)}}}}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		tb.Fatalf("marshalling test ledger %d: %v", seq, err)
	}
	l, err := ledger.New(raw, nil)
	if err != nil {
		tb.Fatalf("wrapping test ledger %d: %v", seq, err)
	}
	return l
}
