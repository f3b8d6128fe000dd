package host

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/redact"
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
	red           *redact.Redactor

	lat latency // cdp_pipeline_component_latency_seconds (metrics.go)

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
	red  *redact.Redactor // the definition's secrets (redact.go)
	log  *slog.Logger     // redacting
	reg  *prometheus.Registry
	dir  string // the pipeline's state directory ("" without StateDir)
	from uint32

	decodes ledger.Decodes
	src     *comp
	procs   []*comp
	cons    []*comp
	comps   []*comp

	startedAt time.Time // Options.Now

	prog      *progress   // accepted and durable ledgers, checkpoints (progress.go)
	rates     rateSamples // recent throughput, for a bounded pipeline's ETA (eta.go)
	lifecycle             // contexts, failure, stop, drain deadline (stop.go)
}

func (r *run) source() component.Source { return r.src.impl.(component.Source) }
