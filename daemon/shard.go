package daemon

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/loader"
)

// Sharding (--shard-count N, --shard-index K): every replica of a fleet watches the same config
// directory, and each runs only the pipelines whose name internal/shard assigns to its index.
// The others are listed by the API with their assigned_shard and status other_shard, and never
// reach the host. A replica's index and count are fixed for its life, so a pipeline never moves
// inside one process: changing the count is a restart of every replica (docs/operations.md).

// EnvPodIndex is where --shard-index auto finds a StatefulSet pod's ordinal: the deployment
// sets it from the pod's apps.kubernetes.io/pod-index label through the downward API
// (deploy/kubernetes/cdpd-statefulset.yaml). Without it, the trailing -K of the host name
// (a StatefulSet pod's host name is <set>-<ordinal>) is the index.
const EnvPodIndex = "POD_INDEX"

// StatusOtherShard is the API status of a pipeline another replica runs.
const StatusOtherShard = "other_shard"

// resolveShard turns --shard-count and --shard-index (a number or "auto") into this replica's
// place in the fleet; an auto index that cannot be found or is out of range is an error that
// says where it looked.
func resolveShard(count int, index string, getenv func(string) string, hostname func() (string, error)) (shard.Spec, error) {
	spec := shard.Spec{Count: max(count, 1)}
	index = strings.TrimSpace(index)
	if !strings.EqualFold(index, "auto") {
		k, err := strconv.Atoi(index)
		if err != nil {
			return spec, fmt.Errorf("--shard-index must be a number or auto, got %q", index)
		}
		spec.Index = k
		if err := spec.Check(); err != nil {
			return spec, fmt.Errorf("--shard-index: %w", err)
		}
		return spec, nil
	}
	var from string
	if v := strings.TrimSpace(getenv(EnvPodIndex)); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil {
			return spec, fmt.Errorf("--shard-index auto: %s=%q is not a number", EnvPodIndex, v)
		}
		spec.Index, from = k, EnvPodIndex+"="+v
	} else {
		h, err := hostname()
		if err != nil {
			return spec, fmt.Errorf("--shard-index auto: %s is unset and the host name is unknown: %w", EnvPodIndex, err)
		}
		i := strings.LastIndexByte(h, '-')
		k, err := strconv.Atoi(h[i+1:])
		if i < 0 || err != nil || k < 0 {
			return spec, fmt.Errorf("--shard-index auto: %s is unset and the host name %q does not end in -<index> (as a StatefulSet pod's does)", EnvPodIndex, h)
		}
		spec.Index, from = k, "host name "+h
	}
	if err := spec.Check(); err != nil {
		return spec, fmt.Errorf("--shard-index auto (%s): %w; is --shard-count (%d) the StatefulSet's replicas?", from, err, spec.Count)
	}
	return spec, nil
}

// elsewhere is a valid pipeline definition of the config directory that another shard runs.
type elsewhere struct {
	file  string
	shard int
}

// foreignPipelines are the pipelines of the directory this replica does not run, by name.
type foreignPipelines struct {
	mu    sync.Mutex
	byKey map[string]elsewhere
}

// split keeps the events of the pipelines this replica runs and records the others (an Add or
// Update of a foreign pipeline records it, a Remove forgets it).
func (d *daemon) split(events []loader.Event) []loader.Event {
	if !d.cfg.Shard.Sharded() {
		return events
	}
	local := events[:0:0]
	d.foreign.mu.Lock()
	defer d.foreign.mu.Unlock()
	if d.foreign.byKey == nil {
		d.foreign.byKey = map[string]elsewhere{}
	}
	for _, ev := range events {
		if ev.Pipeline == nil || d.cfg.Shard.Owns(ev.Pipeline.Name) {
			local = append(local, ev) // (the host reports an event without a pipeline)
			continue
		}
		name := ev.Pipeline.Name
		if ev.Kind == loader.Remove {
			delete(d.foreign.byKey, name)
			continue
		}
		d.foreign.byKey[name] = elsewhere{file: ev.Pipeline.File, shard: shard.Of(name, d.cfg.Shard.Count)}
	}
	return local
}

// foreignStatuses lists the pipelines other replicas run, as the API shows them.
func (d *daemon) foreignStatuses() []PipelineStatus {
	d.foreign.mu.Lock()
	defer d.foreign.mu.Unlock()
	out := make([]PipelineStatus, 0, len(d.foreign.byKey))
	for name, e := range d.foreign.byKey {
		j := e.shard
		out = append(out, PipelineStatus{Name: name, ServiceID: d.serviceID(name), File: e.file,
			Status: StatusOtherShard, Health: "unknown", AssignedShard: &j,
			Metrics: map[string]float64{}, HealthDetails: map[string]string{}})
	}
	return out
}

// foreignCount is how many pipelines of the directory other replicas run.
func (d *daemon) foreignCount() int {
	d.foreign.mu.Lock()
	defer d.foreign.mu.Unlock()
	return len(d.foreign.byKey)
}

// assignment is the shard of every pipeline name among count shards, sorted by shard then name.
type assignment struct {
	Name  string `json:"name"`
	File  string `json:"file,omitempty"`
	Shard int    `json:"shard"`
	// From is the pipeline's shard among the --from count (shards command only).
	From *int `json:"from,omitempty"`
}

func assign(pipelines map[string]*loader.Pipeline, count, from int) []assignment {
	out := make([]assignment, 0, len(pipelines))
	for name, p := range pipelines {
		a := assignment{Name: name, File: p.File, Shard: shard.Of(name, count)}
		if from > 0 {
			f := shard.Of(name, from)
			a.From = &f
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Shard != out[j].Shard {
			return out[i].Shard < out[j].Shard
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// byShard groups names per shard: "shard 0 (2): a, b".
func byShard(as []assignment, count int) []string {
	names := make([][]string, count)
	for _, a := range as {
		names[a.Shard] = append(names[a.Shard], a.Name)
	}
	lines := make([]string, count)
	for k, ns := range names {
		lines[k] = fmt.Sprintf("shard %d (%d): %s", k, len(ns), strings.Join(ns, ", "))
	}
	return lines
}
