package consumertest

import (
	"testing"
	"time"
)

func TestLedger(t *testing.T) {
	l := Ledger(t, 42)
	if l.Sequence() != 42 {
		t.Errorf("sequence %d, want 42", l.Sequence())
	}
	if want := time.Date(2025, 7, 1, 0, 3, 30, 0, time.UTC); !l.CloseTime().Equal(want) {
		t.Errorf("close time %s, want %s", l.CloseTime(), want)
	}
}
