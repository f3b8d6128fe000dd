package file

import (
	"sync/atomic"

	"github.com/withobsrvr/cdpd/host/consumer"
)

// sinkState is what the buffering file consumers share: how far they are durable, the health
// of their last write and their metrics.
type sinkState struct {
	m       *consumer.Metrics
	durable atomic.Uint32
	lastErr atomic.Pointer[string]
}

// DurableLedger implements component.Durable: the last ledger whose records (and every
// earlier ledger's) are written.
func (s *sinkState) DurableLedger() uint32 { return s.durable.Load() }

// Health implements component.HealthReporter: the last write's error, if it failed.
func (s *sinkState) Health() string {
	if e := s.lastErr.Load(); e != nil {
		return *e
	}
	return ""
}

// wrote records the outcome of a write.
func (s *sinkState) wrote(err error) {
	if err == nil {
		s.lastErr.Store(nil)
		return
	}
	msg := "write failed: " + err.Error()
	s.lastErr.Store(&msg)
	s.m.Errors.Inc()
}
