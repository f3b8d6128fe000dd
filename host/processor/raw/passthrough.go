package raw

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// PassthroughLedger is the ledger as Passthrough forwards it: upstream's key fields and, by
// default, the whole LedgerCloseMeta as base64 XDR.
type PassthroughLedger struct {
	LedgerSequence            uint32    `json:"ledger_sequence"`
	LedgerHash                string    `json:"ledger_hash"`
	ProtocolVersion           uint32    `json:"protocol_version"`
	CloseTime                 int64     `json:"close_time"` // unix seconds
	ClosedAt                  time.Time `json:"closed_at"`
	BaseFee                   uint32    `json:"base_fee"`
	BaseReserve               uint32    `json:"base_reserve"`
	MaxTxSetSize              uint32    `json:"max_tx_set_size"`
	TransactionCount          int       `json:"transaction_count"`
	LedgerVersion             int32     `json:"ledger_version"`                   // LedgerCloseMeta version (0, 1, 2)
	TotalByteSizeSorobanState *uint64   `json:"total_byte_size_of_soroban_state"` // null before LedgerCloseMeta V1
	EvictedKeysCount          *int      `json:"evicted_keys_count"`               // null before LedgerCloseMeta V1
	LedgerXDRBase64           *string   `json:"ledger_xdr_base64"`                // null with include_full_xdr: false
	LedgerXDRSizeBytes        *int      `json:"ledger_xdr_size_bytes"`

	network string
}

// RecordKind implements component.Record.
func (PassthroughLedger) RecordKind() string { return "ledger_passthrough" }

// NaturalKey implements component.Record: network and ledger.
func (r PassthroughLedger) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence)
}

type passthroughConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	IncludeFullXDR          bool `mapstructure:"include_full_xdr"`
	// AddMetadata and IncludeXDRJSON are accepted for upstream's files: upstream's metadata
	// travels beside its message (cdpd's records carry the ledger sequence themselves), and
	// upstream reserves include_xdr_json without implementing it (LedgerToJSON renders JSON).
	AddMetadata    bool `mapstructure:"add_metadata"`
	IncludeXDRJSON bool `mapstructure:"include_xdr_json"`
}

// SetDefaults implements component.Defaulter: include_full_xdr is true, as upstream.
func (c *passthroughConfig) SetDefaults() { c.IncludeFullXDR = true }

// Passthrough forwards its input unchanged: the records of the processor before it, in
// order, followed by the ledger itself as one PassthroughLedger (upstream's Passthrough
// receives the ledger and forwards it with its key fields and its full XDR; in cdpd the
// ledger is part of every processor's input). Read from the zero-copy view, no full decode.
// Keyed by network and ledger, so a replay upserts.
//
// Config: network | network_passphrase; include_full_xdr (default true: ledger_xdr_base64 is
// the ledger's LedgerCloseMeta XDR, byte for byte); add_metadata and include_xdr_json are
// accepted and change nothing. Upstream differences: total_byte_size_of_soroban_state and
// evicted_keys_count are filled for LedgerCloseMeta V2 ledgers too (upstream only reads V1).
type Passthrough struct {
	net     processor.NetID
	fullXDR bool
	now     func() time.Time
	stats   *processor.Counters
}

// NewPassthrough is the Passthrough constructor.
func NewPassthrough(c *passthroughConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("Passthrough", env)
	if err != nil {
		return nil, err
	}
	return &Passthrough{net: net, fullXDR: c.IncludeFullXDR, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "last_ledger", "last_processed_time", "records_forwarded")}, nil
}

// Stats implements component.StatsReporter.
func (p *Passthrough) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor.
func (p *Passthrough) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	r := PassthroughLedger{network: p.net.Name, LedgerSequence: l.Sequence(), ClosedAt: l.CloseTime(), CloseTime: l.CloseTime().Unix()}
	v := l.View()
	if err := processor.Try(func() {
		hdr := processor.Must(v.LedgerHeader())
		r.LedgerHash = fmt.Sprintf("%x", hdr.MustHash().MustRaw())
		h := hdr.MustHeader()
		r.ProtocolVersion = h.MustLedgerVersion().MustValue()
		r.BaseFee = h.MustBaseFee().MustValue()
		r.BaseReserve = h.MustBaseReserve().MustValue()
		r.MaxTxSetSize = h.MustMaxTxSetSize().MustValue()
		r.LedgerVersion = v.MustV()
		var size xdr.Uint64View
		var evicted int
		switch r.LedgerVersion {
		case 0:
			r.TransactionCount = v.MustV0().MustTxProcessing().MustCount()
			return
		case 1:
			m := v.MustV1()
			r.TransactionCount = m.MustTxProcessing().MustCount()
			size, evicted = m.MustTotalByteSizeOfLiveSorobanState(), m.MustEvictedKeys().MustCount()
		case 2:
			m := v.MustV2()
			r.TransactionCount = m.MustTxProcessing().MustCount()
			size, evicted = m.MustTotalByteSizeOfLiveSorobanState(), m.MustEvictedKeys().MustCount()
		default:
			processor.Fail("unknown LedgerCloseMeta version %d", r.LedgerVersion)
		}
		s := size.MustValue()
		r.TotalByteSizeSorobanState, r.EvictedKeysCount = &s, &evicted
	}); err != nil {
		return nil, fmt.Errorf("Passthrough: reading ledger %d: %w", l.Sequence(), err)
	}
	if p.fullXDR {
		b64, n := base64.StdEncoding.EncodeToString(l.Raw()), len(l.Raw())
		r.LedgerXDRBase64, r.LedgerXDRSizeBytes = &b64, &n
	}
	out := make([]component.Record, 0, len(in)+1)
	out = append(append(out, in...), r)
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["records_forwarded"] += float64(len(in))
	})
	return out, nil
}
