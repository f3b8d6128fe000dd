// Package component owns the contract between the pipeline host and the components it runs:
// the Source, Processor and Consumer interfaces, the Record a processor emits, the Env a
// constructor receives, and the Registry that maps CDP type names to constructors.
//
// A pipeline is source -> processors (a chain) -> consumers (a fan-out). The unit that travels
// is one ledger: the source emits *ledger.Ledger values; each processor receives the ledger and
// the records of the processor before it (nil for the first) and returns its own records; every
// consumer receives the ledger and the records of the last processor. Per-ledger batches keep
// checkpoints exact: when every consumer has durably accepted ledger N, N is checkpointed.
//
// Ledger lifetime: a ledger's raw bytes live in a pooled buffer (ledger.CopyPooled) that the
// host hands back to the pool as soon as every consumer's Consume for that ledger returned; the
// next ledger, of this or any other pipeline, may be copied into it at once. So a Process or
// Consume call may read l.Raw(), l.View() and l.Decoded() while it runs, but must not keep any
// of them, or anything that aliases them (sub-slices of Raw, views derived from View, byte
// slices read through a view, the decoded value or pointers into it), after it returns, and
// must not hand them to a goroutine that outlives the call. Copy what you keep: records hold
// strings (string(b) and base64/hex encodings copy), numbers and freshly built JSON, never a
// []byte or xdr view taken from the ledger. l.Sequence() and l.CloseTime() are plain values
// and stay valid forever.
package component

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/source/readers"
)

// Kind is the role of a component in a pipeline.
type Kind string

const (
	KindSource    Kind = "source"
	KindProcessor Kind = "processor"
	KindConsumer  Kind = "consumer"
)

// Source yields ledgers.
type Source interface {
	// Run emits ledgers in order starting at from (inclusive) until the configured end_ledger
	// (then it returns nil) or until ctx is cancelled (then it returns ctx.Err()). emit blocks
	// while the pipeline is busy (backpressure); if emit returns an error, Run returns it.
	// emit takes over the ledger (and its reference, if pooled) whether or not it succeeds:
	// the source must not use it, nor emit it again, after the call.
	Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error
	// Range is the configured range: start_ledger and end_ledger (0 = unbounded, follow the tip).
	Range() (start, end uint32)
	// Close releases resources. Called once, after Run returned.
	Close() error
}

// Processor turns a ledger (and the records of the processor before it in the chain, nil for
// the first) into records. Process must not retain l.Raw()/View() data or the decoded value
// after the call returns (see "Ledger lifetime" above); copy what you keep.
type Processor interface {
	Process(ctx context.Context, l *ledger.Ledger, in []Record) ([]Record, error)
}

// Consumer accepts the records of one ledger at a time, in ledger order.
type Consumer interface {
	// Consume accepts the records a pipeline produced for ledger l (possibly none). A consumer
	// that buffers reports how far it is durable through Durable. It may keep the records, but
	// must not retain l.Raw()/View() data or the decoded value after the call returns (see
	// "Ledger lifetime" above); copy what you keep.
	Consume(ctx context.Context, l *ledger.Ledger, recs []Record) error
	// Flush makes everything accepted so far durable.
	Flush(ctx context.Context) error
	// Close flushes and releases resources. Called once.
	Close(ctx context.Context) error
}

// Durable is implemented by consumers that buffer: DurableLedger is the highest ledger whose
// records (and every earlier ledger's) are durable; 0 when none is yet. A consumer without it
// is durable as soon as Consume returns nil.
type Durable interface {
	DurableLedger() uint32
}

// TimedFlusher is implemented by consumers that buffer (Parquet, DuckDB, COPY batches): besides
// flushing on size, they are flushed by the host when FlushInterval has passed since the first
// ledger accepted after their last flush, so that a pipeline at the tip makes its rows durable
// (and its checkpoint moves) within the interval. The host calls Flush from the consumer's own
// goroutine, between two Consume calls. 0 means no timed flush.
type TimedFlusher interface {
	FlushInterval() time.Duration
}

// Positioned is implemented by consumers that keep their own cursor with their data (the
// PostgreSQL sink writes its rows and its last ledger in one transaction). Position returns
// the last ledger the consumer holds; ok is false when it holds none.
type Positioned interface {
	Position(ctx context.Context) (last uint32, ok bool, err error)
}

// StatsReporter is implemented by components that report stats (docs/design.md "The component contract"): flat
// key -> value, e.g. "processed_ledgers", "events_found". The host prefixes keys with
// "<kind>.<Name>." and stamps the time of the last change.
type StatsReporter interface {
	Stats() map[string]float64
}

// Starter is implemented by components that open resources (files, connections, servers).
// Constructors are side-effect free (they decode and validate config only), so a config can
// be checked by constructing its components; the host calls Start before the first ledger and
// Close (for consumers) or Close (sources) afterwards, also when Start failed.
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is implemented by processors that hold resources; the host calls it when the
// pipeline stops.
type Closer interface {
	Close() error
}

// HealthReporter is implemented by components that can tell their own health (e.g. a sink
// whose database is unreachable): "" or "healthy" when fine, else a short reason.
type HealthReporter interface {
	Health() string
}

// Record is one output row of a processor. Records are structs (or pointers to structs) whose
// exported fields carry `json:"name"` tags (the column names; the field names follow
// the Stellar analytics tables). A pointer field is nullable (nil = SQL NULL / Parquet null).
// Supported field types: string, bool, int, int32, int64, uint32, uint64, float64,
// time.Time, []string, json.RawMessage (JSON text) and pointers to those.
type Record interface {
	// RecordKind names the record's schema, e.g. "contract_event"; the default table name of
	// the sinks. Every record of one kind has the same Go type.
	RecordKind() string
	// NaturalKey is unique among records of its kind across the network (it includes the
	// network and the ledger sequence), so sinks can upsert and replays never double rows.
	NaturalKey() string
}

// Env is what a constructor receives besides its config.
type Env struct {
	Pipeline string               // pipeline name
	Name     string               // component name in the pipeline: <Type> or <Type>_2 ...
	Logger   *slog.Logger         // carries pipeline and component attributes
	Metrics  *prometheus.Registry // the pipeline incarnation's own registry (fresh per start)
	StateDir string               // a directory private to this pipeline (may be "")
	Now      func() time.Time     // injectable clock
	// Network is the pipeline's network as its source names it (`network`, e.g. "pubnet", or
	// else its `network_passphrase`); processors that name none follow it. May be "".
	Network string
	// Decodes counts full ledger decodes of this pipeline (performed by it, or shared from
	// another pipeline's); sources pass it to ledger.New / ledger.Copy / ledger.CopyPooled and
	// to their shared reader's subscription. May be nil.
	Decodes *ledger.Decodes
	// Readers is the daemon's registry of shared datastore readers (one per daemon, owned by
	// the host): storage sources subscribe to it instead of reading on their own, and every
	// source charges its ledgers to its budget (Readers.Budget()). May be nil: each source
	// reads on its own, without a budget.
	Readers *readers.Registry
}

// NeedsDecode is implemented by processors that read the full decode of every ledger
// (l.Decoded: TokenTransfer, effects, participants, ledger changes, account data, ...). A
// pipeline with such a processor decodes its ledgers ahead, on parallel workers, in order
// (the decoded value is shared with every other pipeline holding the ledger). A processor
// that decodes only some ledgers, or none, does not implement it (or returns false).
type NeedsDecode interface {
	NeedsDecode() bool
}

// Preparer is implemented by full-decode processors whose per-ledger work can start ahead of
// the pipeline's order: the decode-ahead workers call Prepare on each ledger after decoding
// it, concurrently for different ledgers (and for ledgers other pipelines hold too), so that
// work runs on every core as the decode does. Prepare may only compute values memoised on the
// ledger (ledger.Derive, ledger.DeriveView), which Process then reads in order; it must not
// touch the processor's own state. Its errors are not handled: Process meets them again.
type Preparer interface {
	Prepare(l *ledger.Ledger)
}

// ReaderReporter is implemented by sources that read through a shared reader: which reader
// serves the pipeline and how (docs/design.md "Shared readers").
type ReaderReporter interface {
	ReaderState() ReaderState
}

// ReaderState is a source's reader: its id (as in the cdpd_reader_* metrics), the datastore's
// id, the mode (shared: in the shared stream; catching_up: on a reader of its own behind it;
// own: share: false) and the reader's subscribers.
type ReaderState struct {
	Reader      string
	Datastore   string
	Mode        string
	Subscribers int
	// The reader's figures: objects, bytes and ledgers read, decodes performed and shared.
	ObjectsRead, BytesRead, LedgersRead int64
	DecodesPerformed, DecodesShared     int64
}

// Stats of one component as the host reports it (docs/design.md "The component contract").
type Stats struct {
	Kind    Kind
	Type    string
	Name    string
	Values  map[string]float64
	Updated time.Time
}
