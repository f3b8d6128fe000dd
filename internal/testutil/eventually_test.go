package testutil

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder captures Fatalf without stopping the test goroutine.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestEventuallyReturnsOnceTrue(t *testing.T) {
	n := 0
	r := &recorder{TB: t}
	Eventually(r, time.Minute, "third call", func() bool { n++; return n == 3 })
	if r.failed != "" || n != 3 {
		t.Fatalf("failed=%q after %d calls, want success after 3", r.failed, n)
	}
}

func TestEventuallyWhyReportsLastReason(t *testing.T) {
	r := &recorder{TB: t}
	EventuallyWhy(r, 0, "never", func() (bool, string) { return false, "still 7" })
	if !strings.Contains(r.failed, "still 7") || !strings.Contains(r.failed, "never") {
		t.Fatalf("failure %q does not name the condition and its last reason", r.failed)
	}
}
