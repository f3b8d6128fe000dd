package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stellar/go-stellar-sdk/support/datastore"
)

// resolveTimes turns the storage source's time keys into ledgers with the datastore's close
// times (see closeTimes), or takes the range pinned at an earlier start (pin.go):
//
//   - start_time_ago / start_time: the first ledger the datastore holds that closed at or
//     after the time. Before the datastore's oldest ledger: its oldest ledger (logged). After
//     its newest: the ledger after its newest (the first one closing at or after the time is
//     not exported yet; this may include a few ledgers closed just before it, never skip one).
//   - end_time_ago / end_time: the last ledger that closed at or before the time: the one
//     before the first ledger the datastore holds that closed after it (on a datastore with a
//     gap there, a ledger it lacks: the stream then fails at the gap instead of ending early).
//     If the datastore's newest ledger closed before the time, the end is not exported yet and
//     Start fails (a shorter range would leave ledgers of the asked period out).
//   - end_time_ago "now" (or 0): the datastore's newest ledger.
func (s *storageSource) resolveTimes(ctx context.Context, store datastore.DataStore, schema datastore.DataStoreSchema) (start, end uint32, err error) {
	p, ok, err := loadPin(s.env.StateDir, s.times.spec)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		s.env.Logger.Info("source range given by time: resolved at an earlier start", "start_ledger", p.Start,
			"end_ledger", p.End, "resolved_at", p.ResolvedAt)
		return p.Start, p.End, nil
	}
	now := time.Now
	if s.env.Now != nil {
		now = s.env.Now
	}
	at := now()
	latest, err := datastore.FindLatestLedgerSequence(ctx, store)
	if errors.Is(err, datastore.ErrNoValidLedgerFiles) {
		return 0, 0, errors.New("the datastore holds no ledgers yet")
	}
	if err != nil {
		return 0, 0, fmt.Errorf("finding the datastore's newest ledger: %w", err)
	}
	ct := newCloseTimes(store, schema)
	start, end = s.start, s.end

	if s.times.start.set {
		t := s.times.start.when(at)
		seq, closed, found, err := ct.first(ctx, t, false, latest)
		switch {
		case err != nil:
			return 0, 0, fmt.Errorf("finding the first ledger closed at or after %s: %w", t.UTC().Format(time.RFC3339), err)
		case !found:
			seq = latest + 1
			s.env.Logger.Warn("source start time is after the datastore's newest ledger: starting after it",
				"start_time", t.UTC(), "newest_ledger", latest)
		default:
			below, err := ct.heldBelow(ctx, seq)
			if err != nil {
				return 0, 0, err
			}
			if !below && time.Unix(closed, 0).After(t) {
				s.env.Logger.Warn("source start time is before the datastore's oldest ledger: starting at its oldest",
					"start_time", t.UTC(), "oldest_ledger", seq, "closed_at", time.Unix(closed, 0).UTC())
			}
		}
		start = seq
	}

	switch {
	case s.times.endNow:
		end = latest
	case s.times.end.set:
		t := s.times.end.when(at)
		seq, _, found, err := ct.first(ctx, t, true, latest)
		if err != nil {
			return 0, 0, fmt.Errorf("finding the last ledger closed at or before %s: %w", t.UTC().Format(time.RFC3339), err)
		}
		if found {
			end = seq - 1
			break
		}
		f, _, err := ct.fileAtOrBelow(ctx, latest)
		if err != nil {
			return 0, 0, err
		}
		closed, err := ct.lastClose(ctx, f)
		if err != nil {
			return 0, 0, err
		}
		if !time.Unix(closed, 0).Equal(t.Truncate(time.Second)) {
			return 0, 0, fmt.Errorf("the end time %s is after the datastore's newest ledger %d (closed %s): the end of the range is not exported yet",
				t.UTC().Format(time.RFC3339), latest, time.Unix(closed, 0).UTC().Format(time.RFC3339))
		}
		end = latest
	}

	if start < 2 {
		start = 2
	}
	if end != 0 && end < start {
		return 0, 0, fmt.Errorf("the range resolves to no ledgers: start %d, end %d", start, end)
	}
	s.env.Logger.Info("source range given by time resolved", "start_ledger", start, "end_ledger", end,
		"files_read", ct.reads)
	if err := savePin(s.env.StateDir, pinned{Spec: s.times.spec, Start: start, End: end, ResolvedAt: at.UTC()}); err != nil {
		return 0, 0, err
	}
	return start, end, nil
}
