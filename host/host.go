// Package host owns the pipeline runtime of cdpd: it runs many CDP pipelines in one process,
// each as its own goroutine group under its own context, and supervises them.
//
// A pipeline is source -> processors (a chain) -> consumers (a fan-out). Each incarnation of a
// pipeline (every start and restart) runs one goroutine for the source, one per processor and
// one per consumer, joined by bounded channels of BufferSize ledgers, so a slow consumer slows
// its own pipeline (backpressure) and nothing queues without bound. Every consumer receives
// every ledger's records in ledger order.
//
// Lifecycle (Apply, Submit): Add builds (constructs and validates every component), starts
// (Starter.Start) and runs a pipeline; a definition that does not build leaves the pipeline
// listed as failed with the error. Update builds the new version first and, if that fails,
// keeps the old one running and returns the error (the generation is unchanged); otherwise it
// stops the old version (drained), starts the new one and, if the new one fails to start,
// brings the old one back and returns the error. Remove stops intake, drains the ledgers in
// flight through the consumers, closes (flushes) them and forgets the pipeline's metrics.
// The host orders the changes of each pipeline (one at a time, in the order submitted);
// changes of different pipelines never wait for each other. The error of the last Add or
// Update stays on the pipeline (Info.ApplyError) until one succeeds, so a snapshot says why a
// pipeline does not run the version of its file. Every drain has a hard deadline
// (DrainTimeout): a component still busy then has its context cancelled, is reported
// ("drain deadline exceeded ...") and is no longer waited for. A goroutine stuck forever in
// user code ignoring its context cannot be killed in Go: it is abandoned, and ends whenever
// that code returns.
//
// Errors do not outlive the trouble: last_error is cleared once a later incarnation has handled
// a ledger (the restart log keeps the failure), and ApplyError of a first version whose start
// failed once that version runs.
//
// Supervision: a panic (recovered, logged with its stack) or an error in any component fails
// the incarnation: it is stopped without drain and, per the pipeline's `restart:` policy
// (on-failure by default, always, never), restarted after a capped exponential backoff
// (internal/backoff: BackoffInitial doubling up to BackoffMax, no jitter). The backoff starts
// over after an incarnation that ran at least StableAfter before failing. A bounded pipeline whose source reaches end_ledger
// drains and ends COMPLETED; completed is terminal under every policy (restarting it would
// replay nothing: its checkpoint is past end_ledger). An unbounded source that ends without
// error is completed too, except under `restart: always`, which restarts it. `never` leaves a
// failed pipeline FAILED until it is updated or removed.
//
// Checkpoints (StateDir != ""): when every consumer has durably accepted ledger N (consumers
// implementing component.Durable report it through DurableLedger, others are durable when
// Consume returns; a buffering consumer that implements component.TimedFlusher is flushed by
// its stage once its interval has passed since the first ledger it has not made durable, so a
// pipeline at the tip does not wait for more data to make its rows durable), N is written to <StateDir>/<pipeline>/checkpoint.json atomically, at most
// once per CheckpointInterval (250ms by default) and always when an incarnation ends (drain,
// stop, failure, completion). A crash thus replays at most that window, which idempotent
// consumers absorb. An incarnation starts at max(start_ledger, checkpoint+1); when consumers
// implement component.Positioned, it starts after the lowest position any consumer holds
// (a consumer without a position holds the checkpoint), never before start_ledger. Checkpoints
// are kept when a pipeline is removed, so removing and re-adding a pipeline resumes it. A write
// that fails (read-only or full state directory) is retried every CheckpointInterval; meanwhile
// the pipeline runs on, degraded (unhealthy after CheckpointUnhealthyAfter), with the cause as
// its last_error and checkpoint_error, counted in cdp_pipeline_checkpoint_errors_total, and
// cdp_pipeline_checkpoint_age_seconds says how long the checkpoint has lagged.
//
// Stats and metrics: each incarnation has a fresh prometheus.Registry (the SDK's stream
// metrics may be registered only once per registry) holding the cdp_pipeline_* metrics and the
// components' own; Gatherer gathers every live pipeline's registry with the label
// pipeline="<name>". Counters that must survive restarts (restarts) live in the Pipeline handle.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/checkpoint"
	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/source/readers"
	"github.com/withobsrvr/cdpd/internal/backoff"
)

// Options configure a Host. Zero values select the defaults given on each field.
type Options struct {
	Registry *component.Registry // component constructors (host/builtin); required
	// StateDir holds one directory per pipeline (checkpoint.json, components' private state);
	// "" = no checkpoints.
	StateDir string
	Logger   *slog.Logger     // default: discard
	Now      func() time.Time // default: time.Now
	// DrainTimeout is the hard deadline of a drain (default 30s).
	DrainTimeout time.Duration
	// BackoffInitial and BackoffMax bound the restart backoff (default 1s, 1m): the n-th
	// consecutive failure waits BackoffInitial*2^(n-1), capped at BackoffMax (no jitter).
	BackoffInitial, BackoffMax time.Duration
	// StableAfter: a failure of an incarnation that ran at least this long starts the backoff
	// over at BackoffInitial (default 1m).
	StableAfter time.Duration
	// StuckAfter is how long one Process or Consume call on one ledger may run before its
	// component is reported stuck (health detail "stuck: ..." and the pipeline DEGRADED) while
	// the pipeline keeps running (default 1m). A processor or consumer hung forever otherwise
	// looks healthy until the pipeline is stopped.
	StuckAfter time.Duration
	// BufferSize is the capacity of each stage's channel in ledgers (default 4).
	BufferSize int
	// CheckpointInterval is the minimum time between two checkpoint writes of a running
	// incarnation (default 250ms); the end of an incarnation always writes.
	CheckpointInterval time.Duration
	// CheckpointUnhealthyAfter: a pipeline whose checkpoint writes fail (read-only or full
	// state directory) is degraded at once and unhealthy once they have failed for this long
	// (default 1m). It keeps running: its consumers hold the data, and a crash meanwhile would
	// replay from the last checkpoint written.
	CheckpointUnhealthyAfter time.Duration
	// OnRunning is called from a host goroutine when a version of a pipeline is launched (Add,
	// successful Update, restored old version after a failed Update). It must not block long.
	OnRunning func(p *Pipeline)
	// OnRemoved is called after a pipeline was removed (drained).
	OnRemoved func(name string)
	// LedgerMemory is the byte budget for ledgers in flight of every pipeline (raw, and the
	// estimated size of decoded values): readers wait for it before they read further (cdpd
	// --ledger-memory). <= 0: unlimited (counted only).
	LedgerMemory int64
	// Readers tunes the shared readers (window, leave timeout, linger, tip interval); its
	// Budget and Logger are the host's.
	Readers readers.Options
	// DecodeWorkers is the number of workers that decode ledgers ahead for a pipeline with a
	// processor that needs the full decode (component.NeedsDecode); default GOMAXPROCS; < 0:
	// no decode ahead (the processor decodes on its own goroutine, as before issue 19).
	DecodeWorkers int
	// ConfigRejected says why the current file of a pipeline (its name, the file of the
	// version running) was rejected, "" when it was not: an edit that does not parse or
	// validate leaves the previous version running, and the pipeline reports itself degraded
	// with the reason as its config_rejected health detail until the file is fixed. Called
	// on every read of a pipeline's state: it must be quick and must not call into the host.
	ConfigRejected func(name, file string) string
}

// Host runs and supervises pipelines. Its methods are safe for concurrent use.
type Host struct {
	opts Options
	log  *slog.Logger
	cps  *checkpoint.Store // nil without StateDir
	// restartBackoff is the delay before a restart: BackoffInitial doubling up to BackoffMax.
	restartBackoff backoff.Policy

	// readers is the daemon's one registry of shared readers (Env.Readers), with the ledger
	// budget.
	readers *readers.Registry

	mu      sync.Mutex
	pipes   map[string]*Pipeline
	queues  map[string][]job // pending changes per name; a key exists while its worker runs
	workers sync.WaitGroup   // the queues' workers
	closed  bool
}

// New returns a Host with no pipelines.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.BackoffInitial <= 0 {
		opts.BackoffInitial = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.BackoffMax < opts.BackoffInitial {
		opts.BackoffMax = opts.BackoffInitial
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = time.Minute
	}
	if opts.StuckAfter <= 0 {
		opts.StuckAfter = time.Minute
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 4
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 250 * time.Millisecond
	}
	if opts.CheckpointUnhealthyAfter <= 0 {
		opts.CheckpointUnhealthyAfter = time.Minute
	}
	if opts.Registry == nil {
		opts.Registry = component.NewRegistry()
	}
	if opts.DecodeWorkers == 0 {
		opts.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	ro := opts.Readers
	ro.Budget = ledger.NewBudget(opts.LedgerMemory)
	ro.Logger = opts.Logger.With("component", "readers")
	h := &Host{opts: opts, log: opts.Logger, pipes: map[string]*Pipeline{}, queues: map[string][]job{},
		restartBackoff: backoff.Policy{Base: opts.BackoffInitial, Max: opts.BackoffMax, Factor: 2},
		readers:        readers.New(ro)}
	if opts.StateDir != "" {
		h.cps = checkpoint.New(opts.StateDir)
	}
	return h
}

// Pipelines returns the live pipelines sorted by name.
func (h *Host) Pipelines() []*Pipeline {
	h.mu.Lock()
	out := make([]*Pipeline, 0, len(h.pipes))
	for _, p := range h.pipes {
		out = append(out, p)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Get returns the live pipeline of that name.
func (h *Host) Get(name string) (*Pipeline, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pipes[name]
	return p, ok
}

// Close stops every pipeline gracefully (drain, flush, final checkpoint), all at once, each
// bounded by DrainTimeout and by ctx. Apply fails afterwards.
func (h *Host) Close(ctx context.Context) error {
	err := h.stopAll(ctx, false)
	h.readers.Close()
	return err
}

// kill stops every pipeline the way kill -9 would leave them: no drain, no flush, no final
// checkpoint (tests use it to check crash recovery).
func (h *Host) kill() {
	_ = h.stopAll(context.Background(), true)
	h.readers.Close()
}

// Readers is the host's registry of shared readers: their figures, and a prometheus.Collector
// of the cdpd_reader_*, cdpd_ledger_memory_* and cdpd_ledger_buffers_* metrics (the daemon
// registers it).
func (h *Host) Readers() *readers.Registry { return h.readers }

func (h *Host) stopAll(ctx context.Context, kill bool) error {
	h.mu.Lock()
	h.closed = true
	names := make([]string, 0, len(h.pipes))
	for n := range h.pipes {
		names = append(names, n)
	}
	h.mu.Unlock()
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		// Queued behind the name's pending changes, which fail with ErrClosed.
		h.enqueue(n, job{
			do: func() error {
				p, ok := h.Get(n)
				if !ok {
					return nil
				}
				if err := p.version().stop(ctx, kill); err != nil {
					return fmt.Errorf("stopping pipeline %s: %w", n, err)
				}
				return nil
			},
			done: func(err error) { errs[i] = err; wg.Done() },
		})
	}
	wg.Wait()
	h.workers.Wait()
	return errors.Join(errs...)
}

// Gatherer gathers the cdp_pipeline_* metrics of every live pipeline (pipelineCollector) and
// the metrics its components registered in their incarnation's registry, each series labelled
// pipeline="<name>". A removed pipeline leaves no series. (The shared readers' metrics are
// Readers'.)
func (h *Host) Gatherer() prometheus.Gatherer {
	own := prometheus.NewRegistry()
	own.MustRegister(pipelineCollector{h})
	return gathererFunc(func() ([]*dtoMetricFamily, error) {
		gs := prometheus.Gatherers{own}
		for _, p := range h.Pipelines() {
			if r := p.liveRun(); r != nil {
				gs = append(gs, labelled{name: p.name, g: r.reg})
			}
		}
		return gs.Gather()
	})
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
