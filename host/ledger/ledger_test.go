package ledger

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/test/fixture"
)

// realLedgers are the SDK's real pubnet ledgers (1.28 MB and smaller), read once.
func realLedgers(t testing.TB) map[uint32][]byte {
	t.Helper()
	m, err := fixture.RealLedgers()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func big(t testing.TB) []byte { return realLedgers(t)[fixture.Ledger58752000] }

// small is a valid LedgerCloseMeta of a few hundred bytes (not pooled).
func small(t testing.TB, seq uint32) []byte {
	t.Helper()
	lcm := xdr.LedgerCloseMeta{V: 0, V0: &xdr.LedgerCloseMetaV0{}}
	lcm.V0.LedgerHeader.Header.LedgerSeq = xdr.Uint32(seq)
	lcm.V0.LedgerHeader.Header.ScpValue.CloseTime = xdr.TimePoint(1_700_000_000)
	b, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		if v == nil {
			t.Fatalf("%s did not panic", what)
		}
		if !strings.Contains(fmt.Sprint(v), want) {
			t.Fatalf("%s panicked with %q, want it to mention %q", what, v, want)
		}
	}()
	f()
}

func withPoison(t *testing.T, on bool) {
	was := SetPoisoning(on)
	t.Cleanup(func() { SetPoisoning(was) })
}

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		n, capacity int
		pooled      bool
	}{
		{0, 0, false},
		{minPooled, 0, false},
		{minPooled + 1, 20 << 10, true},
		{20 << 10, 20 << 10, true},
		{20<<10 + 1, 24 << 10, true},
		{32 << 10, 32 << 10, true},
		{32<<10 + 1, 40 << 10, true},
		{1_283_764, 1280 << 10, true}, // a pubnet ledger (1.22 MiB)
		{1 << 20, 1 << 20, true},
		{1<<20 + 1, 1280 << 10, true},
		{maxPooled, maxPooled, true},
		{maxPooled + 1, 0, false},
	} {
		idx, c, ok := classOf(tc.n)
		if ok != tc.pooled || c != tc.capacity {
			t.Errorf("classOf(%d) = cap %d pooled %v, want %d %v", tc.n, c, ok, tc.capacity, tc.pooled)
		}
		if ok && (idx < 0 || idx >= numClasses) {
			t.Errorf("classOf(%d): class %d out of range", tc.n, idx)
		}
	}
	// Every pooled size fits its class, wastes at most a quarter, and the classes are ordered.
	prevIdx, prevCap := -1, 0
	for n := minPooled + 1; n <= maxPooled; n += 1 + n/97 {
		idx, c, _ := classOf(n)
		if c < n || 4*c > 5*n {
			t.Fatalf("classOf(%d): capacity %d", n, c)
		}
		if idx < prevIdx || (idx == prevIdx) != (c == prevCap) {
			t.Fatalf("classOf(%d) = (%d, %d) after (%d, %d)", n, idx, c, prevIdx, prevCap)
		}
		prevIdx, prevCap = idx, c
	}
}

func TestRefcount(t *testing.T) {
	raw := big(t)
	var decodes Decodes
	l, err := CopyPooled(raw, &decodes)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Pooled() || l.Sequence() != fixture.Ledger58752000 || !bytes.Equal(l.Raw(), raw) || l.Size() != len(raw) {
		t.Fatalf("pooled copy: pooled %v seq %d size %d", l.Pooled(), l.Sequence(), l.Size())
	}
	if &l.Raw()[0] == &raw[0] {
		t.Fatal("CopyPooled did not copy")
	}
	ct := l.CloseTime()
	before := ReadPoolStats()

	l.Retain(2) // three holders
	l.Retain(0)
	l.Release()
	l.Release()
	if _, err := l.View().LedgerSequence(); err != nil { // the last holder still reads it
		t.Fatal(err)
	}
	if got := ReadPoolStats().Released - before.Released; got != 0 {
		t.Fatalf("released %d buffers while a reference was held", got)
	}
	l.Release()
	if got := ReadPoolStats().Released - before.Released; got != 1 {
		t.Fatalf("last Release returned %d buffers, want 1", got)
	}

	// Fields stay valid; the bytes must not be touched.
	if l.Sequence() != fixture.Ledger58752000 || !l.CloseTime().Equal(ct) || l.Size() != len(raw) {
		t.Fatal("Sequence/CloseTime/Size changed after Release")
	}
	mustPanic(t, "Raw after Release", "Raw after Release", func() { l.Raw() })
	mustPanic(t, "View after Release", "View after Release", func() { l.View() })
	if _, err := l.Decoded(); err == nil || !strings.Contains(err.Error(), "released") {
		t.Fatalf("Decoded after Release: %v", err)
	}
	if decodes.Performed.Load() != 0 {
		t.Fatal("a released ledger was decoded")
	}
	mustPanic(t, "a second last Release", "released twice", l.Release)
	mustPanic(t, "Retain after Release", "Retain after the last Release", func() { l.Retain(1) })
	mustPanic(t, "negative Retain", "negative", func() {
		m, err := CopyPooled(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		m.Retain(-1)
	})
}

func TestUnpooledLedgersIgnoreReferences(t *testing.T) {
	for name, mk := range map[string]func() (*Ledger, error){
		"New":               func() (*Ledger, error) { return New(big(t), nil) },
		"Copy":              func() (*Ledger, error) { return Copy(big(t), nil) },
		"CopyPooled, small": func() (*Ledger, error) { return CopyPooled(small(t, 7), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			l, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			before := ReadPoolStats()
			if l.Pooled() {
				t.Fatal("pooled")
			}
			l.Retain(3)
			for range 10 { // the host releases ledgers of any kind; unpooled ones do not count
				l.Release()
			}
			if _, err := l.View().LedgerSequence(); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Decoded(); err != nil {
				t.Fatal(err)
			}
			if d := ReadPoolStats(); d != before {
				t.Fatalf("pool stats moved: %+v -> %+v", before, d)
			}
		})
	}
}

func TestPoolReusesBuffers(t *testing.T) {
	raw := big(t)
	before := ReadPoolStats()
	same := 0
	var prev *byte
	for range 50 {
		l, err := CopyPooled(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.Raw(), raw) {
			t.Fatal("a reused buffer holds other bytes")
		}
		if p := &l.Raw()[0]; p == prev {
			same++
		} else {
			prev = p
		}
		l.Release()
	}
	after := ReadPoolStats()
	// sync.Pool may drop buffers (at a GC; at random under -race), so not all 49 are reused.
	if after.Copies-before.Copies != 50 || after.Released-before.Released != 50 {
		t.Fatalf("stats %+v -> %+v", before, after)
	}
	if r := after.Reused - before.Reused; r < 10 || same < 10 {
		t.Fatalf("only %d of 50 copies reused a buffer (%d the same as the previous ledger's)", r, same)
	}
	t.Logf("%d of 50 copies reused a buffer", after.Reused-before.Reused)
}

func TestReleasePoisonsTheBuffer(t *testing.T) {
	withPoison(t, true)
	l, err := CopyPooled(big(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := l.Raw() // what a component that breaks the contract would keep
	view := l.View()
	l.Release()
	for i, b := range kept[:cap(kept)] {
		if b != 0xFF {
			t.Fatalf("byte %d of a released buffer is %#x, want 0xFF", i, b)
		}
	}
	if seq, err := view.LedgerSequence(); err == nil {
		t.Fatalf("a view kept past Release still reads ledger %d", seq)
	}
	var lcm xdr.LedgerCloseMeta
	if err := lcm.UnmarshalBinary(kept); err == nil {
		t.Fatal("a poisoned buffer decodes")
	}
}

// The SDK's decoder copies bytes out of its input (xdr3 DecodeFixedOpaque reads into a fresh
// slice through an io.Reader), so a decoded ledger survives its buffer's release and reuse.
func TestDecodedDoesNotAliasTheBuffer(t *testing.T) {
	withPoison(t, true)
	m := realLedgers(t)
	raw := m[fixture.Ledger58752000]
	l, err := CopyPooled(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	lcm, err := l.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	l.Release() // poisoned
	// Reuse the buffer for other ledgers (the same size class: re-sequenced copies).
	for i := range 4 {
		other, err := fixture.Resequence(raw, 100+uint32(i), time.Unix(1_600_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		o, err := CopyPooled(other, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Release()
	}
	again, err := lcm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatal("the decoded ledger changed when its buffer was released and reused: it aliases Raw")
	}
	if got, err := l.Decoded(); err != nil || got != lcm {
		t.Fatalf("Decoded after Release of a decoded ledger: %v", err)
	}
}

// Holders on several goroutines release concurrently; exactly one returns the buffer (run
// with -race).
func TestConcurrentRelease(t *testing.T) {
	raw := big(t)
	for range 20 {
		before := ReadPoolStats()
		l, err := CopyPooled(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		const holders = 4
		l.Retain(holders - 1)
		var wg sync.WaitGroup
		for range holders {
			wg.Go(func() {
				if seq, err := l.View().LedgerSequence(); err != nil || seq != fixture.Ledger58752000 {
					t.Errorf("holder read %d, %v", seq, err)
				}
				l.Release()
			})
		}
		wg.Wait()
		if got := ReadPoolStats().Released - before.Released; got != 1 {
			t.Fatalf("%d buffers returned, want 1", got)
		}
	}
}

func TestCopyPooledBadInput(t *testing.T) {
	before := ReadPoolStats()
	bad := bytes.Repeat([]byte{0xFF}, 100_000)
	if _, err := CopyPooled(bad, nil); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := CopyPooled(nil, nil); err == nil {
		t.Fatal("empty input accepted")
	}
	if d := ReadPoolStats(); d.Copies != before.Copies {
		t.Fatalf("a failed copy counted: %+v -> %+v", before, d)
	}
}

// BenchmarkCopy compares the two ways a source copies a pubnet ledger out of the SDK's
// borrowed buffer: a fresh allocation per ledger, and a pooled buffer released after use.
//
//	go test -run '^$' -bench . -benchmem ./host/ledger
func BenchmarkCopy(b *testing.B) {
	raw := big(b)
	b.Run("Copy", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Copy(raw, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CopyPooled", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			l, err := CopyPooled(raw, nil)
			if err != nil {
				b.Fatal(err)
			}
			l.Release()
		}
	})
}
