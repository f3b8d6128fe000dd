package readers

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stellar/go-stellar-sdk/support/datastore"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ledgers are re-sequenced copies of the SDK's real pubnet ledger 53312000 (372 KB: pooled),
// made once per sequence.
var ledgers struct {
	mu sync.Mutex
	m  map[uint32][]byte
}

func rawLedger(t testing.TB, seq uint32) []byte {
	ledgers.mu.Lock()
	defer ledgers.mu.Unlock()
	if b, ok := ledgers.m[seq]; ok {
		return b
	}
	real, err := fixture.RealLedgers()
	if err != nil {
		t.Fatal(err)
	}
	b, err := fixture.Resequence(real[fixture.Ledger53312000], seq, time.Unix(1_700_000_000+int64(seq)*5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if ledgers.m == nil {
		ledgers.m = map[uint32][]byte{}
	}
	ledgers.m[seq] = b
	return b
}

// store is a fake datastore: ledgers first..tip exist; a stream at the tip waits for more.
type store struct {
	t     testing.TB
	first uint32

	mu      sync.Mutex
	tip     uint32
	more    chan struct{} // closed when tip grows
	streams atomic.Int32  // streams opened
	reads   atomic.Int64  // ledgers read over all streams
	polls   atomic.Int64  // tip polls
	fail    atomic.Pointer[error]
}

func newStore(t testing.TB, first, tip uint32) *store {
	return &store{t: t, first: first, tip: tip, more: make(chan struct{})}
}

func (s *store) grow(n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tip += n
	close(s.more)
	s.more = make(chan struct{})
}

func (s *store) spec() Spec {
	return Spec{
		Kind: "FS",
		DataStore: datastore.DataStoreConfig{Type: "Filesystem", Params: map[string]string{"destination_path": "/fake"},
			Schema: datastore.DataStoreSchema{LedgersPerFile: 1, FilesPerPartition: 64000}},
		Stream: s.stream,
		Tip: func(context.Context) (uint32, error) {
			s.polls.Add(1)
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.tip, nil
		},
	}
}

func (s *store) stream(ctx context.Context, from uint32) iter.Seq2[[]byte, error] {
	s.streams.Add(1)
	return func(yield func([]byte, error) bool) {
		for seq := from; ; seq++ {
			for {
				if e := s.fail.Load(); e != nil {
					yield(nil, *e)
					return
				}
				s.mu.Lock()
				tip, more := s.tip, s.more
				s.mu.Unlock()
				if seq <= tip {
					break
				}
				select {
				case <-more:
				case <-ctx.Done():
					yield(nil, ctx.Err())
					return
				}
			}
			s.reads.Add(1)
			if !yield(rawLedger(s.t, seq), nil) {
				return
			}
		}
	}
}

// take reads n ledgers from sub and checks they are consecutive from want.
func take(t *testing.T, sub *Sub, want uint32, n int) uint32 {
	t.Helper()
	for range n {
		l, err := sub.Next(context.Background())
		if err != nil {
			t.Fatalf("Next (want %d): %v", want, err)
		}
		if l.Sequence() != want {
			t.Fatalf("got ledger %d, want %d", l.Sequence(), want)
		}
		l.Release()
		want++
	}
	return want
}

func newReg(t *testing.T, opts Options) *Registry {
	reg := New(opts)
	t.Cleanup(reg.Close)
	return reg
}

// Pipelines subscribing together share one reader: every ledger read once, each gets all of
// them in order, and a decode by one is shared by the other.
func TestSubscribersShareOneReader(t *testing.T) {
	st := newStore(t, 100, 119)
	reg := newReg(t, Options{})
	copied0, reused0 := bufferCounts(t, reg)
	var da, db ledger.Decodes
	a, err := reg.Subscribe(st.spec(), 100, 119, "a", &da)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := reg.Subscribe(st.spec(), 100, 119, "b", &db)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for _, s := range []*Sub{a, b} {
		wg.Go(func() {
			for want := uint32(100); want <= 119; want++ {
				l, err := s.Next(context.Background())
				if err != nil || l.Sequence() != want {
					t.Errorf("%s: got %v, %v; want ledger %d", s.name, l, err, want)
					return
				}
				if _, err := l.Decoded(); err != nil {
					t.Error(err)
				}
				l.Release()
			}
		})
	}
	wg.Wait()
	rs := reg.Readers()
	if len(rs) != 1 || rs[0].Subscribers != 2 || rs[0].Ledgers != 20 || rs[0].Objects != 20 {
		t.Fatalf("readers %+v, want one with 2 subscribers that read 20 ledgers and objects", rs)
	}
	if st.streams.Load() != 1 || st.reads.Load() < 20 {
		t.Fatalf("%d streams read %d ledgers, want one stream", st.streams.Load(), st.reads.Load())
	}
	if p, s := da.Performed.Load()+db.Performed.Load(), da.Shared.Load()+db.Shared.Load(); p != 20 || s != 20 {
		t.Fatalf("pipelines performed %d and shared %d decodes, want 20 and 20", p, s)
	}
	if rs[0].Performed != 20 || rs[0].Shared != 20 {
		t.Fatalf("reader counted %d performed, %d shared", rs[0].Performed, rs[0].Shared)
	}
	if a.State().Reader != rs[0].ID || a.State().Mode != ModeShared || a.State().Subscribers != 2 {
		t.Fatalf("state %+v", a.State())
	}
	// One pooled copy per ledger read (the reader may have read a few ahead), and after the
	// first, buffers come back: the two pipelines released each ledger.
	copied, reused := bufferCounts(t, reg)
	if n := copied - copied0; n < 20 || n > float64(st.reads.Load()) {
		t.Fatalf("cdpd_ledger_buffers_total grew by %v for %d ledgers read", n, st.reads.Load())
	}
	if n := reused - reused0; n < 1 || n > copied-copied0 {
		t.Fatalf("cdpd_ledger_buffers_reused_total grew by %v of %v copies", n, copied-copied0)
	}
}

// bufferCounts reads cdpd_ledger_buffers_total and cdpd_ledger_buffers_reused_total from the
// registry's collector.
func bufferCounts(t *testing.T, reg *Registry) (copied, reused float64) {
	t.Helper()
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(reg)
	mfs, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "cdpd_ledger_buffers_total":
			copied = mf.GetMetric()[0].GetCounter().GetValue()
		case "cdpd_ledger_buffers_reused_total":
			reused = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return copied, reused
}

// A pipeline that starts behind reads on a reader of its own (catching up) and joins the
// shared stream when it reaches it at the tip; closing the first never restarts the stream.
func TestCatchUpAndMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t, 100, 130)
		reg := newReg(t, Options{})
		lead, err := reg.Subscribe(st.spec(), 120, 0, "lead", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer lead.Close()
		take(t, lead, 120, 11) // at the tip: the reader waits for 131
		synctest.Wait()
		first := lead.State().Reader

		late, err := reg.Subscribe(st.spec(), 100, 0, "late", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer late.Close()
		if s := late.State(); s.Mode != ModeCatchingUp || s.Reader == first {
			t.Fatalf("a subscription behind the stream: %+v, want catching up on its own reader", s)
		}
		next := take(t, late, 100, 31) // 100..130
		synctest.Wait()
		if rs := reg.Readers(); len(rs) != 1 || rs[0].Subscribers != 2 || rs[0].ID != first {
			t.Fatalf("after catching up: readers %+v, want %s shared by both", rs, first)
		}
		if s := late.State(); s.Mode != ModeShared {
			t.Fatalf("state after catching up: %+v", s)
		}
		st.grow(5)
		take(t, lead, 131, 5)
		take(t, late, next, 5)
		streams := st.streams.Load()
		lead.Close()
		st.grow(3)
		take(t, late, 136, 3)
		if st.streams.Load() != streams {
			t.Fatal("closing one subscription restarted the stream of the other")
		}
	})
}

// A subscriber that takes no ledger holds the stream for LeaveAfter at most: then it is cut
// off, the other goes on, and the stalled one continues later from its next ledger on a reader
// of its own.
func TestStalledSubscriberIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The ledgers arrive once both subscribed: a reader that had started would already be
		// past 100, and the second subscriber would read on its own.
		st := newStore(t, 100, 99)
		reg := newReg(t, Options{Window: 4, LeaveAfter: 5 * time.Second})
		fast, err := reg.Subscribe(st.spec(), 100, 199, "fast", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer fast.Close()
		stuck, err := reg.Subscribe(st.spec(), 100, 199, "stuck", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		st.grow(100)
		take(t, stuck, 100, 2)
		start := time.Now()
		take(t, fast, 100, 100) // waits on stuck's full queue, then goes on without it
		if waited := time.Since(start); waited < 5*time.Second || waited > 6*time.Second {
			t.Fatalf("the stream was held %s, want the leave timeout (5s)", waited)
		}
		rs := reg.Readers()
		if len(rs) != 1 || rs[0].Cuts != 1 || rs[0].Subscribers != 1 {
			t.Fatalf("readers %+v, want the stalled subscriber cut", rs)
		}
		take(t, stuck, 102, 98) // its queue, then a reader of its own
		if st.streams.Load() != 2 {
			t.Fatalf("%d streams, want 2 (the shared one and the cut subscriber's)", st.streams.Load())
		}
	})
}

// A restart: the only subscriber leaves, and one that continues from the reader's next ledger
// within the linger joins the same reader; after the linger without one it stops.
func TestLingerKeepsTheReaderForARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t, 100, 109)
		reg := newReg(t, Options{Linger: 30 * time.Second})
		a, err := reg.Subscribe(st.spec(), 100, 0, "p", nil)
		if err != nil {
			t.Fatal(err)
		}
		take(t, a, 100, 10)
		synctest.Wait()
		id := a.State().Reader
		a.Close()
		time.Sleep(10 * time.Second)
		b, err := reg.Subscribe(st.spec(), 110, 0, "p", nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.State().Reader != id || st.streams.Load() != 1 {
			t.Fatalf("the restarted subscription got reader %s (streams %d), want %s", b.State().Reader, st.streams.Load(), id)
		}
		st.grow(2)
		take(t, b, 110, 2)
		b.Close()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if rs := reg.Readers(); len(rs) != 0 {
			t.Fatalf("readers after the linger: %+v", rs)
		}
	})
}

// Many idle pipelines at the tip of one datastore: one reader, one tip poller.
func TestIdleSubscribersShareTheTipPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t, 100, 101)
		reg := newReg(t, Options{TipInterval: 5 * time.Second})
		var subs []*Sub
		for range 50 {
			s, err := reg.Subscribe(st.spec(), 102, 0, "idle", nil)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if n := st.polls.Load(); n < 12 || n > 14 {
			t.Fatalf("%d tip polls in 60s for 50 subscribers, want one poller (12-13)", n)
		}
		if tip, perr := subs[7].Tip(); tip != 101 || perr != "" {
			t.Fatalf("tip %d, %q", tip, perr)
		}
		if st.streams.Load() != 1 || len(reg.Readers()) != 1 {
			t.Fatalf("%d streams, %d readers", st.streams.Load(), len(reg.Readers()))
		}
		for _, s := range subs {
			s.Close()
		}
	})
}

// A reader's failure reaches every subscriber.
func TestReaderFailureReachesSubscribers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t, 100, 100)
		reg := newReg(t, Options{})
		a, _ := reg.Subscribe(st.spec(), 100, 0, "a", nil)
		b, _ := reg.Subscribe(st.spec(), 100, 0, "b", nil)
		defer a.Close()
		defer b.Close()
		take(t, a, 100, 1)
		take(t, b, 100, 1)
		boom := errors.New("object unreadable")
		st.fail.Store(&boom)
		st.grow(1)
		for _, s := range []*Sub{a, b} {
			if _, err := s.Next(context.Background()); !errors.Is(err, boom) {
				t.Fatalf("%s: %v, want the reader's error", s.name, err)
			}
		}
	})
}

// The budget holds the stream back: with a budget of about two ledgers, the reader waits
// until the subscriber releases what it holds.
func TestBudgetBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStore(t, 100, 199)
		n := int64(len(rawLedger(t, 100)))
		budget := ledger.NewBudget(2 * n)
		reg := newReg(t, Options{Budget: budget, Window: 16})
		s, err := reg.Subscribe(st.spec(), 100, 0, "p", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		synctest.Wait()
		if got := budget.Stats().Used; got > 2*n {
			t.Fatalf("%d bytes in flight with a budget of %d", got, 2*n)
		}
		var held []*ledger.Ledger
		for range 2 {
			l, err := s.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, l)
		}
		synctest.Wait()
		if st.reads.Load() > 3 {
			t.Fatalf("the reader read %d ledgers while 2 were held in a budget of 2", st.reads.Load())
		}
		for _, l := range held {
			l.Release()
		}
		take(t, s, 102, 20)
		if w := budget.Stats().Waits; w == 0 {
			t.Fatal("the reader never waited for the budget")
		}
	})
}
