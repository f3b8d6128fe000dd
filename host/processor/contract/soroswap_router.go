package contract

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// SoroswapRouterRecord is one event of Soroswap's router: a swap along a path, or liquidity
// added to or removed from a pair. Upstream's field names (type, timestamp, ledger_sequence,
// contract_id, account, token_a, token_b, amount_a, amount_b, tx_hash), plus what the event
// carries that upstream dropped: the pair and the liquidity of add/remove, a swap's whole path
// and amounts. For a swap token_a/amount_a are the path's first token and the amount in,
// token_b/amount_b its last token and the amount out. Amounts are decimal strings of the
// full i128; account is the event's "to".
type SoroswapRouterRecord struct {
	Type           string    `json:"type"` // swap, add, remove
	Timestamp      time.Time `json:"timestamp"`
	LedgerSequence uint32    `json:"ledger_sequence"`
	ContractID     string    `json:"contract_id"` // the router
	Account        string    `json:"account"`
	TokenA         string    `json:"token_a"`
	TokenB         string    `json:"token_b"`
	AmountA        string    `json:"amount_a"`
	AmountB        string    `json:"amount_b"`
	TxHash         string    `json:"tx_hash"`
	Pair           string    `json:"pair"`      // add, remove
	Liquidity      string    `json:"liquidity"` // add, remove
	Path           []string  `json:"path"`      // swap
	Amounts        []string  `json:"amounts"`   // swap

	key string
}

// RecordKind implements component.Record (upstream's table soroswap_router_events).
func (SoroswapRouterRecord) RecordKind() string { return "soroswap_router_events" }

// NaturalKey implements component.Record: that of the contract event.
func (r SoroswapRouterRecord) NaturalKey() string { return r.key }

func (r SoroswapRouterRecord) contractAddress() string { return r.ContractID }

type soroswapRouterConfig struct{}

// SoroswapRouter is a transformer of ContractEvent's records, like Soroswap: the events of
// Soroswap's router contract (topics "SoroswapRouter", swap | add | remove) of successful
// transactions become SoroswapRouterRecords; other records are ignored. The event shapes are
// those of Soroswap's router (soroswap/core: SwapEvent {path, amounts, to}; AddLiquidityEvent
// and RemoveLiquidityEvent {token_a, token_b, pair, amount_a, amount_b, liquidity, to}).
//
// Tested on a synthetic ledger (the real pubnet ledgers the SDK ships hold no Soroswap
// events), against an independent count of the router's events through the SDK's
// transaction reader.
//
// Upstream differences, each a fix: upstream took any event with a "swap", "add" or "remove"
// symbol anywhere in its topics (so Soroswap's pairs' swaps, and any other contract's, came
// out as router events with empty tokens); here the SoroswapRouter namespace topic is
// required. Upstream kept the low 64 bits of each amount and read only contract addresses
// as path tokens; amounts are exact here and addresses of either kind are read. Events of
// failed transactions are ignored. An event in the router's namespace whose data does not
// have the expected shape is skipped, counted (decode_errors) and logged.
type SoroswapRouter struct {
	log   *slog.Logger
	now   func() time.Time
	stats *processor.Counters
}

// NewSoroswapRouter is the SoroswapRouter constructor.
func NewSoroswapRouter(_ *soroswapRouterConfig, env component.Env) (component.Processor, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SoroswapRouter{log: log, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"processed_events", "swap_events", "add_events", "remove_events", "decode_errors", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *SoroswapRouter) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it reads the contract events in in.
func (p *SoroswapRouter) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var out []component.Record
	counts := map[string]int{}
	var seen, errs int
	for _, r := range in {
		ev, ok := r.(ContractEventRecord)
		if !ok {
			continue
		}
		seen++
		if !ev.Successful || len(ev.Topics) < 2 || ev.ContractID == nil {
			continue
		}
		d, err := decodeEventRecord(ev)
		if err != nil {
			return nil, fmt.Errorf("SoroswapRouter: ledger %d transaction %s event %d: %w", ev.LedgerSequence, ev.TransactionHash, ev.EventIndex, err)
		}
		if name(d.topics[0]) != "SoroswapRouter" || d.topics[1].Type != xdr.ScValTypeScvSymbol {
			continue
		}
		kind := string(d.topics[1].MustSym())
		if kind != "swap" && kind != "add" && kind != "remove" {
			continue
		}
		rec := SoroswapRouterRecord{Type: kind, Timestamp: ev.ClosedAt.UTC(), LedgerSequence: ev.LedgerSequence,
			ContractID: *ev.ContractID, TxHash: ev.TransactionHash, key: ev.NaturalKey()}
		if kind == "swap" {
			err = routerSwap(&rec, d.data)
		} else {
			err = routerLiquidity(&rec, d.data)
		}
		if err != nil {
			errs++
			p.log.Warn("SoroswapRouter: skipping an event whose data does not have Soroswap's router shape", "kind", kind,
				"ledger", ev.LedgerSequence, "transaction", ev.TransactionHash, "event_index", ev.EventIndex, "error", err)
			continue
		}
		counts[kind]++
		out = append(out, rec)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["processed_events"] += float64(seen)
		m["swap_events"] += float64(counts["swap"])
		m["add_events"] += float64(counts["add"])
		m["remove_events"] += float64(counts["remove"])
		m["decode_errors"] += float64(errs)
	})
	return out, nil
}

// routerLiquidity reads an AddLiquidityEvent or RemoveLiquidityEvent.
func routerLiquidity(r *SoroswapRouterRecord, data xdr.ScVal) error {
	fs, err := structFields(data)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		dst  *string
		key  string
		addr bool
	}{{&r.TokenA, "token_a", true}, {&r.TokenB, "token_b", true}, {&r.Pair, "pair", true}, {&r.Account, "to", true},
		{&r.AmountA, "amount_a", false}, {&r.AmountB, "amount_b", false}, {&r.Liquidity, "liquidity", false}} {
		if f.addr {
			*f.dst, err = addressField(fs, f.key)
		} else {
			*f.dst, err = intField(fs, f.key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// routerSwap reads a SwapEvent: path (token addresses), amounts (one per path token), to.
func routerSwap(r *SoroswapRouterRecord, data xdr.ScVal) error {
	fs, err := structFields(data)
	if err != nil {
		return err
	}
	if r.Account, err = addressField(fs, "to"); err != nil {
		return err
	}
	path, err := vecField(fs, "path")
	if err != nil {
		return err
	}
	amounts, err := vecField(fs, "amounts")
	if err != nil {
		return err
	}
	if len(path) < 2 || len(amounts) != len(path) {
		return fmt.Errorf("a swap path of %d tokens with %d amounts", len(path), len(amounts))
	}
	for i, v := range path {
		a, ok := v.GetAddress()
		if !ok {
			return fmt.Errorf("path[%d] is a %s, not an address", i, v.Type)
		}
		s, err := a.String()
		if err != nil {
			return fmt.Errorf("path[%d]: %w", i, err)
		}
		r.Path = append(r.Path, s)
	}
	for i, v := range amounts {
		n, ok := v.GetI128()
		if !ok {
			return fmt.Errorf("amounts[%d] is a %s, not an i128", i, v.Type)
		}
		r.Amounts = append(r.Amounts, amount.String128Raw(n))
	}
	last := len(path) - 1
	r.TokenA, r.TokenB, r.AmountA, r.AmountB = r.Path[0], r.Path[last], r.Amounts[0], r.Amounts[last]
	return nil
}

// vecField reads a vector field.
func vecField(fs map[string]xdr.ScVal, key string) ([]xdr.ScVal, error) {
	v, err := field(fs, key)
	if err != nil {
		return nil, err
	}
	vec, ok := v.GetVec()
	if !ok || vec == nil {
		return nil, fmt.Errorf("field %s is a %s, not a vector", key, v.Type)
	}
	return *vec, nil
}
