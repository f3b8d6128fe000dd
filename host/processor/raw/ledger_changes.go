package raw

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// LedgerChange is one ledger entry change as LedgerChanges emits it: upstream's LedgerChange
// fields plus why the change happened, its position and the entries' XDR.
type LedgerChange struct {
	Timestamp        time.Time        `json:"timestamp"` // the ledger's close time
	LedgerSequence   uint32           `json:"ledger_sequence"`
	TransactionHash  *string          `json:"transaction_hash"`  // null for upgrade changes
	TransactionIndex *int             `json:"transaction_index"` // 1-based apply order; null for upgrade changes
	OperationIndex   int              `json:"operation_index"`   // 0-based; -1 when no operation made the change
	Reason           string           `json:"reason"`            // fee|transaction|operation|fee_refund|upgrade
	ChangeType       string           `json:"change_type"`       // created|updated|removed|restored
	EntryType        string           `json:"entry_type"`        // xdr.LedgerEntryType name, e.g. LedgerEntryTypeAccount
	EntryKey         string           `json:"entry_key"`         // hex XDR of the entry's LedgerKey
	PreState         *json.RawMessage `json:"pre_state"`         // the entry before (null when created or restored)
	PostState        *json.RawMessage `json:"post_state"`        // the entry after (null when removed)
	PreStateXDR      *string          `json:"pre_state_xdr"`     // base64 XDR LedgerEntry
	PostStateXDR     *string          `json:"post_state_xdr"`
	ChangeIndex      int              `json:"change_index"` // position in the SDK change reader's order

	network string
}

// RecordKind implements component.Record.
func (LedgerChange) RecordKind() string { return "ledger_changes" }

// NaturalKey implements component.Record: network, ledger and the change's position.
func (r LedgerChange) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, strconv.Itoa(r.ChangeIndex))
}

type ledgerChangesConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	// BatchSize is accepted for upstream's files; upstream reads it but never uses it.
	BatchSize uint32 `mapstructure:"batch_size"`
}

// LedgerChanges emits every ledger entry change of the ledger, one LedgerChange each, in the
// order of the SDK's ledger change reader (ingest.NewLedgerChangeReaderFromLedgerCloseMeta on
// the shared decoded ledger): fee charges, then each transaction's changes (its own and its
// operations'), then post-apply fee refunds, then upgrades. A change is the SDK's pairing of
// an entry's state before and after (a created, updated, removed or restored entry), so a raw
// STATE entry is never a row of its own. pre_state / post_state are the entries as JSON in
// the form upstream writes them (Go's encoding of the SDK's xdr types); the *_xdr columns
// hold the same entries as base64 XDR. It ignores its input records. Keyed by network, ledger
// and position, so a replay upserts.
//
// Upstream differences (bugs there): upstream emits the operation changes of V1 meta twice
// (once from the transaction's changes, once from the raw operation meta) and never those of
// later meta versions; it leaves out fee changes and upgrades, gives removed entries no
// pre_state, and drops a change it fails to encode (at most once). Here every change is
// emitted once and an error fails the ledger. Upstream's always-empty `changes` map is not
// emitted.
type LedgerChanges struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewLedgerChanges is the LedgerChanges constructor.
func NewLedgerChanges(c *ledgerChangesConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("LedgerChanges", env)
	if err != nil {
		return nil, err
	}
	return &LedgerChanges{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers", "last_ledger",
		"last_processed_time", "changes_found", "created", "updated", "removed", "restored")}, nil
}

// Stats implements component.StatsReporter.
func (p *LedgerChanges) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *LedgerChanges) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *LedgerChanges) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return nil, fmt.Errorf("LedgerChanges: %w", err)
	}
	var out []component.Record
	kinds := map[string]int{}
	if err := eachChange(ctx, p.net.Passphrase, lcm, func(ch ingest.Change) error {
		r, err := p.record(ch, l, len(out))
		if err != nil {
			return fmt.Errorf("change %d: %w", len(out), err)
		}
		kinds[r.ChangeType]++
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("LedgerChanges: ledger %d: %w", l.Sequence(), err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["changes_found"] += float64(len(out))
		for k, n := range kinds {
			m[k] += float64(n)
		}
	})
	return out, nil
}

// changeTypeName names a change the way upstream's change_type column does.
func changeTypeName(t xdr.LedgerEntryChangeType) (string, error) {
	switch t {
	case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
		return "created", nil
	case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
		return "updated", nil
	case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
		return "removed", nil
	case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
		return "restored", nil
	}
	return "", fmt.Errorf("unexpected change type %v", t)
}

var reasonNames = map[ingest.LedgerEntryChangeReason]string{
	ingest.LedgerEntryChangeReasonFee:         "fee",
	ingest.LedgerEntryChangeReasonTransaction: "transaction",
	ingest.LedgerEntryChangeReasonOperation:   "operation",
	ingest.LedgerEntryChangeReasonFeeRefund:   "fee_refund",
	ingest.LedgerEntryChangeReasonUpgrade:     "upgrade",
}

func (p *LedgerChanges) record(ch ingest.Change, l *ledger.Ledger, idx int) (LedgerChange, error) {
	r := LedgerChange{network: p.net.Name, Timestamp: l.CloseTime(), LedgerSequence: l.Sequence(), ChangeIndex: idx,
		OperationIndex: -1, EntryType: ch.Type.String()}
	var err error
	if r.ChangeType, err = changeTypeName(ch.ChangeType); err != nil {
		return r, err
	}
	var ok bool
	if r.Reason, ok = reasonNames[ch.Reason]; !ok {
		return r, fmt.Errorf("unknown change reason %d", ch.Reason)
	}
	if tx := ch.Transaction; tx != nil {
		h, i := tx.Hash.HexString(), int(tx.Index)
		r.TransactionHash, r.TransactionIndex = &h, &i
	}
	if ch.Reason == ingest.LedgerEntryChangeReasonOperation {
		r.OperationIndex = int(ch.OperationIndex)
	}
	key, err := ch.LedgerKey()
	if err != nil {
		return r, fmt.Errorf("building the ledger key: %w", err)
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		return r, fmt.Errorf("encoding the ledger key: %w", err)
	}
	r.EntryKey = hex.EncodeToString(kb)
	if r.PreState, r.PreStateXDR, err = entryForms(ch.Pre); err != nil {
		return r, fmt.Errorf("encoding the entry before: %w", err)
	}
	if r.PostState, r.PostStateXDR, err = entryForms(ch.Post); err != nil {
		return r, fmt.Errorf("encoding the entry after: %w", err)
	}
	return r, nil
}

// entryForms is an entry as upstream's JSON and as base64 XDR (nil, nil for no entry). The
// entry belongs to the shared decoded ledger: both encodings only read it.
func entryForms(e *xdr.LedgerEntry) (*json.RawMessage, *string, error) {
	if e == nil {
		return nil, nil, nil
	}
	j, err := json.Marshal(e)
	if err != nil {
		return nil, nil, err
	}
	b64, err := xdr.MarshalBase64(e)
	if err != nil {
		return nil, nil, err
	}
	raw := json.RawMessage(j)
	return &raw, &b64, nil
}
