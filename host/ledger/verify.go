package ledger

import (
	"bytes"
	"fmt"
)

// Checking reports whether the host checks the shared decoded value after every Process call
// (CheckDecoded): on in -race builds and with CDPD_LEDGER_POISON=1, the same switch as the
// poisoning of released buffers (SetPoisoning), so release builds pay nothing.
func Checking() bool { return poison.Load() }

// CheckDecoded verifies that the ledger's decoded value, if it was decoded, is still what its
// raw bytes decode to: XDR has one encoding per value, so the value must encode back to Raw
// byte for byte. A mismatch means a holder (named by who, e.g. "processor TokenTransfer of
// pipeline p") modified the value every other holder shares: the value is poisoned (every
// later Decoded call, in any pipeline, fails) and the error says who did it. It costs one
// encode of the ledger: the host calls it only when Checking. A released or undecoded ledger
// passes.
func (l *Ledger) CheckDecoded(who string) error {
	c := l.c
	if !c.done.Load() || c.err != nil || c.released() || c.spoilt.Load() != nil {
		return nil
	}
	again, err := c.decoded.MarshalBinary()
	if err == nil && bytes.Equal(again, c.raw) {
		return nil
	}
	why := fmt.Sprintf("the shared decoded value was modified by %s (it no longer encodes to the ledger's XDR); decoded values are read only", who)
	if err != nil {
		why = fmt.Sprintf("the shared decoded value was modified by %s (it no longer encodes: %v); decoded values are read only", who, err)
	}
	c.spoilt.CompareAndSwap(nil, &why)
	return fmt.Errorf("ledger %d: %s", c.seq, *c.spoilt.Load())
}
