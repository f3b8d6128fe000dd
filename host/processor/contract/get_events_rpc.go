package contract

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	protocol "github.com/stellar/go-stellar-sdk/protocols/rpc"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/toid"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// RPCEventRecord is one contract event in the shape Stellar RPC's getEvents returns it (the
// SDK's protocols/rpc EventInfo, same JSON names): id is RPC's event id
// ("<TOID>-<event index>", zero-padded), which also orders the events.
//
// topic and value are always the base64 XDR of the topics and the data (RPC's xdrFormat
// "base64"); topicJson and valueJson are their JSON rendering when xdrFormat is "json" (RPC
// sends only the JSON then; both are kept here so a table has one shape), null otherwise.
type RPCEventRecord struct {
	Type                     string          `json:"type"` // contract | system
	Ledger                   uint32          `json:"ledger"`
	LedgerClosedAt           time.Time       `json:"ledgerClosedAt"` // UTC, whole seconds (RPC's RFC 3339 string)
	ContractID               string          `json:"contractId"`     // "" for an event without a contract
	ID                       string          `json:"id"`
	OperationIndex           uint32          `json:"operationIndex"`
	TransactionIndex         uint32          `json:"transactionIndex"`
	TxHash                   string          `json:"txHash"`
	InSuccessfulContractCall bool            `json:"inSuccessfulContractCall"` // whether the transaction succeeded
	Topic                    []string        `json:"topic"`
	Value                    string          `json:"value"`
	TopicJSON                json.RawMessage `json:"topicJson"`
	ValueJSON                json.RawMessage `json:"valueJson"`

	network string
	cursor  protocol.Cursor
}

// RecordKind implements component.Record.
func (RPCEventRecord) RecordKind() string { return "rpc_events" }

// NaturalKey implements component.Record: network, ledger and RPC's event id.
func (r RPCEventRecord) NaturalKey() string {
	return processor.Key(r.network, r.Ledger, r.ID)
}

func (r RPCEventRecord) contractAddress() string { return r.ContractID }

type getEventsRPCConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	Filters                 []rpcFilterConfig `mapstructure:"filters"`
	XDRFormat               string            `mapstructure:"xdrFormat"`
}

func (c *getEventsRPCConfig) SetDefaults() { c.XDRFormat = protocol.FormatJSON }

// GetEventsRPC emits the ledger's contract events as Stellar RPC's getEvents would return
// them, read from the ledger's zero-copy view (processor.TxPartsAndEvents: what the SDK's
// ingest.ExtractLedgerTxParts + ingest.EventsFromTxParts give, in one walk): the ledger is
// never fully decoded, and an event that no filter can match (by type and contract id) is not
// decoded either.
//
// Upstream pairs GetEventsRPC with an RPCSourceAdapter whose rpc_method is getEvents and
// whose source config carries the getEvents request (filters, pagination, xdrFormat). In
// cdpd every source emits whole ledgers (the RPC source reads getLedgers), so GetEventsRPC
// takes the events from the ledger and applies the request here: cdpd reads `filters` and
// `xdrFormat` from GetEventsRPC's own config, not from the source's. An upstream file with
// `config: {}` on GetEventsRPC therefore emits every event until its filters are moved (or
// copied) into the processor's config; pagination has no meaning per ledger.
//
// Semantics are Stellar RPC's (stellar-rpc's event ingestion and getEvents): events of every
// transaction, failed ones included (inSuccessfulContractCall false); no diagnostic events;
// ids from the SDK's protocols/rpc Cursor: operation events {ledger, tx, op, index in op},
// transaction-level events by stage (before all transactions {ledger, 0, 0, n}, after a
// transaction {ledger, tx, 4095, n}, after all transactions {ledger, 1048575, 0, n}); records
// come in id order. Filters are matched with the SDK's getEvents matching (EventFilter,
// TopicFilter): note that a topic filter without a trailing "**" matches only events with
// exactly as many topics (["*","*","*","*"] matches 4-topic events).
//
// Config: network | network_passphrase (optional: upstream's getEvents files name none, and
// RPC events need no passphrase; when neither the processor nor the pipeline's source names
// one, records are keyed under the network name "unnamed" — name the network to keep events of
// several networks in one table apart); filters (list of {type, contractIds, topics}, RPC's
// keys and limits); xdrFormat (json (default, as upstream's files ask) or base64).
//
// Upstream differences: upstream's GetEventsRPC re-emitted the source's getEvents response.
// Upstream's SorobanSourceAdapter never forwarded that response, and its RPCSourceAdapter sent
// the same getEvents request again at every poll, so a pipeline either produced nothing or the
// same events again and again; here each event of each ledger is emitted once, one record per
// event.
// Replays upsert on the natural key (network, ledger, id).
type GetEventsRPC struct {
	net     processor.NetID
	filters rpcFilters
	json    bool
	now     func() time.Time
	stats   *processor.Counters
}

// unnamedNetwork keys the events of a getEvents pipeline that names no network.
var unnamedNetwork = processor.NetID{Name: "unnamed"}

// NewGetEventsRPC is the GetEventsRPC constructor.
func NewGetEventsRPC(c *getEventsRPCConfig, env component.Env) (component.Processor, error) {
	net := unnamedNetwork
	if c.Network != "" || c.NetworkPassphrase != "" || env.Network != "" {
		var err error
		if net, err = c.ResolveFor("GetEventsRPC", env); err != nil {
			return nil, err
		}
	}
	p := &GetEventsRPC{net: net, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "events_found", "events_filtered", "last_ledger", "last_processed_time")}
	switch f := strings.TrimSpace(c.XDRFormat); f {
	case protocol.FormatJSON, "":
		p.json = true
	case protocol.FormatBase64, "xdr":
	default:
		return nil, fmt.Errorf("GetEventsRPC: xdrFormat %q (want json or base64)", c.XDRFormat)
	}
	var err error
	if p.filters, err = parseRPCFilters("GetEventsRPC", c.Filters); err != nil {
		return nil, err
	}
	return p, nil
}

// Stats implements component.StatsReporter.
func (p *GetEventsRPC) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *GetEventsRPC) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	seq := l.Sequence()
	parts, events, err := processor.TxPartsAndEvents(l)
	if err != nil {
		return nil, fmt.Errorf("GetEventsRPC: %w", err)
	}
	var recs []RPCEventRecord
	filtered := 0
	var beforeAll, afterAll uint32 // ledger-wide counters of the two ledger-wide stages
	for i := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !processor.HasEvents(events[i]) {
			continue
		}
		tx := uint32(i + 1) //nolint:gosec // tx counts fit
		var ok bool
		if err := processor.Try(func() { ok = processor.Must(parts[i].Result.MustResult().Successful()) }); err != nil {
			return nil, fmt.Errorf("GetEventsRPC: ledger %d transaction %d: reading result: %w", seq, tx, err)
		}
		hash := hex.EncodeToString(parts[i].Hash[:])
		var afterTx uint32
		emit := func(raw []byte, cur protocol.Cursor) error {
			rec, keep, err := p.event(raw)
			if err != nil {
				return fmt.Errorf("GetEventsRPC: ledger %d transaction %s event %s: %w", seq, hash, cur, err)
			}
			if !keep {
				filtered++
				return nil
			}
			rec.network, rec.cursor = p.net.Name, cur
			rec.Ledger, rec.LedgerClosedAt, rec.TxHash, rec.InSuccessfulContractCall = seq, l.CloseTime().UTC(), hash, ok
			rec.ID, rec.TransactionIndex, rec.OperationIndex = cur.String(), cur.Tx, cur.Op
			recs = append(recs, rec)
			return nil
		}
		for _, raw := range events[i].TransactionEvents {
			var stage xdr.TransactionEventStage
			var inner []byte
			if err := processor.Try(func() {
				v := xdr.TransactionEventView(raw)
				stage, inner = v.MustStage().MustValue(), v.MustEvent().MustRaw()
			}); err != nil {
				return nil, fmt.Errorf("GetEventsRPC: ledger %d transaction %s: reading transaction event: %w", seq, hash, err)
			}
			cur := protocol.Cursor{Ledger: seq}
			switch stage {
			case xdr.TransactionEventStageTransactionEventStageBeforeAllTxs:
				cur.Event = beforeAll
				beforeAll++
			case xdr.TransactionEventStageTransactionEventStageAfterTx:
				cur.Tx, cur.Op, cur.Event = tx, toid.OperationMask, afterTx
				afterTx++
			case xdr.TransactionEventStageTransactionEventStageAfterAllTxs:
				cur.Tx, cur.Event = toid.TransactionMask, afterAll
				afterAll++
			default:
				return nil, fmt.Errorf("GetEventsRPC: ledger %d transaction %s: unknown transaction event stage %d", seq, hash, stage)
			}
			if err := emit(inner, cur); err != nil {
				return nil, err
			}
		}
		for op, list := range events[i].OperationEvents {
			for j, raw := range list {
				cur := protocol.Cursor{Ledger: seq, Tx: tx, Op: uint32(op), Event: uint32(j)} //nolint:gosec // small indices
				if err := emit(raw, cur); err != nil {
					return nil, err
				}
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b RPCEventRecord) int { return a.cursor.Cmp(b.cursor) })
	out := make([]component.Record, len(recs))
	for i := range recs {
		out[i] = recs[i]
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, seq, p.now())
		m["events_found"] += float64(len(out))
		m["events_filtered"] += float64(filtered)
	})
	return out, nil
}

// event builds the record of one raw ContractEvent (without its position), or keep=false
// when the filters reject it. Type and contract id are read from the view first; the topics
// and data are decoded only for an event some filter may match.
func (p *GetEventsRPC) event(raw []byte) (RPCEventRecord, bool, error) {
	var (
		rec    RPCEventRecord
		ev     xdr.ContractEvent
		topics [][]byte
		data   []byte
		keep   = true
	)
	err := processor.Try(func() {
		v := xdr.ContractEventView(raw)
		ev.Type = v.MustType().MustValue()
		cid, has := v.MustContractId().MustUnwrap()
		var id []byte
		if has {
			id = cid.MustRaw()
		}
		if !p.filters.mayMatch(ev.Type, id) {
			keep = false
			return
		}
		if has {
			c := xdr.ContractId(id)
			ev.ContractId = &c
			rec.ContractID = processor.Must(strkey.Encode(strkey.VersionByteContract, id))
		}
		body := v.MustBody()
		if bv := body.MustV(); bv != 0 {
			processor.Fail("unsupported contract event body version %d", bv)
		}
		v0 := body.MustV0()
		for t := range v0.MustTopics().MustIter() {
			topics = append(topics, t.MustRaw())
		}
		data = v0.MustData().MustRaw()
	})
	if err != nil || !keep {
		return rec, false, err
	}
	name, known := eventTypeNames[ev.Type]
	if !known || ev.Type == xdr.ContractEventTypeDiagnostic {
		return rec, false, fmt.Errorf("unexpected event type %d", ev.Type)
	}
	rec.Type = name
	body := xdr.ContractEventV0{Topics: make([]xdr.ScVal, len(topics))}
	rec.Topic = make([]string, len(topics))
	for i, t := range topics {
		if err := xdr.SafeUnmarshal(t, &body.Topics[i]); err != nil {
			return rec, false, fmt.Errorf("decoding topic %d: %w", i, err)
		}
		rec.Topic[i] = base64.StdEncoding.EncodeToString(t)
	}
	if err := xdr.SafeUnmarshal(data, &body.Data); err != nil {
		return rec, false, fmt.Errorf("decoding data: %w", err)
	}
	ev.Body = xdr.ContractEventBody{V: 0, V0: &body}
	if !p.filters.matches(ev) {
		return rec, false, nil
	}
	rec.Value = base64.StdEncoding.EncodeToString(data)
	if p.json {
		if rec.TopicJSON, err = processor.ScValsJSON(body.Topics); err != nil {
			return rec, false, fmt.Errorf("rendering topics: %w", err)
		}
		if rec.ValueJSON, err = processor.ScValJSON(body.Data); err != nil {
			return rec, false, fmt.Errorf("rendering data: %w", err)
		}
	}
	return rec, true, nil
}
