// Package testutil owns the helpers every package's tests share: waiting for a condition
// (Eventually, EventuallyWhy) instead of sleeping for a guessed time, and a fake clock
// (Clock) to inject where code takes a Now function. It is imported by test code only.
package testutil

import (
	"testing"
	"time"
)

// pollEvery is the polling period: short enough to keep tests fast, long enough not to load
// a shared machine.
const pollEvery = 10 * time.Millisecond

// Eventually fails the test unless cond becomes true within timeout; it polls every 10 ms.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	EventuallyWhy(tb, timeout, what, func() (bool, string) { return cond(), "" })
}

// EventuallyWhy is Eventually with a condition that also says why it is not true yet; the
// last reason is in the failure message.
func EventuallyWhy(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if !time.Now().Before(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	if last == "" {
		tb.Fatalf("%s: not true within %s", what, timeout)
		return
	}
	tb.Fatalf("%s: not true within %s (last: %s)", what, timeout, last)
}
