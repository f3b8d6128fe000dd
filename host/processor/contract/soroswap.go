package contract

import (
	"context"
	"fmt"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// Soroswap's records, with upstream's field names (type, timestamp, ledger_sequence,
// contract_id, ...) plus the transaction hash. Reserves and amounts are decimal strings of
// the full i128.

// SoroswapNewPairRecord is a factory's new_pair event: contract_id is the factory.
type SoroswapNewPairRecord struct {
	Type            string    `json:"type"` // new_pair
	Timestamp       time.Time `json:"timestamp"`
	LedgerSequence  uint32    `json:"ledger_sequence"`
	ContractID      string    `json:"contract_id"`
	PairAddress     string    `json:"pair_address"`
	Token0          string    `json:"token_0"`
	Token1          string    `json:"token_1"`
	TransactionHash string    `json:"transaction_hash"`

	key string
}

// SoroswapSyncRecord is a pair's sync event (its reserves after a change): contract_id is
// the pair.
type SoroswapSyncRecord struct {
	Type            string    `json:"type"` // sync
	Timestamp       time.Time `json:"timestamp"`
	LedgerSequence  uint32    `json:"ledger_sequence"`
	ContractID      string    `json:"contract_id"`
	NewReserve0     string    `json:"new_reserve_0"`
	NewReserve1     string    `json:"new_reserve_1"`
	TransactionHash string    `json:"transaction_hash"`

	key string
}

// SoroswapSwapRecord is a pair's swap event: contract_id is the pair.
type SoroswapSwapRecord struct {
	Type            string    `json:"type"` // swap
	Timestamp       time.Time `json:"timestamp"`
	LedgerSequence  uint32    `json:"ledger_sequence"`
	ContractID      string    `json:"contract_id"`
	To              string    `json:"to"`
	Amount0In       string    `json:"amount_0_in"`
	Amount1In       string    `json:"amount_1_in"`
	Amount0Out      string    `json:"amount_0_out"`
	Amount1Out      string    `json:"amount_1_out"`
	TransactionHash string    `json:"transaction_hash"`

	key string
}

func (SoroswapNewPairRecord) RecordKind() string { return "soroswap_new_pair" }
func (SoroswapSyncRecord) RecordKind() string    { return "soroswap_sync" }
func (SoroswapSwapRecord) RecordKind() string    { return "soroswap_swap" }

// NaturalKey implements component.Record: that of the contract event (network, ledger,
// transaction, event position).
func (r SoroswapNewPairRecord) NaturalKey() string { return r.key }
func (r SoroswapSyncRecord) NaturalKey() string    { return r.key }
func (r SoroswapSwapRecord) NaturalKey() string    { return r.key }

func (r SoroswapNewPairRecord) contractAddress() string { return r.ContractID }
func (r SoroswapSyncRecord) contractAddress() string    { return r.ContractID }
func (r SoroswapSwapRecord) contractAddress() string    { return r.ContractID }

type soroswapConfig struct {
	FactoryContractID string `mapstructure:"factory_contract_id"`
}

// Soroswap is a transformer of ContractEvent's records (upstream chains it after
// ContractEvent): Soroswap's factory new_pair events (topics "SoroswapFactory", new_pair)
// and its pairs' sync and swap events (topics "SoroswapPair", sync | swap), of successful
// transactions, become records of the three kinds above; other records are ignored. The
// event shapes are those of Soroswap's contracts (soroswap/core: NewPair {token_0, token_1,
// pair, new_pairs_length}, SyncEvent {new_reserve_0, new_reserve_1}, SwapEvent {to,
// amount_0_in, amount_1_in, amount_0_out, amount_1_out}).
//
// Config: factory_contract_id (optional, from upstream's packaged Soroswap processor: only
// that factory's new_pair events).
//
// Upstream differences: upstream took any event with a "new_pair" or "sync" symbol anywhere
// in its topics, kept only the low 64 bits of the reserves and emitted no swaps; here the
// Soroswap namespace topic is required, reserves are exact, swaps are emitted (as their own
// kind), and events of failed transactions are ignored. An event in the Soroswap namespace
// whose data does not have the expected shape is skipped, counted (decode_errors) and logged.
type Soroswap struct {
	factories contractSet
	skips     *processor.SkipLog
	now       func() time.Time
	stats     *processor.Counters
}

// NewSoroswap is the Soroswap constructor.
func NewSoroswap(c *soroswapConfig, env component.Env) (component.Processor, error) {
	set, err := parseContracts("Soroswap", map[string][]string{"factory_contract_id": {c.FactoryContractID}})
	if err != nil {
		return nil, err
	}
	return &Soroswap{factories: set, skips: processor.NewSkipLog(env.Logger), now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"processed_events", "new_pair_events", "sync_events", "swap_events", "decode_errors", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *Soroswap) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it reads the contract events in in.
func (p *Soroswap) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	scan, err := soroswapEvents("Soroswap", p.skips, in, func(ev ContractEventRecord, ns, kind string, data xdr.ScVal) (component.Record, error) {
		switch {
		case ns == "SoroswapFactory" && kind == "new_pair" && p.factories.has(*ev.ContractID):
			return newPairEvent(ev, data)
		case ns == "SoroswapPair" && kind == "sync":
			return syncEvent(ev, data)
		case ns == "SoroswapPair" && kind == "swap":
			return swapEvent(ev, data)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["processed_events"] += float64(scan.seen)
		m["new_pair_events"] += float64(scan.counts["new_pair"])
		m["sync_events"] += float64(scan.counts["sync"])
		m["swap_events"] += float64(scan.counts["swap"])
		m["decode_errors"] += float64(scan.errs)
	})
	return scan.out, nil
}

// soroswapScan is what soroswapEvents found.
type soroswapScan struct {
	out    []component.Record
	counts map[string]int // records made, by event kind
	seen   int            // ContractEvent records in the input
	errs   int            // events whose data did not have the shape (skipped)
}

// soroswapEvents reads the events of Soroswap's shape among the ContractEvent records in
// in: each event of a successful transaction whose first topic names a namespace (a string
// or symbol) and whose second is a symbol (the event's kind) goes, with its decoded data, to
// mk, which returns its record, nil for an event it does not take, or an error for data
// without the expected shape (the event is then skipped, counted and logged). typ names the
// processor in errors and logs.
func soroswapEvents(typ string, skips *processor.SkipLog, in []component.Record,
	mk func(ev ContractEventRecord, ns, kind string, data xdr.ScVal) (component.Record, error)) (soroswapScan, error) {
	scan := soroswapScan{counts: map[string]int{}}
	for _, r := range in {
		ev, ok := r.(ContractEventRecord)
		if !ok {
			continue
		}
		scan.seen++
		if !ev.Successful || len(ev.Topics) < 2 || ev.ContractID == nil {
			continue
		}
		d, err := decodeEventRecord(ev)
		if err != nil {
			return scan, fmt.Errorf("%s: ledger %d transaction %s event %d: %w", typ, ev.LedgerSequence, ev.TransactionHash, ev.EventIndex, err)
		}
		ns := name(d.topics[0])
		if ns == "" || d.topics[1].Type != xdr.ScValTypeScvSymbol {
			continue
		}
		kind := string(d.topics[1].MustSym())
		rec, err := mk(ev, ns, kind, d.data)
		switch {
		case err != nil:
			scan.errs++
			skips.Warn(typ+": skipping an event whose data does not have the expected shape", "kind", kind,
				"ledger", ev.LedgerSequence, "transaction", ev.TransactionHash, "event_index", ev.EventIndex, "error", err)
		case rec != nil:
			scan.counts[kind]++
			scan.out = append(scan.out, rec)
		}
	}
	return scan, nil
}

func newPairEvent(ev ContractEventRecord, data xdr.ScVal) (SoroswapNewPairRecord, error) {
	r := SoroswapNewPairRecord{Type: "new_pair", Timestamp: ev.ClosedAt.UTC(), LedgerSequence: ev.LedgerSequence,
		ContractID: *ev.ContractID, TransactionHash: ev.TransactionHash, key: ev.NaturalKey()}
	fs, err := structFields(data)
	if err != nil {
		return r, err
	}
	if r.Token0, err = addressField(fs, "token_0"); err != nil {
		return r, err
	}
	if r.Token1, err = addressField(fs, "token_1"); err != nil {
		return r, err
	}
	r.PairAddress, err = addressField(fs, "pair")
	return r, err
}

func syncEvent(ev ContractEventRecord, data xdr.ScVal) (SoroswapSyncRecord, error) {
	r := SoroswapSyncRecord{Type: "sync", Timestamp: ev.ClosedAt.UTC(), LedgerSequence: ev.LedgerSequence,
		ContractID: *ev.ContractID, TransactionHash: ev.TransactionHash, key: ev.NaturalKey()}
	fs, err := structFields(data)
	if err != nil {
		return r, err
	}
	if r.NewReserve0, err = intField(fs, "new_reserve_0"); err != nil {
		return r, err
	}
	r.NewReserve1, err = intField(fs, "new_reserve_1")
	return r, err
}

func swapEvent(ev ContractEventRecord, data xdr.ScVal) (SoroswapSwapRecord, error) {
	r := SoroswapSwapRecord{Type: "swap", Timestamp: ev.ClosedAt.UTC(), LedgerSequence: ev.LedgerSequence,
		ContractID: *ev.ContractID, TransactionHash: ev.TransactionHash, key: ev.NaturalKey()}
	fs, err := structFields(data)
	if err != nil {
		return r, err
	}
	if r.To, err = addressField(fs, "to"); err != nil {
		return r, err
	}
	for _, f := range []struct {
		dst *string
		key string
	}{{&r.Amount0In, "amount_0_in"}, {&r.Amount1In, "amount_1_in"}, {&r.Amount0Out, "amount_0_out"}, {&r.Amount1Out, "amount_1_out"}} {
		if *f.dst, err = intField(fs, f.key); err != nil {
			return r, err
		}
	}
	return r, nil
}
