package contract

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// ContractEventRecord is one Soroban contract event as a row of Hubble's
// history_contract_events table (stellar-etl's ContractEventOutput), plus the positional
// columns every cdpd record carries (transaction_index, operation_index, event_index).
//
// As in stellar-etl: transaction-level events (protocol 23+, e.g. fee events) come first and
// have a null operation_id, then each operation's events; in_successful_contract_call is true
// for every non-diagnostic event; topics are the base64 XDR of each topic ScVal;
// contract_event_xdr is the base64 XDR of the event wrapped as a DiagnosticEvent.
// Diagnostic events are not emitted (they are a debugging aid, not part of the ledger's
// consensus events).
type ContractEventRecord struct {
	TransactionHash          string          `json:"transaction_hash"`
	TransactionID            int64           `json:"transaction_id"`
	Successful               bool            `json:"successful"`
	InSuccessfulContractCall bool            `json:"in_successful_contract_call"`
	ContractID               *string         `json:"contract_id"` // null for events without a contract
	Type                     int32           `json:"type"`
	TypeString               string          `json:"type_string"`
	Topics                   []string        `json:"topics"`
	TopicsDecoded            json.RawMessage `json:"topics_decoded"`
	Data                     string          `json:"data"`
	DataDecoded              json.RawMessage `json:"data_decoded"`
	ContractEventXDR         string          `json:"contract_event_xdr"`
	LedgerSequence           uint32          `json:"ledger_sequence"`
	ClosedAt                 time.Time       `json:"closed_at"`
	OperationID              *int64          `json:"operation_id"`      // null for transaction-level events
	TransactionIndex         int             `json:"transaction_index"` // 1-based, apply order
	OperationIndex           *int            `json:"operation_index"`   // 0-based; null for transaction-level events
	EventIndex               int             `json:"event_index"`       // position within the transaction

	network      string
	opEventIndex int // position within its operation's events (or the transaction-level events)
}

// RecordKind implements component.Record.
func (ContractEventRecord) RecordKind() string { return "contract_events" }

// NaturalKey implements component.Record: network, ledger, transaction and event position.
func (r ContractEventRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.EventIndex))
}

type contractEventConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	ContractID              string   `mapstructure:"contract_id"`
	ContractIDs             []string `mapstructure:"contract_ids"`
	EventTypes              []string `mapstructure:"event_types"`
	IncludeFailed           *bool    `mapstructure:"include_failed"`
}

// ContractEvent emits every contract event of every transaction, read through the ledger's
// zero-copy view (processor.TxPartsAndEvents: what the SDK's ingest.ExtractLedgerTxParts +
// ingest.EventsFromTxParts give, in one walk): the ledger is never fully decoded, and only the
// topics and data of events that pass the filters are decoded.
//
// Config: network | network_passphrase; contract_id / contract_ids (C... strkeys; only events of
// these contracts; upstream's kwickbit file names one with contract_id); event_types (contract,
// system, diagnostic; also ContractEventTypeContract or 0/1/2, as upstream's
// StellarContractEvent takes them: `event_types: [1]`); include_failed (default true: events of
// failed transactions, such as their fee events, are emitted with successful=false).
//
// Upstream differences: upstream's ContractEvent emits only contract-type events of successful
// transactions and takes no filters (its file's contract_id was ignored); here every event
// is emitted unless filtered, and contract_id is honoured.
type ContractEvent struct {
	net           processor.NetID
	contracts     contractSet
	types         map[xdr.ContractEventType]struct{}
	includeFailed bool
	now           func() time.Time
	stats         *processor.Counters
}

// NewContractEvent is the ContractEvent constructor.
func NewContractEvent(c *contractEventConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ContractEvent", env)
	if err != nil {
		return nil, err
	}
	p := &ContractEvent{net: net, includeFailed: c.IncludeFailed == nil || *c.IncludeFailed, now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "events_found", "successful_events", "failed_events",
			"events_filtered", "last_ledger", "last_processed_time")}
	if p.contracts, err = parseContracts("ContractEvent", map[string][]string{"contract_id": {c.ContractID}, "contract_ids": c.ContractIDs}); err != nil {
		return nil, err
	}
	for _, t := range c.EventTypes {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		et, err := parseEventType(t)
		if err != nil {
			return nil, fmt.Errorf("ContractEvent: event_types: %w", err)
		}
		if p.types == nil {
			p.types = map[xdr.ContractEventType]struct{}{}
		}
		p.types[et] = struct{}{}
	}
	return p, nil
}

func parseEventType(s string) (xdr.ContractEventType, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "ContractEventType")) {
	case "system", "0":
		return xdr.ContractEventTypeSystem, nil
	case "contract", "1":
		return xdr.ContractEventTypeContract, nil
	case "diagnostic", "2":
		return xdr.ContractEventTypeDiagnostic, nil
	}
	return 0, fmt.Errorf("unknown event type %q (want contract, system or diagnostic)", s)
}

// Stats implements component.StatsReporter.
func (p *ContractEvent) Stats() map[string]float64 { return p.stats.Snapshot() }

// diagnosticPrefix is the XDR of DiagnosticEvent.inSuccessfulContractCall = true, which
// precedes the ContractEvent in contract_event_xdr (as stellar-etl writes it).
var diagnosticPrefix = []byte{0, 0, 0, 1}

// Process implements component.Processor. The input records are ignored.
func (p *ContractEvent) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	seq := l.Sequence()
	parts, events, err := processor.TxPartsAndEvents(l)
	if err != nil {
		return nil, fmt.Errorf("ContractEvent: %w", err)
	}
	var out []component.Record
	var ok, failed, filtered int
	for i := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !processor.HasEvents(events[i]) {
			continue // most transactions: nothing to read, encode or count
		}
		tx := txInfo{seq: seq, index: i + 1, closedAt: l.CloseTime()}
		if err := processor.Try(func() { tx.successful = processor.Must(parts[i].Result.MustResult().Successful()) }); err != nil {
			return nil, fmt.Errorf("ContractEvent: ledger %d transaction %d: reading result: %w", seq, i+1, err)
		}
		if !tx.successful && !p.includeFailed {
			continue
		}
		tx.hash = hex.EncodeToString(parts[i].Hash[:])
		tx.id = processor.TransactionID(seq, i+1)
		idx := 0
		emit := func(raw []byte, op, opIdx int) error {
			defer func() { idx++ }()
			rec, keep, err := p.event(tx, raw, op, idx)
			rec.opEventIndex = opIdx
			if err != nil {
				return fmt.Errorf("ContractEvent: ledger %d transaction %s event %d: %w", seq, tx.hash, idx, err)
			}
			if !keep {
				filtered++
				return nil
			}
			if tx.successful {
				ok++
			} else {
				failed++
			}
			out = append(out, rec)
			return nil
		}
		for j, raw := range events[i].TransactionEvents {
			inner, err := xdr.Try(func() []byte { return xdr.TransactionEventView(raw).MustEvent().MustRaw() })
			if err != nil {
				return nil, fmt.Errorf("ContractEvent: ledger %d transaction %s: reading transaction event: %w", seq, tx.hash, err)
			}
			if err := emit(inner, -1, j); err != nil {
				return nil, err
			}
		}
		for op, list := range events[i].OperationEvents {
			for j, raw := range list {
				if err := emit(raw, op, j); err != nil {
					return nil, err
				}
			}
		}
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, seq, p.now())
		m["events_found"] += float64(ok + failed)
		m["successful_events"] += float64(ok)
		m["failed_events"] += float64(failed)
		m["events_filtered"] += float64(filtered)
	})
	return out, nil
}

type txInfo struct {
	seq        uint32
	index      int
	closedAt   time.Time
	successful bool
	hash       string
	id         int64
}

// event builds the record of one raw ContractEvent (op < 0: a transaction-level event). The
// filters run on the type and contract id read from the view, before anything is decoded.
func (p *ContractEvent) event(tx txInfo, raw []byte, op, idx int) (ContractEventRecord, bool, error) {
	var (
		rec    ContractEventRecord
		keep   = true
		topics [][]byte
		data   []byte
	)
	err := processor.Try(func() {
		ev := xdr.ContractEventView(raw)
		typ := ev.MustType().MustValue()
		if p.types != nil {
			if _, want := p.types[typ]; !want {
				keep = false
				return
			}
		}
		cid, hasCID := ev.MustContractId().MustUnwrap()
		if !p.contracts.all() && (!hasCID || !p.contracts.hasID(cid.MustRaw())) {
			keep = false
			return
		}
		if hasCID {
			s, err := strkey.Encode(strkey.VersionByteContract, cid.MustRaw())
			processor.Must(0, err)
			rec.ContractID = &s
		}
		body := ev.MustBody()
		if v := body.MustV(); v != 0 {
			processor.Fail("unsupported contract event body version %d", v)
		}
		v0 := body.MustV0()
		for t := range v0.MustTopics().MustIter() {
			topics = append(topics, t.MustRaw())
		}
		data = v0.MustData().MustRaw()
		rec.Type = int32(typ)
		rec.TypeString = typ.String()
		rec.ContractEventXDR = base64.StdEncoding.EncodeToString(append(append(make([]byte, 0, 4+len(raw)), diagnosticPrefix...), ev.MustRaw()...))
	})
	if err != nil || !keep {
		return rec, false, err
	}

	decoded := make([]xdr.ScVal, len(topics))
	rec.Topics = make([]string, len(topics))
	for i, t := range topics {
		rec.Topics[i] = base64.StdEncoding.EncodeToString(t)
		if err := xdr.SafeUnmarshal(t, &decoded[i]); err != nil {
			return rec, false, fmt.Errorf("decoding topic %d: %w", i, err)
		}
	}
	if rec.TopicsDecoded, err = processor.ScValsJSON(decoded); err != nil {
		return rec, false, fmt.Errorf("rendering topics: %w", err)
	}
	rec.Data = base64.StdEncoding.EncodeToString(data)
	var dv xdr.ScVal
	if err := xdr.SafeUnmarshal(data, &dv); err != nil {
		return rec, false, fmt.Errorf("decoding data: %w", err)
	}
	if rec.DataDecoded, err = processor.ScValJSON(dv); err != nil {
		return rec, false, fmt.Errorf("rendering data: %w", err)
	}

	rec.network = p.net.Name
	rec.TransactionHash = tx.hash
	rec.TransactionID = tx.id
	rec.Successful = tx.successful
	rec.InSuccessfulContractCall = true
	rec.LedgerSequence = tx.seq
	rec.ClosedAt = tx.closedAt
	rec.TransactionIndex = tx.index
	rec.EventIndex = idx
	if op >= 0 {
		opID := processor.OperationID(tx.seq, tx.index, op)
		opIdx := op
		rec.OperationID = &opID
		rec.OperationIndex = &opIdx
	}
	return rec, true, nil
}
