package ledger

import (
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
)

// The buffer pool behind CopyPooled: one sync.Pool per size class, shared by every pipeline of
// the process, so a buffer released by one pipeline serves the next ledger of any other and
// buffers nobody asks for are dropped by the garbage collector (an idle pipeline holds none).
//
// Size classes are quarter steps between powers of two (5/4, 6/4, 7/4, 8/4 of the power below),
// so a buffer is at most 25% larger than the ledger it holds. Ledgers of minPooled bytes or
// fewer are cheap to allocate and are not pooled; ledgers above maxPooled are not pooled either
// (they are rare, and a pooled buffer of that size would be held for two GC cycles).
const (
	minPooled = 16 << 10
	maxPooled = 64 << 20

	minClassBits = 15 // k of the smallest pooled size n, 2^(k-1) < n <= 2^k
	maxClassBits = 26 // k of maxPooled
	numClasses   = (maxClassBits - minClassBits + 1) * 4
)

var (
	pools [numClasses]sync.Pool // of *[]byte with cap == the class's capacity

	statCopies   atomic.Int64
	statReused   atomic.Int64
	statReleased atomic.Int64

	// poison, when set, overwrites a buffer with 0xFF when its ledger is released, so a
	// component that uses Raw or View data after the release reads garbage (decode errors,
	// wrong records) in tests instead of a later ledger's bytes. On in -race builds and with
	// CDPD_LEDGER_POISON=1 in the environment.
	poison atomic.Bool
)

func init() {
	poison.Store(raceEnabled || os.Getenv("CDPD_LEDGER_POISON") == "1")
}

// classOf is the size class and buffer capacity for a ledger of n bytes; ok is false when n is
// not pooled.
func classOf(n int) (idx, capacity int, ok bool) {
	if n <= minPooled || n > maxPooled {
		return 0, 0, false
	}
	k := bits.Len(uint(n - 1)) // 2^(k-1) < n <= 2^k
	shift := k - 3
	m := (n + 1<<shift - 1) >> shift // 5..8 eighths of 2^k
	return (k-minClassBits)*4 + m - 5, m << shift, true
}

// getBuf returns a buffer of at least n bytes from the pool (reused true) or a new one; nil
// when n is not pooled.
func getBuf(n int) (buf *[]byte, reused bool) {
	idx, capacity, ok := classOf(n)
	if !ok {
		return nil, false
	}
	if v := pools[idx].Get(); v != nil {
		return v.(*[]byte), true
	}
	b := make([]byte, capacity)
	return &b, false
}

// putBuf hands a buffer back to its class (poisoned first if poisoning is on).
func putBuf(buf *[]byte) {
	b := (*buf)[:cap(*buf)]
	if poison.Load() {
		fill(b, 0xFF)
	}
	idx, capacity, ok := classOf(len(b))
	if !ok || capacity != len(b) {
		return // not one of ours: leave it to the garbage collector
	}
	*buf = b
	pools[idx].Put(buf)
}

func fill(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for i := 1; i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
}

// SetPoisoning turns the poisoning of released buffers on or off and returns the previous
// setting. A debugging aid for tests of components: with it on, data a component kept from a
// ledger after its release reads as 0xFF bytes (decode errors, wrong records) instead of quietly
// holding a later ledger's bytes. On by default in -race builds and with CDPD_LEDGER_POISON=1.
func SetPoisoning(on bool) (was bool) { return poison.Swap(on) }

// PoolStats counts the pool's work since the process started.
type PoolStats struct {
	Copies   int64 // ledgers CopyPooled put in a pooled buffer
	Reused   int64 // of those, buffers that came back from the pool (the rest were allocated)
	Released int64 // pooled ledgers whose last reference was released (buffer returned)
}

// ReadPoolStats returns the pool's counters. Copies - Released is the number of pooled ledgers
// alive (not yet released; a ledger dropped without Release is collected by the garbage
// collector and stays in that difference).
func ReadPoolStats() PoolStats {
	return PoolStats{Copies: statCopies.Load(), Reused: statReused.Load(), Released: statReleased.Load()}
}
