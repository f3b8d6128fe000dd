package host

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// guard calls fn, turning a panic into an error (its stack is logged) and marking the
// component busy meanwhile.
func (r *run) guard(c *comp, what string, seq uint32, fn func() error) (err error) {
	c.busyLedger.Store(seq)
	c.busyCall.Store(what)
	c.busySince.Store(time.Now().UnixNano())
	defer c.busySince.Store(0)
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("panic in pipeline component", "component", c.name, "call", what, "ledger", seq,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in %s: %v", what, v)
		}
	}()
	return fn()
}

// call runs fn under guard in its own goroutine and stops waiting for it when ctx ends (plus a
// grace period): used for Start, Position and closing, which must not hang an Apply.
func (r *run) call(ctx context.Context, c *comp, what string, fn func() error) error {
	res := make(chan error, 1)
	go func() { res <- r.guard(c, what, 0, fn) }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(r.grace())
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		return fmt.Errorf("%s did not return after cancellation (%w): abandoned", what, ctx.Err())
	}
}

func safeConstruct[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in constructor: %v", p)
		}
	}()
	return f()
}

func safeStats(sr component.StatsReporter) (m map[string]float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Stats: %v", p)
		}
	}()
	return sr.Stats(), nil
}

func safeHealth(hr component.HealthReporter) (s string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Health: %v", p)
		}
	}()
	return hr.Health(), nil
}

func safeReader(rr component.ReaderReporter) (s component.ReaderState, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in ReaderState: %v", p)
		}
	}()
	return rr.ReaderState(), nil
}
