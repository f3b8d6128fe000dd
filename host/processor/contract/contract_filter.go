package contract

import (
	"context"
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// contractRecord is a record of this package that names a contract (the one that emitted
// the event, was invoked, created, or owns the entry).
type contractRecord interface {
	contractAddress() string
}

func (r ContractEventRecord) contractAddress() string {
	if r.ContractID == nil {
		return ""
	}
	return *r.ContractID
}

func (r ContractDataRecord) contractAddress() string { return r.ContractID }

type contractFilterConfig struct {
	ContractID  string   `mapstructure:"contract_id"`
	ContractIDs []string `mapstructure:"contract_ids"`
}

// ContractFilter is a transformer: it passes on the records of the processor before it that
// belong to the given contracts and drops the rest. It knows the contract of this package's
// records: ContractEvent's (the emitting contract), GetEventsRPC's, ContractInvocation's (the
// invoked contract), ContractCreation's, ContractData's and FilterEventsProcessor's (the
// owner), Soroswap's (the pair or factory); records of any other kind are dropped, as upstream
// forwarded only contract events.
//
// Config: contract_id and/or contract_ids (C... strkeys; at least one, as upstream requires).
// It reads no ledger data and names no network.
type ContractFilter struct {
	contracts contractSet
	now       func() time.Time
	stats     *processor.Counters
}

// NewContractFilter is the ContractFilter constructor.
func NewContractFilter(c *contractFilterConfig, env component.Env) (component.Processor, error) {
	set, err := parseContracts("ContractFilter", map[string][]string{"contract_id": {c.ContractID}, "contract_ids": c.ContractIDs})
	if err != nil {
		return nil, err
	}
	if set.all() {
		return nil, fmt.Errorf("ContractFilter: contract_id or contract_ids is required")
	}
	return &ContractFilter{contracts: set, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"records_in", "records_kept", "records_filtered", "records_other_kind", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *ContractFilter) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it filters in.
func (p *ContractFilter) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var out []component.Record
	var filtered, other int
	for _, r := range in {
		cr, ok := r.(contractRecord)
		switch {
		case !ok:
			other++
		case p.contracts.has(cr.contractAddress()) && cr.contractAddress() != "":
			out = append(out, r)
		default:
			filtered++
		}
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["records_in"] += float64(len(in))
		m["records_kept"] += float64(len(out))
		m["records_filtered"] += float64(filtered)
		m["records_other_kind"] += float64(other)
	})
	return out, nil
}
