package processor

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A stream of bad items logs the first few, then one a minute with the count left out.
func TestSkipLogThrottles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		s := NewSkipLog(slog.New(slog.NewTextHandler(&buf, nil)))
		for range 1000 {
			s.Warn("skipping an item")
		}
		if n := strings.Count(buf.String(), "skipping an item"); n != skipLogFirst {
			t.Fatalf("%d warnings for 1000 skipped items within a minute, want %d", n, skipLogFirst)
		}
		buf.Reset()
		time.Sleep(skipLogEvery)
		s.Warn("skipping an item")
		s.Warn("skipping an item")
		if got := buf.String(); strings.Count(got, "skipping an item") != 1 || !strings.Contains(got, "not_logged_since_previous=990") {
			t.Fatalf("a minute later: %q, want one warning counting the 990 left out", got)
		}
	})
}
