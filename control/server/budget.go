package server

import (
	"container/heap"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// The history budgets (Options.HistoryMaxBytes per service, HistoryTotalBytes in all). Every
// change of a history happens under its lock through one of the functions below, which keep
// s.histBytes, the accounted bytes of every history in the map, in step.

// recordSample adds a heartbeat's sample to h (a history dropped meanwhile takes nothing),
// within the service's budget, then keeps the total within its budget.
func (s *Server) recordSample(h *history, t int64, st flowctlv1.HealthStatus, metrics map[string]string) {
	h.mu.Lock()
	if !h.dropped {
		before := h.size()
		h.add(t, st, metrics, s.opts.HistoryMaxSamples, s.opts.HistoryMaxBytes)
		s.histBytes.Add(h.size() - before)
	}
	h.mu.Unlock()
	s.enforceTotal()
}

// dropHistoryLocked forgets id's history (deleted from the database at the next flush).
// s.mu held.
func (s *Server) dropHistoryLocked(id string) {
	h := s.histories[id]
	if h == nil {
		return
	}
	delete(s.histories, id)
	h.mu.Lock()
	h.dropped = true
	s.histBytes.Add(-h.size())
	h.mu.Unlock()
	s.markDirty(id)
}

// HistoryBytes is the accounted size of every heartbeat history (at most 7/8 of
// HistoryTotalBytes once a heartbeat or a janitor pass has trimmed it).
func (s *Server) HistoryBytes() int64 { return s.histBytes.Load() }

// historyHigh is the most the histories are kept at: 7/8 of HistoryTotalBytes. The rest of
// the budget is room for the history file, which holds the histories plus the pages a flush
// writes before the ones it frees can be reused (bbolt reuses freed pages only in a later
// transaction); so the file stays within the budget without a compaction at every flush.
func (s *Server) historyHigh() int64 { return s.opts.HistoryTotalBytes / 2 }

// enforceTotal drops the oldest samples of all services, oldest first whatever the service,
// once the histories reach historyHigh, until they are at 13/16 of HistoryTotalBytes (so that
// a server at its budget does not trim at every heartbeat). One trim runs at a time; a
// heartbeat that finds one running goes on.
func (s *Server) enforceTotal() {
	budget := s.opts.HistoryTotalBytes
	if s.histBytes.Load() <= s.historyHigh() || !s.trimMu.TryLock() {
		return
	}
	defer s.trimMu.Unlock()
	target := budget / 16 * 7
	s.mu.RLock()
	q := make(oldestFirst, 0, len(s.histories))
	for _, h := range s.histories {
		q = append(q, oldest{h: h})
	}
	s.mu.RUnlock()
	live := q[:0]
	for _, o := range q {
		o.h.mu.Lock()
		if o.h.n > 0 && !o.h.dropped {
			o.t = o.h.at(0).t
			live = append(live, o)
		}
		o.h.mu.Unlock()
	}
	q = live
	heap.Init(&q)
	dropped := 0
	for s.histBytes.Load() > target && q.Len() > 0 {
		o := heap.Pop(&q).(oldest)
		h := o.h
		h.mu.Lock()
		switch {
		case h.dropped || h.n == 0:
		case h.at(0).t != o.t: // trimmed meanwhile: queue it by its oldest sample now
			o.t = h.at(0).t
			heap.Push(&q, o)
		default:
			before := h.size()
			h.evict()
			h.clearIfEmpty()
			s.histBytes.Add(h.size() - before)
			dropped++
			s.markDirty(h.id)
			if h.n > 0 {
				o.t = h.at(0).t
				heap.Push(&q, o)
			}
		}
		h.mu.Unlock()
	}
	if dropped > 0 {
		s.trimmed.Add(float64(dropped))
		s.log.Debug("heartbeat history trimmed to its total budget", "samples", dropped,
			"bytes", s.histBytes.Load(), "budget", budget)
	}
}

// oldest is a history queued by the time of its oldest sample.
type oldest struct {
	h *history
	t int64
}

type oldestFirst []oldest

func (q oldestFirst) Len() int           { return len(q) }
func (q oldestFirst) Less(i, j int) bool { return q[i].t < q[j].t }
func (q oldestFirst) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *oldestFirst) Push(x any)        { *q = append(*q, x.(oldest)) }
func (q *oldestFirst) Pop() any {
	old := *q
	o := old[len(old)-1]
	*q = old[:len(old)-1]
	return o
}
