// Package ledger owns the value a pipeline passes from its source to its processors and
// consumers: one Stellar ledger as raw LedgerCloseMeta XDR bytes, with a zero-copy view and a
// full decode that happens at most once, only when a component asks for it.
//
// The raw bytes are owned by the Ledger (sources copy the SDK's borrowed buffer before
// wrapping it); nothing may modify them. A Ledger is safe for concurrent use.
package ledger

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// Ledger is one ledger travelling through a pipeline.
type Ledger struct {
	raw       []byte
	seq       uint32
	closeTime time.Time

	once    sync.Once
	decoded xdr.LedgerCloseMeta
	err     error
	decodes *atomic.Int64
}

// New wraps raw LedgerCloseMeta XDR bytes. The caller hands over ownership of raw: it must not
// be modified afterwards. Sequence and close time are read through the view (no full decode).
// decodes, if not nil, is incremented each time a full decode happens (a pipeline's counter).
func New(raw []byte, decodes *atomic.Int64) (*Ledger, error) {
	v := xdr.LedgerCloseMetaView(raw)
	seq, err := v.LedgerSequence()
	if err != nil {
		return nil, fmt.Errorf("reading ledger sequence from LedgerCloseMeta (%d bytes): %w", len(raw), err)
	}
	ct, err := v.LedgerCloseTime()
	if err != nil {
		return nil, fmt.Errorf("reading close time of ledger %d: %w", seq, err)
	}
	return &Ledger{raw: raw, seq: seq, closeTime: time.Unix(ct, 0).UTC(), decodes: decodes}, nil
}

// Copy wraps a copy of borrowed bytes (such as those yielded by the SDK's RawLedgers stream,
// which are only valid until the next iteration).
func Copy(borrowed []byte, decodes *atomic.Int64) (*Ledger, error) {
	return New(append([]byte(nil), borrowed...), decodes)
}

// Sequence is the ledger sequence number.
func (l *Ledger) Sequence() uint32 { return l.seq }

// CloseTime is the ledger close time (UTC).
func (l *Ledger) CloseTime() time.Time { return l.closeTime }

// Raw is the LedgerCloseMeta XDR. Read only.
func (l *Ledger) Raw() []byte { return l.raw }

// Size is the length of the raw XDR in bytes.
func (l *Ledger) Size() int { return len(l.raw) }

// View is the zero-copy view over the raw XDR. Views derived from it alias Raw.
func (l *Ledger) View() xdr.LedgerCloseMetaView { return xdr.LedgerCloseMetaView(l.raw) }

// Decoded returns the fully decoded LedgerCloseMeta. The decode happens on the first call only
// and its result is shared by every caller: treat it as read only.
func (l *Ledger) Decoded() (*xdr.LedgerCloseMeta, error) {
	l.once.Do(func() {
		if l.decodes != nil {
			l.decodes.Add(1)
		}
		if err := l.decoded.UnmarshalBinary(l.raw); err != nil {
			l.err = fmt.Errorf("decoding ledger %d: %w", l.seq, err)
		}
	})
	if l.err != nil {
		return nil, l.err
	}
	return &l.decoded, nil
}
