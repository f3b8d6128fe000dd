package account

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// AccountRecord is one change of an account ledger entry, with upstream CDP's AccountRecord
// field names. The entry is the account after the change, or before it for a removal
// (deleted true; upstream emitted only the id then). Amounts are stroops as decimal strings.
type AccountRecord struct {
	AccountID          string     `json:"account_id"`
	Balance            string     `json:"balance"`
	BuyingLiabilities  string     `json:"buying_liabilities"`
	SellingLiabilities string     `json:"selling_liabilities"`
	Sequence           int64      `json:"sequence"`
	SequenceLedger     *uint32    `json:"sequence_ledger"` // from the entry's v3 extension; null without it
	SequenceTime       *time.Time `json:"sequence_time"`
	NumSubentries      uint32     `json:"num_subentries"`
	InflationDest      *string    `json:"inflation_dest"`
	Flags              uint32     `json:"flags"`
	HomeDomain         *string    `json:"home_domain"` // null when empty
	MasterWeight       uint32     `json:"master_weight"`
	LowThreshold       uint32     `json:"low_threshold"`
	MediumThreshold    uint32     `json:"medium_threshold"`
	HighThreshold      uint32     `json:"high_threshold"`
	Sponsor            *string    `json:"sponsor"`
	NumSponsored       uint32     `json:"num_sponsored"`
	NumSponsoring      uint32     `json:"num_sponsoring"`
	LastModifiedLedger uint32     `json:"last_modified_ledger"`
	LedgerEntryChange  uint32     `json:"ledger_entry_change"` // xdr.LedgerEntryChangeType: 0 created, 1 updated, 2 removed, 4 restored
	ChangeType         string     `json:"change_type"`         // created|updated|removed|restored
	Deleted            bool       `json:"deleted"`
	ClosedAt           time.Time  `json:"closed_at"`
	LedgerSequence     uint32     `json:"ledger_sequence"`
	Timestamp          time.Time  `json:"timestamp"`        // when cdpd processed the ledger
	TransactionHash    *string    `json:"transaction_hash"` // null for upgrade changes
	OperationID        *int64     `json:"operation_id"`     // null unless an operation made the change
	ChangeIndex        int        `json:"change_index"`     // position among the ledger's account changes

	network string
}

// RecordKind implements component.Record (upstream's metadata key and table name).
func (AccountRecord) RecordKind() string { return "accounts" }

// NaturalKey implements component.Record: network, ledger, change position and account.
func (r AccountRecord) NaturalKey() string {
	return key(r.network, r.LedgerSequence, r.ChangeIndex, r.AccountID)
}

type accountDataConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// AccountData (registered as ProcessAccountDataFull and AccountData: upstream maps both names
// to one constructor) emits every account entry change of the ledger, read through the SDK's
// ledger change reader (ingest.NewLedgerChangeReaderFromLedgerCloseMeta) on the shared decoded
// ledger: fee charges, operation and transaction meta changes, fee refunds and upgrades, in the
// reader's order.
//
// It is an enricher, as upstream's is (upstream forwards the ledger and adds its records to
// the message's metadata): it returns the records it receives followed by its own, so in the
// wallet-backend chain (... StellarEffects -> ProcessAccountDataFull) the consumer gets every
// kind.
//
// Config: network | network_passphrase (or the pipeline's network).
//
// Differences from upstream, each a fix: upstream also emitted the pre-change state entries
// as rows of their own (every update twice) and numbered ledger_entry_change 1 created, 2
// updated, 3 state; cdpd emits one row per change and uses the XDR numbers (as ContractData
// and Hubble), with change_type spelling them. Removals carry the removed entry's fields
// instead of only its id. sequence_ledger and sequence_time come from the account's v3
// extension (upstream used last_modified_ledger and the close time as stand-ins). Keys are
// positions, not times, so a replay upserts the same rows.
type AccountData struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewAccountData is the ProcessAccountDataFull / AccountData constructor.
func NewAccountData(c *accountDataConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ProcessAccountDataFull", env)
	if err != nil {
		return nil, err
	}
	return &AccountData{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"accounts_found", "created", "updated", "removed", "restored", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *AccountData) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *AccountData) NeedsDecode() bool { return true }

// Process implements component.Processor: the input records, then the ledger's account changes.
func (p *AccountData) Process(ctx context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	now := p.now()
	out := make([]component.Record, 0, len(in)+64)
	out = append(out, in...)
	kinds := map[string]int{}
	err := eachChange(ctx, l, p.net, xdr.LedgerEntryTypeAccount, func(ch ingest.Change, e *xdr.LedgerEntry, c changeContext) error {
		r := p.record(ch, e, c, l, now)
		kinds[r.ChangeType]++
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ProcessAccountDataFull: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), now)
		m["accounts_found"] += float64(len(out) - len(in))
		for k, n := range kinds {
			m[k] += float64(n)
		}
	})
	return out, nil
}

func (p *AccountData) record(ch ingest.Change, e *xdr.LedgerEntry, c changeContext, l *ledger.Ledger, now time.Time) AccountRecord {
	a := e.Data.MustAccount()
	liab := a.Liabilities()
	r := AccountRecord{
		AccountID:          a.AccountId.Address(),
		Balance:            strconv.FormatInt(int64(a.Balance), 10),
		BuyingLiabilities:  strconv.FormatInt(int64(liab.Buying), 10),
		SellingLiabilities: strconv.FormatInt(int64(liab.Selling), 10),
		Sequence:           int64(a.SeqNum),
		NumSubentries:      uint32(a.NumSubEntries),
		Flags:              uint32(a.Flags),
		MasterWeight:       uint32(a.MasterKeyWeight()),
		LowThreshold:       uint32(a.ThresholdLow()),
		MediumThreshold:    uint32(a.ThresholdMedium()),
		HighThreshold:      uint32(a.ThresholdHigh()),
		NumSponsored:       uint32(a.NumSponsored()),
		NumSponsoring:      uint32(a.NumSponsoring()),
		LastModifiedLedger: uint32(e.LastModifiedLedgerSeq),
		LedgerEntryChange:  uint32(ch.ChangeType), //nolint:gosec // small enum
		ChangeType:         c.changeType,
		Deleted:            ch.ChangeType == xdr.LedgerEntryChangeTypeLedgerEntryRemoved,
		ClosedAt:           l.CloseTime(),
		LedgerSequence:     l.Sequence(),
		Timestamp:          now,
		TransactionHash:    c.txHash,
		OperationID:        c.operationID,
		ChangeIndex:        c.index,
		network:            p.net.Name,
	}
	if v3, ok := accountV3(a); ok {
		sl, st := uint32(v3.SeqLedger), time.Unix(int64(v3.SeqTime), 0).UTC() //nolint:gosec // a time point fits
		r.SequenceLedger, r.SequenceTime = &sl, &st
	}
	if a.InflationDest != nil {
		s := a.InflationDest.Address()
		r.InflationDest = &s
	}
	if a.HomeDomain != "" {
		s := string(a.HomeDomain)
		r.HomeDomain = &s
	}
	if sp := e.SponsoringID(); sp != nil {
		s := sp.Address()
		r.Sponsor = &s
	}
	return r
}

// accountV3 is the account's v3 extension (sequence ledger and time), when it has one.
func accountV3(a xdr.AccountEntry) (xdr.AccountEntryExtensionV3, bool) {
	v1, ok := a.Ext.GetV1()
	if !ok {
		return xdr.AccountEntryExtensionV3{}, false
	}
	v2, ok := v1.Ext.GetV2()
	if !ok {
		return xdr.AccountEntryExtensionV3{}, false
	}
	return v2.Ext.GetV3()
}
