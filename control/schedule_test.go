package control

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
)

// 500 pipelines attached at once spread over the interval instead of firing
// together.
func TestPhasesSpreadOverInterval(t *testing.T) {
	const iv, n, buckets = 10 * time.Second, 500, 10
	c := &Client{cfg: Config{HeartbeatInterval: iv}}
	var count [buckets]int
	for i := range n {
		ph := c.phaseOf(ServiceID("", fmt.Sprintf("pipeline-%d", i)))
		if ph < 0 || ph >= iv {
			t.Fatalf("phase %v outside [0, %v)", ph, iv)
		}
		count[ph*buckets/iv]++
	}
	for b, got := range count {
		// 50 expected per bucket; a uniform hash stays well inside [20, 80].
		if got < 20 || got > 80 {
			t.Fatalf("bucket %d of the interval holds %d of %d pipelines: %v", b, got, n, count)
		}
	}
	t.Logf("heartbeats per tenth of the interval: %v", count)
}

func TestNextSlotKeepsPhase(t *testing.T) {
	const iv = 10 * time.Second
	c := &Client{cfg: Config{HeartbeatInterval: iv}}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 1000 {
		now := base.Add(time.Duration(i) * 7919 * time.Millisecond / 10)
		phase := time.Duration(i*7) * time.Millisecond % iv
		next := c.nextSlot(now, phase)
		d := next.Sub(now)
		if d < iv/2 || d >= iv+iv/2 {
			t.Fatalf("now %v phase %v: next in %v, want [%v, %v)", now, phase, d, iv/2, iv+iv/2)
		}
		if got := time.Duration(next.UnixNano() % int64(iv)); got != phase {
			t.Fatalf("now %v: next slot at phase %v, want %v", now, got, phase)
		}
		// A heartbeat sent on time lands one interval later.
		if again := c.nextSlot(next.Add(3*time.Millisecond), phase); again.Sub(next) != iv {
			t.Fatalf("steady state: %v between heartbeats, want %v", again.Sub(next), iv)
		}
	}
}

// TestSlotAfterKeepsTheGrid: a heartbeat that completes late keeps the next one on its slot
// (the scale benchmark lost every other heartbeat when the next slot was counted from the
// completion time); one later than a whole interval skips to the first slot after now.
func TestSlotAfterKeepsTheGrid(t *testing.T) {
	const iv = time.Second
	c := &Client{cfg: Config{HeartbeatInterval: iv}}
	phase := 300 * time.Millisecond
	due := time.Date(2026, 1, 2, 3, 4, 5, int(phase), time.UTC) // on the grid
	for _, tc := range []struct {
		late time.Duration
		want time.Time
	}{
		{0, due.Add(iv)},
		{10 * time.Millisecond, due.Add(iv)},
		{700 * time.Millisecond, due.Add(iv)}, // more than half an interval late: still on time
		{1300 * time.Millisecond, due.Add(2 * iv)},
		{2 * iv, due.Add(3 * iv)},
	} {
		if got := c.slotAfter(due, due.Add(tc.late), phase); !got.Equal(tc.want) {
			t.Errorf("finished %v late: next at %v, want %v", tc.late, got.Sub(due), tc.want.Sub(due))
		}
	}
	// Off the grid (after a registration): the next grid point.
	reg := due.Add(450 * time.Millisecond)
	if got := c.slotAfter(reg, reg, phase); !got.Equal(due.Add(iv)) {
		t.Errorf("after a registration at +450ms: next at %v, want +1s", got.Sub(due))
	}
}

func TestBackoffIsCapped(t *testing.T) {
	c := &Client{cfg: Config{BackoffMax: 5 * time.Second}, retry: retryPolicy(5 * time.Second)}
	if d := c.backoff(1); d < 80*time.Millisecond || d > 120*time.Millisecond {
		t.Fatalf("first retry after %v, want about %v", d, backoffBase)
	}
	for n := 1; n <= 64; n++ {
		d := c.backoff(n)
		if d > c.cfg.BackoffMax {
			t.Fatalf("retry %d after %v, above the cap %v", n, d, c.cfg.BackoffMax)
		}
		if n > 10 && d < c.cfg.BackoffMax*8/10 {
			t.Fatalf("retry %d after %v, want near the cap", n, d)
		}
	}
}

func TestStatusCodeSort(t *testing.T) {
	tests := []struct {
		err      error
		notFound bool
		halt     bool
	}{
		{status.Error(codes.NotFound, "service x"), true, false},
		{status.Error(codes.Unknown, "service cdp-x not found"), true, false},
		{status.Error(codes.Internal, "Service Not Found"), true, false},
		{status.Error(codes.Unknown, "boom"), false, false},
		{status.Error(codes.Unavailable, "connection refused"), false, false},
		{status.Error(codes.DeadlineExceeded, "deadline"), false, false},
		{status.Error(codes.ResourceExhausted, "slow down"), false, false},
		{status.Error(codes.Aborted, "conflict"), false, false},
		{status.Error(codes.InvalidArgument, "metric map too large"), false, true},
		{status.Error(codes.PermissionDenied, "no"), false, true},
		{status.Error(codes.Unauthenticated, "who"), false, true},
		{status.Error(codes.Unimplemented, "not flowctl"), false, true},
		{status.Error(codes.FailedPrecondition, "x"), false, true},
		{errors.New("plain error"), false, false},
	}
	for _, tc := range tests {
		if got := contract.IsNotFound(tc.err); got != tc.notFound {
			t.Errorf("contract.IsNotFound(%v) = %v, want %v", tc.err, got, tc.notFound)
		}
		if got := isHalt(status.Code(tc.err)); got != tc.halt {
			t.Errorf("isHalt(%v) = %v, want %v", status.Code(tc.err), got, tc.halt)
		}
	}
}

// The retry delays and the reconnect backoff are the package doc's: base 100 ms, factor 1.6,
// jitter 0.2, capped at BackoffMax, both from one policy.
func TestBackoffIsTheDocumentedOne(t *testing.T) {
	p := retryPolicy(5 * time.Second)
	if p.Base != 100*time.Millisecond || p.Factor != 1.6 || p.Jitter != 0.2 || p.Max != 5*time.Second {
		t.Fatalf("retry policy %+v, want base 100ms, factor 1.6, jitter 0.2, max 5s", p)
	}
	exact := p
	exact.Jitter = 0
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 160 * time.Millisecond, 3: 256 * time.Millisecond, 20: 5 * time.Second} {
		if got := exact.Delay(n); got != want {
			t.Errorf("retry %d without jitter after %v, want %v", n, got, want)
		}
	}
	bo := reconnectBackoff(p)
	if bo.BaseDelay != p.Base || bo.Multiplier != p.Factor || bo.Jitter != p.Jitter || bo.MaxDelay != p.Max {
		t.Fatalf("reconnect backoff %+v differs from the retry policy %+v", bo, p)
	}
}
