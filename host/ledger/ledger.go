// Package ledger owns the value a pipeline passes from its source to its processors and
// consumers: one Stellar ledger as raw LedgerCloseMeta XDR bytes, with a zero-copy view and a
// full decode that happens at most once, only when a component asks for it, however many
// pipelines hold the ledger. It also owns the process-wide buffer pool behind those bytes and
// the daemon's one memory budget for ledgers in flight (Budget).
//
// The raw bytes are owned by the ledger (sources copy the SDK's borrowed buffer before wrapping
// it); nothing may modify them. A Ledger is safe for concurrent use.
//
// One ledger, many holders. A *Ledger is a handle: the bytes, the view, the decode and the
// reference count live in a value shared by every handle of the ledger (Share makes one
// handle per pipeline that a shared reader fans a ledger out to). Each handle counts its
// pipeline's decodes on its own Decodes: Performed when its Decoded call did the decode,
// Shared when it used a decode another pipeline did. Each handle counts one of the two at
// most once, so a pipeline's Performed+Shared is at most its number of ledgers.
//
// Pooled ledgers. Copying a ~1.3 MB pubnet ledger into a fresh allocation per ledger was the
// largest cost of the host's fast path (BENCHMARKS.md, item 6), so sources copy with
// CopyPooled into a buffer from a process-wide pool instead. Such a ledger is reference
// counted: it starts with one reference, held by whoever created it; Retain adds references
// for further holders of the same handle, Share makes a handle with a reference of its own,
// and each holder calls Release once when it is done. When the last reference is released the
// buffer goes back to the pool and may hold another ledger at once: from then on Raw and View
// must not be used, and nothing derived from them (sub-slices, views, values read through
// views) may be kept. Sequence, CloseTime and Size stay valid forever, and so does a Decoded
// value obtained before the release (the SDK's decoder copies every byte array and string out
// of the input; it never aliases Raw). A pooled ledger that is dropped without Release is
// simply collected by the garbage collector.
//
// The decoded value is shared read only: a processor that modified it would change what every
// other pipeline holding the ledger reads. Under -race (and CDPD_LEDGER_POISON=1) the host
// checks after each Process call that the decoded value still encodes to the raw bytes
// (CheckDecoded); a modified value is poisoned: every later Decoded call fails.
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

// Decodes counts one pipeline's full decodes: Performed are decodes its components did,
// Shared the ledgers it used decoded by another pipeline (a shared reader's ledgers). A shared
// reader keeps one too, over all its subscribers.
type Decodes struct {
	Performed atomic.Int64
	Shared    atomic.Int64
}

// Ledger is one pipeline's handle of one ledger.
type Ledger struct {
	c       *shared
	decodes *Decodes    // this holder's counters (may be nil)
	counted atomic.Bool // this handle counted its decode (performed or shared)
}

// shared is what every handle of one ledger shares.
type shared struct {
	raw       []byte
	seq       uint32
	closeTime time.Time

	// buf is the pooled buffer raw lives in (nil: not pooled); refs its reference count.
	buf  *[]byte
	refs atomic.Int32

	once    sync.Once
	decoded xdr.LedgerCloseMeta
	err     error
	done    atomic.Bool            // the decode finished (decoded or err is set)
	spoilt  atomic.Pointer[string] // why the decoded value must not be used any more
	reader  *Decodes               // the shared reader's counters (may be nil)

	derivedMu sync.Mutex
	derived   map[string]*derived // Derive's values, by key

	// The budget charge: raw bytes from creation, the decoded estimate from the decode; both
	// refunded by the last Release.
	acct    *Account
	charged atomic.Int64
}

// New wraps raw LedgerCloseMeta XDR bytes. The caller hands over ownership of raw: it must not
// be modified afterwards. Sequence and close time are read through the view (no full decode).
// decodes, if not nil, counts the holder's full decodes (a pipeline's counters).
func New(raw []byte, decodes *Decodes) (*Ledger, error) {
	c, err := wrap(raw)
	if err != nil {
		return nil, err
	}
	return &Ledger{c: c, decodes: decodes}, nil
}

func wrap(raw []byte) (*shared, error) {
	v := xdr.LedgerCloseMetaView(raw)
	seq, err := v.LedgerSequence()
	if err != nil {
		return nil, fmt.Errorf("reading ledger sequence from LedgerCloseMeta (%d bytes): %w", len(raw), err)
	}
	ct, err := v.LedgerCloseTime()
	if err != nil {
		return nil, fmt.Errorf("reading close time of ledger %d: %w", seq, err)
	}
	return &shared{raw: raw, seq: seq, closeTime: time.Unix(ct, 0).UTC()}, nil
}

// Copy wraps a copy of borrowed bytes (such as those yielded by the SDK's RawLedgers stream,
// which are only valid until the next iteration) in a fresh allocation.
func Copy(borrowed []byte, decodes *Decodes) (*Ledger, error) {
	return New(append([]byte(nil), borrowed...), decodes)
}

// CopyPooled is Copy into a buffer from the process-wide pool. The ledger holds one reference,
// owned by the caller, who passes it on (a source: to emit) or calls Release. Small ledgers
// (16 KiB or less) are copied into a fresh allocation and are not pooled.
func CopyPooled(borrowed []byte, decodes *Decodes) (*Ledger, error) {
	return CopyCharged(borrowed, decodes, nil)
}

// CopyCharged is CopyPooled that charges the ledger's bytes to acct (nil: no budget): the raw
// size now (the caller acquired it, see Account.Acquire), the estimated size of its decoded
// value when it is decoded; the last Release refunds both. Small ledgers (not pooled, see
// CopyPooled) are not charged: the garbage collector owns them.
func CopyCharged(borrowed []byte, decodes *Decodes, acct *Account) (*Ledger, error) {
	bp, reused := getBuf(len(borrowed))
	if bp == nil {
		return Copy(borrowed, decodes)
	}
	raw := (*bp)[:len(borrowed)]
	copy(raw, borrowed)
	c, err := wrap(raw)
	if err != nil {
		putBuf(bp)
		return nil, err
	}
	c.buf = bp
	c.refs.Store(1)
	if acct != nil {
		c.acct = acct
		c.charged.Store(int64(len(raw)))
		acct.charge(int64(len(raw)), true)
	}
	statCopies.Add(1)
	if reused {
		statReused.Add(1)
	}
	return &Ledger{c: c, decodes: decodes}, nil
}

// Pooled reports whether the ledger's bytes live in a pooled buffer (reference counted).
func (l *Ledger) Pooled() bool { return l.c.buf != nil }

// Share returns a handle of the same ledger for another holder (a pipeline a shared reader
// fans the ledger out to) that counts its decodes on decodes and the reader's on reader
// (either may be nil). The new handle holds one reference of its own, which its holder
// passes on or releases. It panics if the ledger was already released.
func (l *Ledger) Share(decodes *Decodes) *Ledger {
	l.retain(1)
	return &Ledger{c: l.c, decodes: decodes}
}

// CountReaderDecodes makes the ledger count, besides each holder's decodes, the decodes
// performed and shared over all its holders on reader (a shared reader's counters). Call it
// before the ledger is shared.
func (l *Ledger) CountReaderDecodes(reader *Decodes) { l.c.reader = reader }

// Retain adds n references to a pooled ledger, one for each further holder of this handle
// that will call Release. It panics if the ledger was already released. No-op on unpooled
// ledgers.
func (l *Ledger) Retain(n int) {
	if n < 0 {
		panic(fmt.Sprintf("ledger %d: Retain(%d): negative count", l.c.seq, n))
	}
	l.retain(n)
}

func (l *Ledger) retain(n int) {
	c := l.c
	if c.buf == nil || n == 0 {
		return
	}
	if after := c.refs.Add(int32(n)); after-int32(n) <= 0 { //nolint:gosec // n is a holder count
		panic(fmt.Sprintf("ledger %d: Retain after the last Release", c.seq))
	}
}

// Release drops one reference of a pooled ledger; the last one returns its buffer to the pool
// and refunds its budget charge. It panics when called more often than references were held
// (a double release would hand one buffer to two ledgers). No-op on unpooled ledgers.
func (l *Ledger) Release() {
	c := l.c
	if c.buf == nil {
		return
	}
	switch n := c.refs.Add(-1); {
	case n > 0:
		return
	case n < 0:
		panic(fmt.Sprintf("ledger %d: Release without a reference (released twice?)", c.seq))
	}
	statReleased.Add(1)
	if c.acct != nil {
		c.acct.refund(c.charged.Swap(0))
	}
	putBuf(c.buf)
}

// released reports whether a pooled ledger's last reference is gone.
func (c *shared) released() bool { return c.buf != nil && c.refs.Load() <= 0 }

// Sequence is the ledger sequence number.
func (l *Ledger) Sequence() uint32 { return l.c.seq }

// CloseTime is the ledger close time (UTC).
func (l *Ledger) CloseTime() time.Time { return l.c.closeTime }

// Raw is the LedgerCloseMeta XDR. Read only, and only while a reference is held: it panics on
// a released pooled ledger.
func (l *Ledger) Raw() []byte {
	l.mustBeLive("Raw")
	return l.c.raw
}

// Size is the length of the raw XDR in bytes.
func (l *Ledger) Size() int { return len(l.c.raw) }

// View is the zero-copy view over the raw XDR. Views derived from it alias Raw (see Raw).
func (l *Ledger) View() xdr.LedgerCloseMetaView {
	l.mustBeLive("View")
	return xdr.LedgerCloseMetaView(l.c.raw)
}

func (l *Ledger) mustBeLive(what string) {
	if l.c.released() {
		panic(fmt.Sprintf("ledger %d: %s after Release (its buffer may hold another ledger now)", l.c.seq, what))
	}
}

// IsDecoded reports whether the full decode was done (by any holder), without doing it.
func (l *Ledger) IsDecoded() bool { return l.c.done.Load() && l.c.err == nil }

// Decoded returns the fully decoded LedgerCloseMeta. The decode happens on the first call of
// any holder only and its result is shared by every caller of every pipeline: treat it as read
// only. It does not alias Raw. On a released pooled ledger that was not decoded before, it
// returns an error; so it does when the shared value was found modified (CheckDecoded).
func (l *Ledger) Decoded() (*xdr.LedgerCloseMeta, error) {
	c := l.c
	did := false
	c.once.Do(func() {
		did = true
		defer c.done.Store(true)
		if c.released() {
			c.err = fmt.Errorf("decoding ledger %d: the ledger was released", c.seq)
			return
		}
		if err := c.decoded.UnmarshalBinary(c.raw); err != nil {
			c.err = fmt.Errorf("decoding ledger %d: %w", c.seq, err)
			return
		}
		if c.acct != nil && !c.released() {
			est := DecodedEstimate(len(c.raw))
			c.charged.Add(est)
			c.acct.charge(est, false)
		}
	})
	if c.err != nil {
		return nil, c.err
	}
	if l.counted.CompareAndSwap(false, true) {
		l.count(did)
	}
	if why := c.spoilt.Load(); why != nil {
		return nil, fmt.Errorf("ledger %d: %s", c.seq, *why)
	}
	return &c.decoded, nil
}

// count records this handle's use of the decode: performed by it or shared.
func (l *Ledger) count(did bool) {
	for _, d := range []*Decodes{l.decodes, l.c.reader} {
		switch {
		case d == nil:
		case did:
			d.Performed.Add(1)
		default:
			d.Shared.Add(1)
		}
	}
}

// DecodedEstimate is what the budget charges for the decoded value of a ledger of rawSize
// bytes: the decoded LedgerCloseMeta of pubnet ledger 58752000 holds 5.8 times its 1.28 MB of
// XDR on the heap, that of 53312000 2.9 times its 372 KB (measured with runtime.MemStats).
func DecodedEstimate(rawSize int) int64 { return int64(rawSize) * 6 }
