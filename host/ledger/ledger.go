// Package ledger owns the value a pipeline passes from its source to its processors and
// consumers: one Stellar ledger as raw LedgerCloseMeta XDR bytes, with a zero-copy view and a
// full decode that happens at most once, only when a component asks for it.
//
// The raw bytes are owned by the Ledger (sources copy the SDK's borrowed buffer before
// wrapping it); nothing may modify them. A Ledger is safe for concurrent use.
//
// Pooled ledgers. Copying a ~1.3 MB pubnet ledger into a fresh allocation per ledger was the
// largest cost of the host's fast path (BENCHMARKS.md, item 6), so sources copy with
// CopyPooled into a buffer from a process-wide pool instead. Such a ledger is reference
// counted: it starts with one reference, held by whoever created it; Retain adds references
// for further holders, and each holder calls Release once when it is done. When the last
// reference is released the buffer goes back to the pool and may hold another ledger at once:
// from then on Raw and View must not be used, and nothing derived from them (sub-slices, views,
// values read through views) may be kept. Sequence, CloseTime and Size stay valid forever, and
// so does a Decoded value obtained before the release (the SDK's decoder copies every byte
// array and string out of the input; it never aliases Raw). A pooled ledger that is dropped
// without Release is simply collected by the garbage collector.
//
// Ledgers made by New and Copy are not pooled: Retain and Release do nothing on them.
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

	// buf is the pooled buffer raw lives in (nil: not pooled); refs its reference count.
	buf  *[]byte
	refs atomic.Int32

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
// which are only valid until the next iteration) in a fresh allocation.
func Copy(borrowed []byte, decodes *atomic.Int64) (*Ledger, error) {
	return New(append([]byte(nil), borrowed...), decodes)
}

// CopyPooled is Copy into a buffer from the process-wide pool. The ledger holds one reference,
// owned by the caller, who passes it on (a source: to emit) or calls Release. Small ledgers
// (16 KiB or less) are copied into a fresh allocation and are not pooled.
func CopyPooled(borrowed []byte, decodes *atomic.Int64) (*Ledger, error) {
	bp, reused := getBuf(len(borrowed))
	if bp == nil {
		return Copy(borrowed, decodes)
	}
	raw := (*bp)[:len(borrowed)]
	copy(raw, borrowed)
	l, err := New(raw, decodes)
	if err != nil {
		putBuf(bp)
		return nil, err
	}
	l.buf = bp
	l.refs.Store(1)
	statCopies.Add(1)
	if reused {
		statReused.Add(1)
	}
	return l, nil
}

// Pooled reports whether the ledger's bytes live in a pooled buffer (reference counted).
func (l *Ledger) Pooled() bool { return l.buf != nil }

// Retain adds n references to a pooled ledger, one for each further holder that will call
// Release. It panics if the ledger was already released. No-op on unpooled ledgers.
func (l *Ledger) Retain(n int) {
	if l.buf == nil || n == 0 {
		return
	}
	if n < 0 {
		panic(fmt.Sprintf("ledger %d: Retain(%d): negative count", l.seq, n))
	}
	if after := l.refs.Add(int32(n)); after-int32(n) <= 0 { //nolint:gosec // n is a consumer count
		panic(fmt.Sprintf("ledger %d: Retain after the last Release", l.seq))
	}
}

// Release drops one reference of a pooled ledger; the last one returns its buffer to the pool.
// It panics when called more often than references were held (a double release would hand one
// buffer to two ledgers). No-op on unpooled ledgers.
func (l *Ledger) Release() {
	if l.buf == nil {
		return
	}
	switch n := l.refs.Add(-1); {
	case n > 0:
		return
	case n < 0:
		panic(fmt.Sprintf("ledger %d: Release without a reference (released twice?)", l.seq))
	}
	statReleased.Add(1)
	putBuf(l.buf)
}

// released reports whether a pooled ledger's last reference is gone.
func (l *Ledger) released() bool { return l.buf != nil && l.refs.Load() <= 0 }

// Sequence is the ledger sequence number.
func (l *Ledger) Sequence() uint32 { return l.seq }

// CloseTime is the ledger close time (UTC).
func (l *Ledger) CloseTime() time.Time { return l.closeTime }

// Raw is the LedgerCloseMeta XDR. Read only, and only while a reference is held: it panics on
// a released pooled ledger.
func (l *Ledger) Raw() []byte {
	l.mustBeLive("Raw")
	return l.raw
}

// Size is the length of the raw XDR in bytes.
func (l *Ledger) Size() int { return len(l.raw) }

// View is the zero-copy view over the raw XDR. Views derived from it alias Raw (see Raw).
func (l *Ledger) View() xdr.LedgerCloseMetaView {
	l.mustBeLive("View")
	return xdr.LedgerCloseMetaView(l.raw)
}

func (l *Ledger) mustBeLive(what string) {
	if l.released() {
		panic(fmt.Sprintf("ledger %d: %s after Release (its buffer may hold another ledger now)", l.seq, what))
	}
}

// Decoded returns the fully decoded LedgerCloseMeta. The decode happens on the first call only
// and its result is shared by every caller: treat it as read only. It does not alias Raw. On a
// released pooled ledger that was not decoded before, it returns an error.
func (l *Ledger) Decoded() (*xdr.LedgerCloseMeta, error) {
	l.once.Do(func() {
		if l.released() {
			l.err = fmt.Errorf("decoding ledger %d: the ledger was released", l.seq)
			return
		}
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
