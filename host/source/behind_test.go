package source

import "testing"

// ledgers_behind_tip is what is left to do: to the datastore's tip when following it, to
// end_ledger for a bounded run (a backfill of old ledgers is not thousands behind "the tip").
func TestBehindCountsToEndLedger(t *testing.T) {
	for _, c := range []struct {
		from, end, last, tip uint32
		want                 float64
	}{
		{from: 100, end: 0, last: 120, tip: 1000, want: 880},  // following: to the tip
		{from: 100, end: 200, last: 120, tip: 1000, want: 80}, // bounded: to end_ledger
		{from: 100, end: 200, last: 0, tip: 1000, want: 101},  // nothing emitted yet: 100..200
		{from: 100, end: 200, last: 150, tip: 160, want: 10},  // the datastore is short of end
		{from: 100, end: 200, last: 200, tip: 1000, want: 0},  // done
		{from: 100, end: 200, last: 120, tip: 0, want: 0},     // tip unknown
	} {
		s := newSourceStats(nil)
		s.span(c.from, c.end)
		s.last.Store(c.last)
		s.tip.Store(c.tip)
		if got := s.behind(); got != c.want {
			t.Errorf("from %d end %d last %d tip %d: behind %v, want %v", c.from, c.end, c.last, c.tip, got, c.want)
		}
	}
}
