package host

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// accept records that consumer i accepted ledger l (durable up to d).
func (r *run) accept(i int, l *ledger.Ledger, d uint32) {
	r.accepted[i].Store(l.Sequence())
	r.acceptedCT[i].Store(l.CloseTime().Unix())
	r.counts[i].Add(1)
	r.durable[i].Store(d)
	cur, cnt, ct := r.accepted[0].Load(), r.counts[0].Load(), r.acceptedCT[0].Load()
	for j := 1; j < len(r.accepted); j++ {
		cur = min(cur, r.accepted[j].Load())
		cnt = min(cnt, r.counts[j].Load())
		ct = min(ct, r.acceptedCT[j].Load())
	}
	storeMax(&r.current, cur)
	r.currentCloseTime.Store(ct)
	for {
		old := r.processed.Load()
		if cnt <= old || r.processed.CompareAndSwap(old, cnt) {
			break
		}
	}
	r.notifyCheckpoint()
}

// acceptAll is accept for a pipeline without consumers.
func (r *run) acceptAll(l *ledger.Ledger) {
	storeMax(&r.current, l.Sequence())
	r.currentCloseTime.Store(l.CloseTime().Unix())
	r.processed.Add(1)
	r.notifyCheckpoint()
}

func storeMax(a *atomic.Uint32, v uint32) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// durableMin is the ledger every consumer has durably accepted in this incarnation (0: none).
func (r *run) durableMin() uint32 {
	if len(r.cons) == 0 {
		return r.current.Load()
	}
	d := r.durable[0].Load()
	for i := 1; i < len(r.durable); i++ {
		d = min(d, r.durable[i].Load())
	}
	return d
}

func (r *run) notifyCheckpoint() {
	select {
	case r.cpNotify <- struct{}{}:
	default:
	}
}

// checkpointLoop writes the checkpoint when it advanced, at most once per CheckpointInterval.
func (r *run) checkpointLoop() {
	defer close(r.cpDone)
	if r.h.cps == nil {
		<-r.cpStop
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		select {
		case <-r.cpNotify:
		case <-r.cpStop:
			return
		}
		r.saveCheckpoint()
		t.Reset(r.h.opts.CheckpointInterval)
		select {
		case <-t.C:
		case <-r.cpStop:
			return
		}
	}
}

var errNoAdvance = errors.New("checkpoint did not advance")

// saveCheckpoint writes durableMin if it changed. Only checkpointLoop and finish call it, never
// at the same time.
func (r *run) saveCheckpoint() error {
	d := r.durableMin()
	if d == 0 || d == r.checkpointed.Load() {
		return errNoAdvance
	}
	err := r.h.cps.Save(checkpoint.Checkpoint{Pipeline: r.def.Name, Ledger: d, ConfigHash: r.def.Hash, UpdatedAt: r.h.opts.Now().UTC()})
	if err != nil {
		r.log.Error("writing the checkpoint failed", "err", err)
		return err
	}
	r.checkpointed.Store(d)
	return nil
}
