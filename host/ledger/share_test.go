package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/test/fixture"
)

// Three pipelines hold one ledger: the decode happens once, the pipeline whose call did it
// counts it performed, the others shared, and each counts at most once however often it asks.
func TestShareDecodesOnce(t *testing.T) {
	var reader, a, b, c Decodes
	first, err := CopyPooled(big(t), &a)
	if err != nil {
		t.Fatal(err)
	}
	first.CountReaderDecodes(&reader)
	second, third := first.Share(&b), first.Share(&c)
	before := ReadPoolStats()

	if second.IsDecoded() {
		t.Fatal("decoded before anyone asked")
	}
	v2, err := second.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	if !first.IsDecoded() || !third.IsDecoded() {
		t.Fatal("the other handles do not see the decode")
	}
	for range 3 {
		v1, err := first.Decoded()
		if err != nil || v1 != v2 {
			t.Fatalf("first handle got %p, %v; want the shared value %p", v1, err, v2)
		}
	}
	if _, err := third.Decoded(); err != nil {
		t.Fatal(err)
	}
	got := [][2]int64{
		{a.Performed.Load(), a.Shared.Load()}, {b.Performed.Load(), b.Shared.Load()},
		{c.Performed.Load(), c.Shared.Load()}, {reader.Performed.Load(), reader.Shared.Load()},
	}
	want := [][2]int64{{0, 1}, {1, 0}, {0, 1}, {1, 2}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("performed/shared of a, b, c, reader = %v, want %v", got, want)
		}
	}

	// Every handle holds its own reference: the buffer goes back with the last one.
	first.Release()
	third.Release()
	if ReadPoolStats().Released != before.Released {
		t.Fatal("buffer returned while a handle still holds the ledger")
	}
	if _, err := second.View().LedgerSequence(); err != nil {
		t.Fatal(err)
	}
	second.Release()
	if got := ReadPoolStats().Released - before.Released; got != 1 {
		t.Fatalf("%d buffers returned, want 1", got)
	}
	mustPanic(t, "Share after Release", "Retain after the last Release", func() { second.Share(nil) })
}

// Pipelines decoding the same ledger at once (decode-ahead workers of several pipelines): one
// decode, every other call waits for it and shares it (run with -race).
func TestConcurrentDecodeIsShared(t *testing.T) {
	var reader Decodes
	l, err := CopyPooled(big(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.CountReaderDecodes(&reader)
	const holders = 6
	counts := make([]Decodes, holders)
	handles := make([]*Ledger, holders)
	for i := range handles {
		handles[i] = l.Share(&counts[i])
	}
	l.Release()
	var wg sync.WaitGroup
	vals := make([]*xdr.LedgerCloseMeta, holders)
	for i, h := range handles {
		wg.Go(func() {
			defer h.Release()
			v, err := h.Decoded()
			if err != nil {
				t.Error(err)
			}
			vals[i] = v
		})
	}
	wg.Wait()
	var performed, shared int64
	for i := range counts {
		performed += counts[i].Performed.Load()
		shared += counts[i].Shared.Load()
		if vals[i] != vals[0] {
			t.Fatal("holders got different decoded values")
		}
	}
	if performed != 1 || shared != holders-1 || reader.Performed.Load() != 1 || reader.Shared.Load() != holders-1 {
		t.Fatalf("performed %d shared %d (reader %d/%d), want 1 and %d", performed, shared,
			reader.Performed.Load(), reader.Shared.Load(), holders-1)
	}
}

// A holder that modifies the shared decoded value is caught by CheckDecoded, named in the
// error, and the value is poisoned for every other holder.
func TestCheckDecodedPoisonsAModifiedValue(t *testing.T) {
	l, err := CopyPooled(big(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := l.Share(nil)
	defer other.Release()
	defer l.Release()
	if err := l.CheckDecoded("nobody"); err != nil {
		t.Fatalf("an undecoded ledger failed the check: %v", err)
	}
	lcm, err := l.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckDecoded("processor Reader"); err != nil {
		t.Fatalf("an unmodified value failed the check: %v", err)
	}
	lcm.V1.LedgerHeader.Header.LedgerSeq++ // what a processor must never do
	err = l.CheckDecoded("processor Mutator of pipeline p")
	if err == nil || !strings.Contains(err.Error(), "modified by processor Mutator of pipeline p") {
		t.Fatalf("check after a modification: %v", err)
	}
	if _, err := other.Decoded(); err == nil || !strings.Contains(err.Error(), "Mutator") {
		t.Fatalf("another pipeline still gets the modified value: %v", err)
	}
	if err := other.CheckDecoded("processor Innocent"); err != nil {
		t.Fatalf("the poisoned value is blamed on a second holder: %v", err)
	}
}

// The budget: raw bytes charged by CopyCharged, the decoded estimate by the decode, both
// refunded by the last release.
func TestBudgetCharges(t *testing.T) {
	raw := big(t)
	b := NewBudget(1 << 30)
	acct := b.Open(0)
	defer acct.Close()
	if err := acct.Acquire(context.Background(), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	l, err := CopyCharged(raw, nil, acct)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Used; got != int64(len(raw)) {
		t.Fatalf("used %d after the copy, want %d", got, len(raw))
	}
	h := l.Share(nil)
	if _, err := h.Decoded(); err != nil {
		t.Fatal(err)
	}
	want := int64(len(raw)) + DecodedEstimate(len(raw))
	if got := acct.Used(); got != want {
		t.Fatalf("account holds %d after the decode, want %d", got, want)
	}
	l.Release()
	if got := b.Stats().Used; got != want {
		t.Fatalf("refunded before the last release: used %d", got)
	}
	h.Release()
	if s := b.Stats(); s.Used != 0 || s.Peak != want || s.Accounts != 1 {
		t.Fatalf("after the last release: %+v, want used 0, peak %d", s, want)
	}
}

// Back pressure: an account over its fair share waits until its ledgers are released; an
// account holding nothing always gets one ledger; Close leaves the division.
func TestBudgetFairShare(t *testing.T) {
	raw := big(t)
	n := int64(len(raw))
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := NewBudget(4 * n) // two accounts: two ledgers each
		x, y := b.Open(0), b.Open(0)
		take := func(a *Account) *Ledger {
			t.Helper()
			if err := a.Acquire(ctx, n); err != nil {
				t.Fatal(err)
			}
			l, err := CopyCharged(raw, nil, a)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		x1, x2, x3 := take(x), take(x), take(x) // alone: the whole budget is x's share
		y1 := take(y)                           // y holds nothing: always one ledger
		if got := b.Stats().Used; got != 4*n {
			t.Fatalf("used %d, want %d", got, 4*n)
		}
		var got *Ledger
		done := make(chan struct{})
		go func() { // y is within its share (2 of 4) but the budget is full
			defer close(done)
			got = take(y)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("y took a ledger beyond the budget")
		default:
		}
		x3.Release() // x: 2 of its share of 2, budget 3 of 4
		<-done
		y1.Release()
		got.Release()

		// x holds 2, y nothing: y may take one even with the budget full of x's.
		x4 := take(x)
		x5 := take(x)
		if err := y.Acquire(ctx, 10*n); err != nil {
			t.Fatalf("an empty account waited: %v", err)
		}
		// A waiting Acquire gives up with its context.
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- x.Acquire(cctx, n) }()
		synctest.Wait()
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("Acquire over the share returned without its context's error")
		}
		if w := b.Stats().Waits; w < 2 {
			t.Fatalf("waits %d, want >= 2", w)
		}
		for _, l := range []*Ledger{x1, x2, x4, x5} {
			l.Release()
		}
		x.Close()
		y.Close()
		if s := b.Stats(); s.Used != 0 || s.Accounts != 0 {
			t.Fatalf("after everything was released: %+v", s)
		}
	})
}

// An account's own cap (buffer_size, in ledgers) bounds it below its fair share.
func TestBudgetCap(t *testing.T) {
	raw := big(t)
	n := int64(len(raw))
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(0) // unlimited
		a := b.Open(2)
		var held []*Ledger
		for range 2 {
			if err := a.Acquire(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			l, err := CopyCharged(raw, nil, a)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, l)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = a.Acquire(context.Background(), n)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the account took a ledger beyond its cap")
		default:
		}
		held[0].Release()
		<-done
		held[1].Release()
		a.Close()
	})
}

func TestNilBudgetNeverWaits(t *testing.T) {
	var b *Budget
	a := b.Open(0)
	if err := a.Acquire(context.Background(), 1<<40); err != nil {
		t.Fatal(err)
	}
	l, err := CopyCharged(realLedgers(t)[fixture.Ledger58752000], nil, a)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	a.Close()
	if (b.Stats() != BudgetStats{}) {
		t.Fatal("a nil budget reports figures")
	}
}

// Derive computes a value from the decode once per ledger and key, whoever asks; another key
// is another value; a failure is shared; a wrong type is an error, not a panic.
// twoHolders are two handles of one pooled ledger, released at the test's end.
func twoHolders(t *testing.T) (*Ledger, *Ledger) {
	t.Helper()
	l, err := CopyPooled(big(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := l.Share(nil)
	t.Cleanup(func() { other.Release(); l.Release() })
	return l, other
}

func TestDeriveOnce(t *testing.T) {
	l, other := twoHolders(t)
	var calls int
	count := func(lcm *xdr.LedgerCloseMeta) (int, error) {
		calls++
		return len(lcm.TransactionEnvelopes()), nil
	}
	a, err := Derive(l, "txs", count)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Derive(other, "txs", count)
	if err != nil || a != b || calls != 1 {
		t.Fatalf("second holder got %d, %v after %d computations; want %d from one", b, err, calls, a)
	}
	if _, err := Derive(other, "txs-again", count); err != nil || calls != 2 {
		t.Fatalf("another key: %v, %d computations", err, calls)
	}
	boom := func(*xdr.LedgerCloseMeta) (int, error) { calls++; return 0, errors.New("boom") }
	for _, h := range []*Ledger{l, other} {
		if _, err := Derive(h, "failing", boom); err == nil || err.Error() != "boom" {
			t.Fatalf("failing derivation: %v", err)
		}
	}
	if calls != 3 {
		t.Fatalf("%d computations, the failure was computed twice", calls)
	}
	if _, err := Derive(l, "txs", func(*xdr.LedgerCloseMeta) (string, error) { return "", nil }); err == nil {
		t.Fatal("a derived value of another type was returned")
	}
}

// DeriveView computes once per ledger for every holder, without the full decode.
func TestDeriveViewOnceWithoutDecode(t *testing.T) {
	l, other := twoHolders(t)
	var calls int
	header := func(v xdr.LedgerCloseMetaView) (uint32, error) {
		calls++
		return v.LedgerSequence()
	}
	a, err := DeriveView(l, "seq", header)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DeriveView(other, "seq", header)
	if err != nil || a != b || a != l.Sequence() || calls != 1 {
		t.Fatalf("holders got %d and %d (%v) after %d computations; want %d from one", a, b, err, calls, l.Sequence())
	}
	if l.IsDecoded() {
		t.Fatal("DeriveView decoded the ledger")
	}
}

// A derivation that panics is every holder's error; the daemon lives on.
func TestDerivePanicIsAnError(t *testing.T) {
	l, other := twoHolders(t)
	calls := 0
	boom := func(xdr.LedgerCloseMetaView) (int, error) { calls++; panic("malformed") }
	for _, h := range []*Ledger{l, other} {
		if _, err := DeriveView(h, "panics", boom); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("a panicking derivation gave %v", err)
		}
	}
	if calls != 1 {
		t.Fatalf("%d computations", calls)
	}
}
