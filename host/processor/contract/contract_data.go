package contract

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// ContractDataRecord is one change of a contract data ledger entry, with column names after
// Hubble's contract_data table (stellar-etl's ContractDataOutput) where they overlap. For a
// removed entry, key and value are those of the entry before its removal and deleted is true
// (as Hubble records it).
type ContractDataRecord struct {
	ContractID         string          `json:"contract_id"`
	ContractKeyType    string          `json:"contract_key_type"`   // ScVal type of the key, e.g. ScValTypeScvLedgerKeyContractInstance
	ContractDurability string          `json:"contract_durability"` // persistent|temporary
	ChangeType         string          `json:"change_type"`         // created|updated|removed|restored
	LedgerEntryChange  uint32          `json:"ledger_entry_change"` // xdr.LedgerEntryChangeType: 0 created, 1 updated, 2 removed, 4 restored
	Deleted            bool            `json:"deleted"`
	Key                string          `json:"key"` // base64 XDR ScVal
	KeyDecoded         json.RawMessage `json:"key_decoded"`
	Val                string          `json:"val"` // base64 XDR ScVal
	ValDecoded         json.RawMessage `json:"val_decoded"`
	ContractDataXDR    string          `json:"contract_data_xdr"` // base64 XDR ContractDataEntry
	LedgerKeyHash      string          `json:"ledger_key_hash"`   // hex sha256 of the LedgerKey XDR
	LastModifiedLedger uint32          `json:"last_modified_ledger"`
	LedgerSequence     uint32          `json:"ledger_sequence"`
	ClosedAt           time.Time       `json:"closed_at"`
	TransactionHash    *string         `json:"transaction_hash"`  // null for changes not made by a transaction (upgrades)
	TransactionIndex   *int            `json:"transaction_index"` // 1-based
	OperationID        *int64          `json:"operation_id"`      // null unless an operation made the change
	ChangeIndex        int             `json:"change_index"`      // position among the ledger's contract data changes

	network string
}

// RecordKind implements component.Record.
func (ContractDataRecord) RecordKind() string { return "contract_data" }

// NaturalKey implements component.Record: network, ledger, change position and entry.
func (r ContractDataRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, strconv.Itoa(r.ChangeIndex), r.LedgerKeyHash)
}

type contractDataConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	ContractID              string   `mapstructure:"contract_id"`
	ContractIDs             []string `mapstructure:"contract_ids"`
}

// ContractData emits contract data entry changes read through the SDK's ledger change reader
// (ingest.NewLedgerChangeReaderFromLedgerCloseMeta) on the shared decoded ledger.
//
// Config: network | network_passphrase; contract_id / contract_ids (only entries of these
// contracts).
type ContractData struct {
	net   processor.NetID
	name  string                           // type name in errors
	keep  func(r *ContractDataRecord) bool // the filter (contracts or FilterEventsProcessor's rules)
	now   func() time.Time
	stats *processor.Counters
}

// NewContractData is the ContractData constructor.
func NewContractData(c *contractDataConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ContractData", env)
	if err != nil {
		return nil, err
	}
	contracts, err := parseContracts("ContractData", map[string][]string{"contract_id": {c.ContractID}, "contract_ids": c.ContractIDs})
	if err != nil {
		return nil, err
	}
	return newContractData("ContractData", net, env, func(r *ContractDataRecord) bool { return contracts.has(r.ContractID) }), nil
}

// newContractData is a contract data change processor under a type name (in errors) with a
// filter.
func newContractData(name string, net processor.NetID, env component.Env, keep func(*ContractDataRecord) bool) *ContractData {
	return &ContractData{name: name, keep: keep, net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"changes_found", "created", "updated", "removed", "restored", "changes_filtered", "last_ledger", "last_processed_time")}
}

// Stats implements component.StatsReporter.
func (p *ContractData) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *ContractData) NeedsDecode() bool { return true }

// Process implements component.Processor. The input records are ignored.
func (p *ContractData) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	lcm, err := l.Decoded()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	rd, err := ingest.NewLedgerChangeReaderFromLedgerCloseMeta(p.net.Passphrase, *lcm)
	if err != nil {
		return nil, fmt.Errorf("%s: reading changes of ledger %d: %w", p.name, l.Sequence(), err)
	}
	defer rd.Close()
	var out []component.Record
	kinds := map[string]int{}
	idx, filtered := 0, 0
	for {
		ch, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading changes of ledger %d: %w", p.name, l.Sequence(), err)
		}
		if ch.Type != xdr.LedgerEntryTypeContractData {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, entry, err := p.head(ch, l, idx)
		idx++
		if err == nil && !p.keep(&rec) {
			filtered++
			continue
		}
		if err == nil {
			err = p.body(&rec, ch, entry)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: ledger %d change %d: %w", p.name, l.Sequence(), idx-1, err)
		}
		kinds[rec.ChangeType]++
		out = append(out, rec)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["changes_found"] += float64(len(out))
		m["changes_filtered"] += float64(filtered)
		for k, n := range kinds {
			m[k] += float64(n)
		}
	})
	return out, nil
}

// head fills the record's cheap fields, the ones filters test (contract, change type,
// durability, key type), and returns the entry the record describes.
func (p *ContractData) head(ch ingest.Change, l *ledger.Ledger, idx int) (ContractDataRecord, *xdr.LedgerEntry, error) {
	r := ContractDataRecord{network: p.net.Name, LedgerSequence: l.Sequence(), ClosedAt: l.CloseTime(),
		ChangeIndex: idx, LedgerEntryChange: uint32(ch.ChangeType)} //nolint:gosec // small enum
	entry := ch.Post
	switch ch.ChangeType {
	case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
		r.ChangeType = "created"
	case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
		r.ChangeType = "updated"
	case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
		r.ChangeType, r.Deleted, entry = "removed", true, ch.Pre
	case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
		r.ChangeType = "restored"
	default:
		return r, nil, fmt.Errorf("unexpected change type %v", ch.ChangeType)
	}
	if entry == nil {
		return r, nil, fmt.Errorf("%s change without its entry", r.ChangeType)
	}
	cd, ok := entry.Data.GetContractData()
	if !ok {
		return r, nil, fmt.Errorf("entry is not contract data")
	}
	var err error
	if r.ContractID, err = cd.Contract.String(); err != nil {
		return r, nil, fmt.Errorf("encoding contract address: %w", err)
	}
	r.ContractKeyType = cd.Key.Type.String()
	switch cd.Durability {
	case xdr.ContractDataDurabilityPersistent:
		r.ContractDurability = "persistent"
	case xdr.ContractDataDurabilityTemporary:
		r.ContractDurability = "temporary"
	default:
		return r, nil, fmt.Errorf("unknown durability %d", cd.Durability)
	}
	return r, entry, nil
}

// body renders the rest of the record: key and value (base64 and JSON), entry XDR, ledger key
// hash and the transaction that made the change.
func (p *ContractData) body(r *ContractDataRecord, ch ingest.Change, entry *xdr.LedgerEntry) error {
	cd := entry.Data.MustContractData()
	var err error
	r.LastModifiedLedger = uint32(entry.LastModifiedLedgerSeq)
	if r.Key, err = xdr.MarshalBase64(cd.Key); err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	if r.KeyDecoded, err = processor.ScValJSON(cd.Key); err != nil {
		return fmt.Errorf("rendering key: %w", err)
	}
	if r.Val, err = xdr.MarshalBase64(cd.Val); err != nil {
		return fmt.Errorf("encoding value: %w", err)
	}
	if r.ValDecoded, err = processor.ScValJSON(cd.Val); err != nil {
		return fmt.Errorf("rendering value: %w", err)
	}
	raw, err := cd.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding entry: %w", err)
	}
	r.ContractDataXDR = base64.StdEncoding.EncodeToString(raw)
	key, err := entry.LedgerKey()
	if err != nil {
		return fmt.Errorf("building ledger key: %w", err)
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding ledger key: %w", err)
	}
	sum := sha256.Sum256(kb)
	r.LedgerKeyHash = hex.EncodeToString(sum[:])
	if tx := ch.Transaction; tx != nil {
		h, i := tx.Hash.HexString(), int(tx.Index)
		r.TransactionHash, r.TransactionIndex = &h, &i
		if ch.Reason == ingest.LedgerEntryChangeReasonOperation {
			id := processor.OperationID(r.LedgerSequence, i, int(ch.OperationIndex))
			r.OperationID = &id
		}
	}
	return nil
}
