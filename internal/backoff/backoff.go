// Package backoff owns cdpd's one retry-delay rule: capped exponential backoff with optional
// jitter. Every retry loop (pipeline restarts in host, the control client's per-pipeline
// retries and its gRPC reconnects, alert webhook deliveries) takes its delays from a Policy,
// so the factor a package documents is the factor it uses.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff: retry n (n >= 1) waits Base*Factor^(n-1), capped at
// Max, then spread by ±Jitter (0.2 = between 80% and 120% of that delay, never above Max).
type Policy struct {
	Base   time.Duration
	Max    time.Duration
	Factor float64 // >= 1; 0 means 2
	Jitter float64 // 0 <= Jitter < 1; 0 = deterministic delays
}

// Delay is the wait before retry n (n >= 1; n < 1 counts as 1).
func (p Policy) Delay(n int) time.Duration {
	f := p.Factor
	if f < 1 {
		f = 2
	}
	n = max(n, 1)
	d := float64(p.Base) * math.Pow(f, float64(n-1))
	if p.Max > 0 && (d > float64(p.Max) || math.IsInf(d, 0) || math.IsNaN(d)) {
		d = float64(p.Max)
	}
	if p.Jitter > 0 {
		d *= 1 - p.Jitter + 2*p.Jitter*rand.Float64() //nolint:gosec // jitter, not security
	}
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	return time.Duration(d)
}
