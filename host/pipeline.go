package host

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/loader"
)

// Pipeline statuses (Info.Status).
const (
	StatusStarting   = "starting"
	StatusRunning    = "running"
	StatusCompleted  = "completed"
	StatusRestarting = "restarting"
	StatusFailed     = "failed"
	StatusStopping   = "stopping"
	StatusStopped    = "stopped"
)

// Health states (Pipeline.HealthState); the control plane maps them to its HealthStatus.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthUnhealthy = "unhealthy"
	HealthStopping  = "stopping"
)

// StaleAfter is how long a component of a running pipeline may go without handling a ledger
// before its health detail says "stale" (a followed network closes a ledger every ~6s).
const StaleAfter = 2 * time.Minute

// Info is a snapshot of a pipeline's state.
type Info struct {
	Name, File, Status string // Status: starting|running|completed|restarting|failed|stopping|stopped
	Generation         int64  // bumped per applied version (Add=1, each successful Update +1)
	ConfigHash         string
	Restarts           int
	LastError          string
	// ApplyError is why the last Add or Update of the pipeline was not applied (a definition
	// that does not build, a new version that does not start); "" once one succeeds.
	ApplyError string
	// ConfigRejected is why the pipeline does not run what its file says: the loader's error
	// about its file (Options.ConfigRejected), else ApplyError; "" when it runs its file.
	ConfigRejected string
	StartedAt      time.Time     // of the current version's current run
	CurrentLedger  uint32        // last ledger every consumer accepted
	Checkpoint     uint32        // last ledger checkpointed (loaded or written)
	Backoff        time.Duration // delay before the next restart while restarting
	// CheckpointError is why the last checkpoint write failed ("" once one succeeds);
	// CheckpointFailingSince is when the current streak of failed writes began.
	CheckpointError        string
	CheckpointFailingSince time.Time
	CheckpointErrors       int64         // failed checkpoint writes, over every incarnation
	CheckpointAge          time.Duration // how long the checkpoint has lagged the durable ledger (0: up to date)
}

// RestartEvent records one restart of a pipeline: when it began (Options.Now) and the backoff
// that preceded it.
type RestartEvent struct {
	At    time.Time
	Delay time.Duration
	Err   string // the failure that caused it
}

const keepRestartEvents = 64

// Pipeline is the stable handle of one pipeline name across versions and restarts.
type Pipeline struct {
	h    *Host
	name string

	restartsTotal  atomic.Int64 // exported as cdp_pipeline_restarts_total by every incarnation
	checkpointErrs atomic.Int64 // exported as cdp_pipeline_checkpoint_errors_total

	mu         sync.Mutex
	ver        *version
	status     string
	restarts   int
	lastError  string
	errRun     *run   // p.run when lastError was set (progressed)
	applyError string // see Info.ApplyError
	// applyErrVer is the version whose failed first start applyError is, retried under
	// supervision; its first run clears applyError (running). nil for other errors.
	applyErrVer *version
	startedAt   time.Time
	current     uint32 // last accepted ledger of the last finished incarnation
	checkpoint  uint32
	backoff     time.Duration
	run         *run // current or last incarnation (stats, registry)
	removed     bool
	restartLog  []RestartEvent
	cpError     string    // Info.CheckpointError
	cpFailing   time.Time // Info.CheckpointFailingSince
}

func newPipeline(h *Host, def *loader.Pipeline) *Pipeline {
	return &Pipeline{h: h, name: def.Name, status: StatusStarting, ver: &version{def: def, done: closedChan()}}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Name is the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// Definition is the definition of the version currently applied.
func (p *Pipeline) Definition() *loader.Pipeline { return p.version().def }

func (p *Pipeline) version() *version {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ver
}

// liveRun is the current incarnation, nil when there is none or the pipeline was removed: the
// one whose metrics /metrics shows.
func (p *Pipeline) liveRun() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil
	}
	return p.run
}

func (p *Pipeline) currentRun() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// applied reports whether a version of the pipeline was ever launched (false while its first
// definition does not build).
func (p *Pipeline) applied() bool { return p.version().stopCh != nil }

// refused records a first definition that does not build: the pipeline is failed with that
// error and no version runs.
func (p *Pipeline) refused(def *loader.Pipeline, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ver = &version{def: def, done: closedChan()}
	p.status = StatusFailed
	p.applyError, p.applyErrVer = err.Error(), nil
	p.lastError, p.errRun = err.Error(), p.run
}

// setApplyError records the outcome of an Add or Update (nil: applied). retried is the version
// whose failed first start err is, when it is retried under supervision: its first run clears
// the error (running).
func (p *Pipeline) setApplyError(err error, retried *version) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applyError, p.applyErrVer = "", nil
	if err != nil {
		p.applyError, p.applyErrVer = err.Error(), retried
	}
}

// setLastError records the pipeline's latest error. It stays until a later incarnation than
// the one current now has handled a ledger (progressed).
func (p *Pipeline) setLastError(s string) {
	p.mu.Lock()
	p.lastError, p.errRun = s, p.run
	p.mu.Unlock()
}

// progressed is called when incarnation r handled its first ledger (every consumer accepted
// it): a pipeline that runs again after a failure is no longer failing, so an error from before
// r (a failed run, start or update) stops being its last_error. The restart log keeps it.
func (p *Pipeline) progressed(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastError == "" || p.errRun == r || p.run != r || p.lastError == p.cpError {
		return
	}
	r.log.Info("pipeline recovered: handling ledgers again", "cleared_error", p.lastError, "restarts", p.restarts)
	p.lastError, p.errRun = "", nil
}

func (p *Pipeline) setStatus(s string) {
	p.mu.Lock()
	p.status = s
	p.mu.Unlock()
}

func (p *Pipeline) setRemoved() {
	p.mu.Lock()
	p.removed = true
	p.status = StatusStopped
	p.mu.Unlock()
}

// Info returns a snapshot of the pipeline's state.
func (p *Pipeline) Info() Info { return p.read().in }

// reading is one consistent read of a pipeline: its Info, the applied definition and the
// current (or last) incarnation, nil before any.
type reading struct {
	in  Info
	def *loader.Pipeline
	r   *run
}

func (p *Pipeline) read() reading {
	p.mu.Lock()
	defer p.mu.Unlock()
	def := p.ver.def
	in := Info{
		Name: p.name, File: def.File, Status: p.status, Generation: p.ver.gen, ConfigHash: def.Hash,
		Restarts: p.restarts, LastError: p.lastError, ApplyError: p.applyError, StartedAt: p.startedAt,
		CurrentLedger: p.current, Checkpoint: p.checkpoint, Backoff: p.backoff,
		CheckpointError: p.cpError, CheckpointFailingSince: p.cpFailing, CheckpointErrors: p.checkpointErrs.Load(),
	}
	if f := p.h.opts.ConfigRejected; f != nil {
		in.ConfigRejected = f(p.name, def.File)
	}
	if in.ConfigRejected == "" {
		in.ConfigRejected = p.applyError
	}
	if p.run != nil {
		in.CheckpointAge = p.run.prog.age()
		if c := p.run.prog.current.Load(); c != 0 {
			in.CurrentLedger = c
		}
		if c := p.run.prog.checkpointed.Load(); c != 0 {
			in.Checkpoint = c
		}
	}
	return reading{in: in, def: def, r: p.run}
}

// checkpointSaved records the outcome of a checkpoint write (progress.saved): a failure is the
// pipeline's last error and makes it degraded (unhealthy once it lasts CheckpointUnhealthyAfter);
// a success ends that, and clears last_error if the failure was the last error.
func (p *Pipeline) checkpointSaved(err error) {
	if err != nil {
		p.checkpointErrs.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		if p.cpError != "" && p.lastError == p.cpError {
			p.lastError = ""
		}
		p.cpError, p.cpFailing = "", time.Time{}
		return
	}
	if p.cpFailing.IsZero() {
		p.cpFailing = p.h.opts.Now()
	}
	p.cpError = "writing the checkpoint failed: " + err.Error()
	p.lastError = p.cpError
}

// RestartLog returns the most recent restarts, oldest first.
func (p *Pipeline) RestartLog() []RestartEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]RestartEvent(nil), p.restartLog...)
}
