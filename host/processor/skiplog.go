package processor

import (
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// SkipLog warns about the items a processor skips (data it cannot turn into a record) without
// flooding the log when a whole stream is bad: the first skipLogFirst warnings, then at most
// one per skipLogEvery, each saying how many were left out since the one before. The
// processor's stats count every skipped item; the log shows examples.
type SkipLog struct {
	log       *slog.Logger
	sometimes rate.Sometimes
	left      atomic.Int64 // skipped and not logged since the last warning
}

const (
	skipLogFirst = 10
	skipLogEvery = time.Minute
)

// NewSkipLog warns on log (nil: nowhere).
func NewSkipLog(log *slog.Logger) *SkipLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SkipLog{log: log, sometimes: rate.Sometimes{First: skipLogFirst, Interval: skipLogEvery}}
}

// Warn logs msg with args, or counts it when the log had its share.
func (s *SkipLog) Warn(msg string, args ...any) {
	logged := false
	s.sometimes.Do(func() {
		if n := s.left.Swap(0); n > 0 {
			args = append(args, "not_logged_since_previous", n)
		}
		s.log.Warn(msg, args...)
		logged = true
	})
	if !logged {
		s.left.Add(1)
	}
}
