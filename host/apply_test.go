package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// Changes of one pipeline submitted one after another are applied in that order, each after
// the previous one finished, even when each Submit returns before its change ran.
func TestSubmitOrdersChangesOfOnePipeline(t *testing.T) {
	l := newLab()
	var (
		mu       sync.Mutex
		launched []string
	)
	h := newTestHost(t, l, func(o *Options) {
		o.OnRunning = func(p *Pipeline) {
			mu.Lock()
			launched = append(launched, p.Definition().Hash)
			mu.Unlock()
		}
	})
	var defs []*loader.Pipeline
	var want []string
	var pending []*Applied
	for i := range 5 {
		d := def("o", comp_("MemSource", "start_ledger", first, "interval", "1ms"), nil,
			procs(comp_("Record", "delay", fmt.Sprintf("%dms", i+1))))
		defs = append(defs, d)
		want = append(want, d.Hash)
		kind := loader.Update
		if i == 0 {
			kind = loader.Add
		}
		pending = append(pending, h.Submit(context.Background(), loader.Event{Kind: kind, Pipeline: d}))
	}
	// A remove and a re-add close the sequence: applied out of order, the name would end
	// absent or with another version.
	pending = append(pending,
		h.Submit(context.Background(), loader.Event{Kind: loader.Remove, Pipeline: defs[4]}),
		h.Submit(context.Background(), loader.Event{Kind: loader.Add, Pipeline: defs[0]}))
	want = append(want, defs[0].Hash)
	for i, a := range pending {
		if errs := a.Wait(); errs[0] != nil {
			t.Fatalf("change %d: %v", i, errs[0])
		}
	}
	p, ok := h.Get("o")
	if !ok {
		t.Fatal("pipeline absent after its final Add")
	}
	if in := p.Info(); in.ConfigHash != defs[0].Hash || in.Generation != 1 {
		t.Errorf("final version: %+v", in)
	}
	// OnRunning runs on the new version's supervisor, after Apply returned: the last one may
	// come later. Each earlier one ran before its version was stopped for the next change.
	launchedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(launched)
	}
	testutil.Eventually(t, waitLong, "the last version launched", func() bool { return len(launchedNow()) >= len(want) })
	if got := launchedNow(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("versions launched in the order\n%v, want\n%v", got, want)
	}
}

// Submit reports each change's own error, in order; a batch without events is done at once.
func TestSubmitReportsEachError(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	if a := h.Submit(context.Background()); len(a.Wait()) != 0 {
		t.Error("an empty submission has errors")
	}
	good := def("good", comp_("MemSource", "start_ledger", first, "end_ledger", first), nil, procs(comp_("Record")))
	bad := def("bad", comp_("MemSource"), nil, procs(comp_("Record"))) // no start_ledger
	errs := h.Submit(context.Background(),
		loader.Event{Kind: loader.Add, Pipeline: good},
		loader.Event{Kind: loader.Add, Pipeline: bad},
		loader.Event{Kind: loader.Add}).Wait()
	if len(errs) != 3 || errs[0] != nil || errs[1] == nil || errs[2] == nil {
		t.Fatalf("errors %v, want nil, an error, an error", errs)
	}
	var le *loader.Error
	if !errors.As(errs[1], &le) || le.Pipeline != "bad" || !strings.Contains(errs[1].Error(), "start_ledger is required") {
		t.Errorf("error of the bad pipeline: %v", errs[1])
	}
}

// The error of the last change stays on the pipeline until a change succeeds: a first version
// that does not build leaves the pipeline listed as failed with it; a rejected update keeps the
// running version and shows why.
func TestApplyErrorOnThePipeline(t *testing.T) {
	l := newLab()
	h := newTestHost(t, l, nil)
	broken := def("e", comp_("MemSource", "start_ledger", first, "no_such_key", 1), nil, procs(comp_("Record")))
	err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: broken})
	if err == nil {
		t.Fatal("a definition that does not build was added")
	}
	p, ok := h.Get("e")
	if !ok {
		t.Fatal("a pipeline whose first version did not build is not listed")
	}
	in := p.Info()
	if in.Status != StatusFailed || in.ApplyError != err.Error() || in.LastError != err.Error() || in.Generation != 0 ||
		in.File != broken.File || p.HealthState() != HealthUnhealthy {
		t.Errorf("after a first version that does not build: %+v, health %s", in, p.HealthState())
	}
	if !strings.Contains(in.ApplyError, "configs/e.yaml:3: pipeline e: source (MemSource)") {
		t.Errorf("apply error %q does not name the file, line and pipeline", in.ApplyError)
	}

	good := def("e", comp_("MemSource", "start_ledger", first, "interval", "1ms"), nil, procs(comp_("Record")))
	apply(t, h, loader.Update, good)
	p, _ = h.Get("e")
	testutil.Eventually(t, waitLong, "e running", func() bool { return p.Info().Status == StatusRunning })
	if in := p.Info(); in.ApplyError != "" || in.LastError != "" || in.Generation != 1 {
		t.Errorf("after a good version: %+v", in)
	}

	rejected := def("e", comp_("MemSource", "start_ledger", first, "interval", "1ms", "no_such_key", 1), nil, procs(comp_("Record")))
	err = h.Apply(context.Background(), loader.Event{Kind: loader.Update, Pipeline: rejected})
	if in := p.Info(); err == nil || in.ApplyError != err.Error() || in.Status != StatusRunning || in.ConfigHash != good.Hash {
		t.Errorf("after a rejected update (%v): %+v", err, in)
	}
	// The file back at the running version: nothing to restart, and nothing refused anymore.
	apply(t, h, loader.Update, good)
	if in := p.Info(); in.ApplyError != "" || in.Generation != 1 {
		t.Errorf("after the running version was applied again: %+v", in)
	}
	// A refused pipeline is removed like any other.
	other := def("e2", comp_("MemSource", "start_ledger", first, "no_such_key", 1), nil, procs(comp_("Record")))
	if err := h.Apply(context.Background(), loader.Event{Kind: loader.Add, Pipeline: other}); err == nil {
		t.Fatal("a definition that does not build was added")
	}
	apply(t, h, loader.Remove, other)
	if _, ok := h.Get("e2"); ok {
		t.Error("removed refused pipeline still listed")
	}
}
