package daemon

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/loader"
)

// The hand-off between replicas. When the shard count changes, the replicas restart one by one
// with the new count, so for a while the old and the new owner of a moving pipeline may both
// think it is theirs (a StatefulSet's new pod starts while the old pods still run with the old
// count). Rendezvous hashing keeps that set small; the hand-off keeps it from running twice:
// a sharded replica with a control plane does not start a pipeline that another instance still
// holds, that is, whose service id (fleet-wide) is registered by another instance with a
// heartbeat younger than the heartbeat TTL (server.HeartbeatTTLFor of --heartbeat-interval).
// The pipeline is listed with status waiting (last_error says who holds it) and is started as
// soon as the holder lets go: it unregisters when its replica drops or stops it, or its last
// heartbeat ages past the TTL (a replica killed hard). The check runs before the first start and
// then every --heartbeat-interval.
//
// The same rule keeps a fleet from running a pipeline that an upstream CDP process still runs
// under the same id (cdp-<name>, through the legacy API) during a gradual migration.
//
// Limits: without an answer from the control plane (down, unreachable) the pipeline starts:
// the StatefulSet's ordinals stay the fence, and the state-dir lock and cursor epochs of the
// sinks the second. Two replicas deciding in the same instant before either registered (both
// starting at once with different counts) are not told apart; the heartbeat age compares the
// control plane's clock with this machine's.

// StatusWaiting is the API status of a pipeline of this shard that another instance still runs.
const StatusWaiting = "waiting"

// handoff holds the pipelines waiting for another instance to let go, by name.
type handoff struct {
	mu      sync.Mutex
	waiting map[string]waitingPipeline
	checks  atomic.Int64 // questions asked to the control plane (cdpd_handoff_checks_total)
}

type waitingPipeline struct {
	ev     loader.Event // the latest definition, as an Add
	holder string       // who holds it, for the API
	since  time.Time
}

// guarded reports whether the hand-off applies: a sharded replica with a control plane.
func (d *daemon) guarded() bool { return d.cfg.Shard.Sharded() && d.client.Enabled() }

// gate passes on the events of the pipelines this replica may start now and keeps back the
// Adds of pipelines another live instance holds (their later Updates replace the kept
// definition, a Remove forgets it).
func (d *daemon) gate(ctx context.Context, events []loader.Event) []loader.Event {
	if !d.guarded() {
		return events
	}
	out := events[:0:0]
	var check []loader.Event
	d.handoff.mu.Lock()
	if d.handoff.waiting == nil {
		d.handoff.waiting = map[string]waitingPipeline{}
	}
	for _, ev := range events {
		if ev.Pipeline == nil {
			out = append(out, ev)
			continue
		}
		name := ev.Pipeline.Name
		if w, ok := d.handoff.waiting[name]; ok {
			if ev.Kind == loader.Remove {
				delete(d.handoff.waiting, name) // never started here: nothing for the host
			} else {
				w.ev = asAdd(ev)
				d.handoff.waiting[name] = w
			}
			continue
		}
		if _, running := d.host.Get(name); ev.Kind == loader.Remove || running {
			out = append(out, ev)
			continue
		}
		check = append(check, ev)
	}
	d.handoff.mu.Unlock()

	holders := d.holders(ctx, check)
	d.handoff.mu.Lock()
	defer d.handoff.mu.Unlock()
	for i, ev := range check {
		if holders[i] == "" {
			out = append(out, ev)
			continue
		}
		d.handoff.waiting[ev.Pipeline.Name] = waitingPipeline{ev: asAdd(ev), holder: holders[i], since: d.now()}
		d.log.Warn("pipeline of this shard is still run by another instance: waiting for it to let go",
			"pipeline", ev.Pipeline.Name, "held_by", holders[i])
	}
	return out
}

func asAdd(ev loader.Event) loader.Event {
	ev.Kind = loader.Add
	return ev
}

// holders asks the control plane, all at once, who holds each pipeline ("" = free).
func (d *daemon) holders(ctx context.Context, evs []loader.Event) []string {
	out := make([]string, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() { out[i] = d.holder(ctx, ev.Pipeline.Name) })
	}
	wg.Wait()
	return out
}

// holder says which other live instance holds pipeline name ("" when none does, or when the
// control plane does not answer).
func (d *daemon) holder(ctx context.Context, name string) string {
	id := d.serviceID(name)
	d.handoff.checks.Add(1)
	st, err := d.client.Status(ctx, id)
	if err != nil {
		d.log.Warn("cannot ask the control plane who runs a pipeline; starting it", "pipeline", name, "err", err)
		return ""
	}
	if st == nil {
		return ""
	}
	md := st.GetComponent().GetMetadata()
	inst := md[contract.MetaInstance]
	if inst == d.cfg.instanceName() {
		return ""
	}
	age := d.now().Sub(st.GetLastHeartbeat().AsTime())
	if age >= server.HeartbeatTTLFor(d.cfg.HeartbeatInterval) {
		return ""
	}
	who := inst
	if who == "" {
		who = md[contract.MetaRegisteredBy] // an upstream process: no instance, its address
	}
	if sh, n := md[contract.MetaShard], md[contract.MetaShardCount]; sh != "" && n != "" {
		who += fmt.Sprintf(" (shard %s/%s)", sh, n)
	}
	return fmt.Sprintf("%s, last heartbeat %s ago", who, age.Round(time.Second))
}

// claimLoop re-asks about the waiting pipelines every heartbeat interval and starts those let
// go, until ctx ends. The watcher actor owns it.
func (d *daemon) claimLoop(ctx context.Context) {
	if !d.guarded() {
		return
	}
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.claim(ctx)
		}
	}
}

func (d *daemon) claim(ctx context.Context) {
	d.handoff.mu.Lock()
	evs := make([]loader.Event, 0, len(d.handoff.waiting))
	for _, w := range d.handoff.waiting {
		evs = append(evs, w.ev)
	}
	d.handoff.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	holders := d.holders(ctx, evs)
	var start []loader.Event
	d.handoff.mu.Lock()
	for i, ev := range evs {
		name := ev.Pipeline.Name
		w, ok := d.handoff.waiting[name]
		switch {
		case !ok:
			// Removed meanwhile.
		case holders[i] != "":
			w.holder = holders[i]
			d.handoff.waiting[name] = w
		default:
			delete(d.handoff.waiting, name)
			start = append(start, w.ev) // the latest definition, maybe newer than ev
			d.log.Info("the previous instance let go of the pipeline: starting it", "pipeline", name,
				"waited", d.now().Sub(w.since).Round(time.Second).String())
		}
	}
	d.handoff.mu.Unlock()
	if len(start) == 0 {
		return
	}
	applied := d.host.Submit(ctx, start...)
	d.batches.Go(func() {
		for i, err := range applied.Wait() {
			d.logChange(start[i], err)
		}
	})
}

// waitingStatuses lists the pipelines waiting for a hand-off, as the API shows them.
func (d *daemon) waitingStatuses() []PipelineStatus {
	d.handoff.mu.Lock()
	defer d.handoff.mu.Unlock()
	out := make([]PipelineStatus, 0, len(d.handoff.waiting))
	for name, w := range d.handoff.waiting {
		k := d.cfg.Shard.Index
		out = append(out, PipelineStatus{Name: name, ServiceID: d.serviceID(name), File: w.ev.Pipeline.File,
			Status: StatusWaiting, Health: contract.StateStarting, AssignedShard: &k,
			LastError: "still run by " + w.holder + "; starts here when it lets go",
			Metrics:   map[string]float64{}, HealthDetails: map[string]string{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// waitingCount is how many pipelines wait for a hand-off.
func (d *daemon) waitingCount() int {
	d.handoff.mu.Lock()
	defer d.handoff.mu.Unlock()
	return len(d.handoff.waiting)
}
