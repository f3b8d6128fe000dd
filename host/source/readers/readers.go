// Package readers owns the daemon's shared datastore readers: the registry (one per daemon,
// owned by the host and handed to sources as component.Env.Readers), the readers themselves,
// the subscriptions of the pipelines' sources, and the one tip poller per datastore.
//
// Pipelines whose sources name the same datastore (storage type, bucket or directory, layout,
// network) subscribe to one reader: one SDK buffered storage stream, so one download and one
// decompression per object, each ledger copied once into a pooled, reference-counted buffer
// (host/ledger) and handed to every subscriber as its own handle (ledger.Share): the decode,
// if any pipeline asks for it, happens once and is shared. The rules:
//
//   - Join. A subscription for ledgers from F joins a reader of its datastore whose next ledger
//     N satisfies N <= F <= N+JoinAhead (it skips the ledgers before F); if there is none, a new
//     reader starts at F. So pipelines added together share at once, and a pipeline that starts
//     behind reads its own range on a reader of its own.
//   - Merge (catch up). When a reader, having handed out a ledger, finds another reader of its
//     datastore at its next ledger, or (if it started after that one) up to MergeSlack behind
//     it, its subscribers move to that reader (skipping what they already have) and it stops. A
//     reader that started behind thus joins the shared stream when it catches up with it, and
//     the shared stream itself is never replaced by it; at the tip the stream waits for the
//     next ledger, so every reader that follows the tip catches up.
//   - Pace and leave. Each subscriber has a queue of Window ledgers. The reader hands every
//     ledger to every subscriber and waits while a queue is full: slower pipelines pace the
//     stream within the window (so pipelines of different speeds still read each object once).
//     A subscriber that takes no ledger for LeaveAfter while its queue is full (stuck, failing,
//     a sink down) is cut off: the reader goes on without it, and the subscription continues on
//     a reader of its own from its next ledger (and merges back when it catches up). A pipeline
//     that stops (restart, edit, removal, drain) closes its subscription at once; the reader
//     goes on for the others and is never restarted for them.
//   - Linger. A reader without subscribers waits Linger for one that needs its next ledger (a
//     pipeline restarting from where it stopped) before it stops, so a restart does not tear
//     it down; a new reader of the same datastore stops the lingering ones at once.
//   - Tip. One poller per datastore asks for its newest ledger (every TipInterval while the
//     datastore has a reader): the tip and the datastore's health that every subscriber
//     reports. The readers following the tip poll for the next object through the SDK's
//     workers, so idle pipelines at the tip of one datastore cost one poller, not one each.
//   - Memory. Each reader holds an account of the daemon's ledger.Budget and acquires a
//     ledger's bytes before it copies it (back pressure), so ledgers in flight stay within
//     --ledger-memory however many readers there are.
//
// A reader's stream is unbounded from where it starts; it pulls the next ledger only while a
// subscriber needs it, so readers of bounded ranges stop at their end (plus the SDK's
// read-ahead of compressed objects). The reader's settings (buffer_size, num_workers,
// retry_*) are those of the subscription that started it. Metrics (Registry is a
// prometheus.Collector): per reader its subscribers, ledgers, objects and bytes read, decodes
// performed and shared, and the budget's use.
package readers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/support/datastore"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/redact"
)

// Defaults of Options.
const (
	DefaultWindow      = 8
	DefaultJoinAhead   = 64
	DefaultLeaveAfter  = 5 * time.Second
	DefaultLinger      = 30 * time.Second
	DefaultTipInterval = 5 * time.Second
)

// Options configure a Registry. Zero values select the defaults.
type Options struct {
	Budget *ledger.Budget // the daemon's budget for ledgers in flight (nil: unlimited)
	Logger *slog.Logger
	// Window is each subscriber's queue in ledgers: how far the stream may run ahead of it.
	Window int
	// JoinAhead is how far (in ledgers) a subscription's first ledger may be ahead of a
	// reader's next for it to join that reader instead of starting its own; MergeSlack how
	// close two readers must come to merge (default: Window).
	JoinAhead, MergeSlack uint32
	// LeaveAfter is how long a subscriber may hold the stream (its queue full, no ledger taken)
	// before it is cut off.
	LeaveAfter time.Duration
	// Linger is how long a reader without subscribers waits for one.
	Linger time.Duration
	// TipInterval is how often a datastore's newest ledger is polled.
	TipInterval time.Duration
}

// Spec is what a source reads: a datastore and the SDK settings of a reader it starts.
type Spec struct {
	Kind      string // storage kind (FS, GCS, S3): part of the readers' ids
	DataStore datastore.DataStoreConfig
	Buffer    ledgerbackend.BufferedStorageBackendConfig
	// CapLedgers bounds the ledgers in flight of a reader this spec starts (buffer_size given
	// in the config); 0: its fair share of the budget only.
	CapLedgers int64
	// Stream and Tip replace the SDK's buffered storage stream (from a ledger on, unbounded)
	// and datastore.FindLatestLedgerSequence; nil: the SDK's. Tests use them.
	Stream func(ctx context.Context, from uint32) iter.Seq2[[]byte, error]
	Tip    func(ctx context.Context) (uint32, error)
}

// key identifies a datastore: storage type, location, layout and network. Equal keys read the
// same objects.
func (s Spec) key() string {
	var b strings.Builder
	b.WriteString(s.DataStore.Type)
	for _, k := range slices.Sorted(maps.Keys(s.DataStore.Params)) {
		fmt.Fprintf(&b, "\x00%s=%s", k, s.DataStore.Params[k])
	}
	fmt.Fprintf(&b, "\x00%s\x00%d\x00%d", s.DataStore.NetworkPassphrase,
		s.DataStore.Schema.LedgersPerFile, s.DataStore.Schema.FilesPerPartition)
	return b.String()
}

// Registry is the daemon's set of shared readers, grouped by datastore. Its methods are safe for
// concurrent use. Close stops every reader.
type Registry struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	groups map[string]*group
	seq    map[string]int // readers started per datastore id (for reader ids)
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // reader and poller goroutines
}

// New returns an empty registry.
func New(opts Options) *Registry {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.JoinAhead == 0 {
		opts.JoinAhead = DefaultJoinAhead
	}
	if opts.MergeSlack == 0 {
		opts.MergeSlack = uint32(opts.Window) //nolint:gosec // small
	}
	if opts.LeaveAfter <= 0 {
		opts.LeaveAfter = DefaultLeaveAfter
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.TipInterval <= 0 {
		opts.TipInterval = DefaultTipInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{opts: opts, log: opts.Logger, groups: map[string]*group{}, seq: map[string]int{},
		ctx: ctx, cancel: cancel}
}

// Budget is the budget the registry's readers charge (nil: none).
func (reg *Registry) Budget() *ledger.Budget {
	if reg == nil {
		return nil
	}
	return reg.opts.Budget
}

// Close stops every reader and tip poller and waits for them. Subscriptions still open get
// an error from Next.
func (reg *Registry) Close() {
	reg.mu.Lock()
	reg.closed = true
	reg.mu.Unlock()
	reg.cancel()
	reg.wg.Wait()
}

// group is the readers of one datastore and its tip poller. Its mu guards the readers, their
// subscribers and positions, and the subscriptions' attachment.
type group struct {
	reg  *Registry
	key  string
	id   string // short, printable: kind and a hash of the key
	spec Spec   // of the first subscription (the tip poller's datastore)

	mu      sync.Mutex
	readers []*reader
	refs    int // open subscriptions (guarded by reg.mu, not mu)

	tip    tipState
	stopTp context.CancelFunc
}

// groupFor returns the group of spec's datastore, creating it (and its tip poller).
func (reg *Registry) groupFor(spec Spec) (*group, error) {
	k := spec.key()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.closed {
		return nil, fmt.Errorf("the shared readers are stopped")
	}
	if g := reg.groups[k]; g != nil {
		g.refs++
		return g, nil
	}
	sum := sha256.Sum256([]byte(k))
	kind := strings.ToLower(spec.Kind)
	if kind == "" {
		kind = "ds"
	}
	g := &group{reg: reg, key: k, id: kind + "-" + hex.EncodeToString(sum[:4]), spec: spec, refs: 1}
	reg.groups[k] = g
	ctx, cancel := context.WithCancel(reg.ctx)
	g.stopTp = cancel
	reg.wg.Add(1)
	go func() {
		defer reg.wg.Done()
		g.pollTip(ctx)
	}()
	return g, nil
}

// dropIfEmptyLocked removes g from the registry (and stops its tip poller) when it has neither
// a reader nor a subscription left (g.mu held).
func (g *group) dropIfEmptyLocked() {
	if len(g.readers) > 0 {
		return
	}
	reg := g.reg
	reg.mu.Lock()
	drop := g.refs == 0 && reg.groups[g.key] == g
	if drop {
		delete(reg.groups, g.key)
	}
	reg.mu.Unlock()
	if drop {
		g.stopTp()
	}
}

// release drops a subscription's reference to g.
func (g *group) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reg.mu.Lock()
	g.refs--
	g.reg.mu.Unlock()
	g.dropIfEmptyLocked()
}

// nextReaderID numbers the readers of a datastore: fs-1a2b3c4d-1, -2, ...
func (reg *Registry) nextReaderID(g *group) string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.seq[g.id]++
	return fmt.Sprintf("%s-%d", g.id, reg.seq[g.id])
}

// ReaderStats is one reader's figures.
type ReaderStats struct {
	ID          string
	Datastore   string // the datastore's id (kind and hash)
	Subscribers int
	Next        uint32 // the next ledger it hands out
	CatchingUp  bool   // another reader of its datastore is ahead of it
	Ledgers     int64
	Objects     int64
	Bytes       int64 // raw (decompressed) LedgerCloseMeta bytes
	Performed   int64 // full decodes done by its subscribers
	Shared      int64 // decodes a subscriber used that another one did
	Cuts        int64 // subscribers cut off for holding the stream
}

// Readers returns the figures of every live reader, sorted by id.
func (reg *Registry) Readers() []ReaderStats {
	reg.mu.Lock()
	groups := slices.Collect(maps.Values(reg.groups))
	reg.mu.Unlock()
	var out []ReaderStats
	for _, g := range groups {
		g.mu.Lock()
		for _, r := range g.readers {
			out = append(out, r.statsLocked())
		}
		g.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ReaderStats) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// readerLogger is the logger of a shared reader of spec: the registry's, with the secrets of the
// datastore's parameters hidden (URL user info and query values, keys that name a secret,
// internal/redact), since the reader's lines belong to no single pipeline's redactor. Its
// errors reach each subscribed pipeline, whose own redactor hides them.
func (reg *Registry) readerLogger(spec Spec) *slog.Logger {
	cfg := make(map[string]any, len(spec.DataStore.Params))
	for k, v := range spec.DataStore.Params {
		cfg[k] = v
	}
	r := redact.New(redact.Collect(cfg)...)
	if r.Empty() {
		return reg.log
	}
	return slog.New(r.Handler(reg.log.Handler()))
}
