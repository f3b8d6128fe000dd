package host

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/loader"
)

// comp is one component of an incarnation with what the host measures about it.
type comp struct {
	kind component.Kind
	typ  string
	name string
	line int
	impl any

	in, out, errs atomic.Int64
	last          atomic.Int64  // Options.Now of the last ledger handled, unix nanoseconds
	busySince     atomic.Int64  // unix nanoseconds (wall clock) since the current call began; 0 idle
	busyLedger    atomic.Uint32 // ledger of the current call
	busyCall      atomic.Value  // string: name of the current call (Process, Consume, ...)
	failed        atomic.Bool   // this component caused the incarnation's failure

	inC, outC, errC prometheus.Counter
	lat             prometheus.Observer

	statsMu sync.Mutex
	prev    map[string]float64
	updated time.Time
}

func (c *comp) label() string { return fmt.Sprintf("%s %s", c.kind, c.name) }

// item is one ledger and the records produced for it so far. Whoever holds an item holds one
// reference to its ledger (ledger.Retain/Release: pooled ledgers return their buffer to the
// pool when the last holder is done): a stage either hands the item on (send) or releases it.
type item struct {
	l    *ledger.Ledger
	recs []component.Record
}

// run is one incarnation of a pipeline version.
type run struct {
	p    *Pipeline
	h    *Host
	def  *loader.Pipeline
	log  *slog.Logger
	reg  *prometheus.Registry
	dir  string // the pipeline's state directory ("" without StateDir)
	from uint32

	decodes atomic.Int64
	src     *comp
	procs   []*comp
	cons    []*comp
	comps   []*comp

	startedAt time.Time // Options.Now
	began     time.Time // wall clock, for durations

	// Contexts: hard (cancelled at the drain deadline or on kill) > work (cancelled on
	// failure) > source (cancelled to stop intake). startCtx is work's child for Start.
	hardCtx   context.Context
	hardStop  context.CancelFunc
	workCtx   context.Context
	workStop  context.CancelFunc
	srcCtx    context.Context
	srcStop   context.CancelFunc
	startStop context.CancelFunc

	accepted         []atomic.Uint32 // per consumer: last ledger whose Consume returned nil
	acceptedCT       []atomic.Int64  // per consumer: close time (unix seconds) of that ledger
	currentCloseTime atomic.Int64    // close time of the current ledger
	counts           []atomic.Int64  // per consumer: ledgers accepted
	durable          []atomic.Uint32 // per consumer: last durable ledger
	current          atomic.Uint32   // min accepted
	processed        atomic.Int64    // min counts
	checkpointed     atomic.Uint32   // last checkpoint loaded or written
	cpNotify         chan struct{}
	cpStop           chan struct{}
	cpDone           chan struct{}

	mu        sync.Mutex
	err       error // first failure
	errInStop bool  // err happened after the stop was requested (a drain error)
	stopping  bool  // stop was requested (intake stopped)
	killed    bool
	deadline  *time.Timer
	abandonT  *time.Timer
	hardFired bool
	srcEnded  bool // the source's Run returned nil (end of range)

	wg          sync.WaitGroup
	allDone     chan struct{}
	abandon     chan struct{}
	abandonOnce sync.Once
	launched    bool
}

func (r *run) source() component.Source { return r.src.impl.(component.Source) }
