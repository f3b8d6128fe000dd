package contract

import (
	"context"
	"fmt"
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
	skips *processor.SkipLog
	now   func() time.Time
	stats *processor.Counters
}

// NewSoroswapRouter is the SoroswapRouter constructor.
func NewSoroswapRouter(_ *soroswapRouterConfig, env component.Env) (component.Processor, error) {
	return &SoroswapRouter{skips: processor.NewSkipLog(env.Logger), now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"processed_events", "swap_events", "add_events", "remove_events", "decode_errors", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *SoroswapRouter) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it reads the contract events in in.
func (p *SoroswapRouter) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	scan, err := soroswapEvents("SoroswapRouter", p.skips, in, func(ev ContractEventRecord, ns, kind string, data xdr.ScVal) (component.Record, error) {
		if ns != "SoroswapRouter" || (kind != "swap" && kind != "add" && kind != "remove") {
			return nil, nil
		}
		rec := SoroswapRouterRecord{Type: kind, Timestamp: ev.ClosedAt.UTC(), LedgerSequence: ev.LedgerSequence,
			ContractID: *ev.ContractID, TxHash: ev.TransactionHash, key: ev.NaturalKey()}
		read := routerLiquidity
		if kind == "swap" {
			read = routerSwap
		}
		if err := read(&rec, data); err != nil {
			return nil, err
		}
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["processed_events"] += float64(scan.seen)
		m["swap_events"] += float64(scan.counts["swap"])
		m["add_events"] += float64(scan.counts["add"])
		m["remove_events"] += float64(scan.counts["remove"])
		m["decode_errors"] += float64(scan.errs)
	})
	return scan.out, nil
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
		s, err := addressText(v)
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
