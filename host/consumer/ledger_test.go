package consumer

import (
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/ledger"
)

// testLedger builds a minimal LedgerCloseMeta with sequence seq (no transactions).
func testLedger(t testing.TB, seq uint32) *ledger.Ledger {
	t.Helper()
	lcm := xdr.LedgerCloseMeta{V: 0, V0: &xdr.LedgerCloseMetaV0{
		LedgerHeader: xdr.LedgerHeaderHistoryEntry{Header: xdr.LedgerHeader{
			LedgerSeq: xdr.Uint32(seq),
			ScpValue:  xdr.StellarValue{CloseTime: xdr.TimePoint(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Unix() + int64(seq)*5)},
		}},
	}}
	raw, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatalf("marshalling test ledger %d: %v", seq, err)
	}
	l, err := ledger.New(raw, nil)
	if err != nil {
		t.Fatalf("wrapping test ledger %d: %v", seq, err)
	}
	if l.Sequence() != seq {
		t.Fatalf("test ledger sequence = %d, want %d", l.Sequence(), seq)
	}
	return l
}

func TestTestLedger(t *testing.T) {
	l := testLedger(t, 42)
	t.Log(l.CloseTime())
}
