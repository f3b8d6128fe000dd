package contract

import (
	"context"
	"crypto/sha256"
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

// ContractInvocationRecord is one InvokeHostFunction operation, with upstream
// ContractInvocation's field names. The nested lists are JSON columns:
//
//   - diagnostic_events: the operation's contract events (as upstream filled this field),
//     each {contract_id, type, topics, topics_decoded, data, data_decoded}, topics and data as
//     base64 XDR;
//   - contract_calls: the cross-contract calls the transaction authorized (its Soroban
//     authorization trees), each {from_contract, to_contract, function, arguments,
//     call_depth, auth_type (source_account | contract, upstream's names for the two
//     credential kinds), successful (the invocation's), execution_order};
//   - state_changes: the operation's contract data changes, each {contract_id, key, key_raw,
//     old_value, old_value_raw, new_value, new_value_raw, operation (create | update | delete
//     | restore)};
//   - ttl_extensions: the operation's TTL changes that raised an entry's live-until ledger,
//     each {contract_id (of a contract data entry in the footprint; "" for code), key_hash,
//     old_ttl, new_ttl} (live-until ledger sequences; old_ttl 0 for a new entry).
type ContractInvocationRecord struct {
	Timestamp        time.Time       `json:"timestamp"`
	LedgerSequence   uint32          `json:"ledger_sequence"`
	TransactionIndex uint32          `json:"transaction_index"` // 1-based, apply order
	OperationIndex   uint32          `json:"operation_index"`   // 0-based
	OperationID      int64           `json:"operation_id"`      // TOID
	TransactionHash  string          `json:"transaction_hash"`
	HostFunctionType string          `json:"host_function_type"` // invoke_contract | create_contract | create_contract_v2 | upload_wasm
	ContractID       string          `json:"contract_id"`        // the invoked contract ("" unless invoke_contract)
	InvokingAccount  string          `json:"invoking_account"`   // the operation's source account
	FunctionName     string          `json:"function_name"`
	ArgumentsRaw     []string        `json:"arguments_raw"`     // base64 XDR ScVal per argument
	Arguments        json.RawMessage `json:"arguments"`         // JSON array of the decoded arguments
	ArgumentsDecoded json.RawMessage `json:"arguments_decoded"` // {"arg_0": ..., "arg_1": ...}
	Successful       bool            `json:"successful"`
	DiagnosticEvents json.RawMessage `json:"diagnostic_events"`
	ContractCalls    json.RawMessage `json:"contract_calls"`
	StateChanges     json.RawMessage `json:"state_changes"`
	TtlExtensions    json.RawMessage `json:"ttl_extensions"`

	network string
}

// RecordKind implements component.Record.
func (ContractInvocationRecord) RecordKind() string { return "contract_invocations" }

// NaturalKey implements component.Record: network, ledger, transaction and operation.
func (r ContractInvocationRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.FormatUint(uint64(r.OperationIndex), 10))
}

func (r ContractInvocationRecord) contractAddress() string { return r.ContractID }

type contractInvocationConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	ContractID              string   `mapstructure:"contract_id"`
	ContractIDs             []string `mapstructure:"contract_ids"`
	AccountIDs              []string `mapstructure:"account_ids"`
}

// ContractInvocation emits one record per InvokeHostFunction operation (successful or not),
// read through the ledger's view (ingest.LedgerTransactionViewRange): only Soroban
// transactions are decoded, and of their meta only the operation's ledger entry changes
// (read as the SDK pairs them, ingest.GetChangesFromLedgerEntryChanges) and its events.
//
// Config: network | network_passphrase; contract_id / contract_ids (only invocations of
// these contracts; create and upload operations have no invoked contract and are then
// skipped); account_ids (G... strkeys: only operations these accounts invoke). It reads the
// ledger and ignores the records before it. Upstream's FilteredContractInvocation (the same
// filters, a subset of these fields) is an alias.
//
// Upstream differences: upstream's state_changes held the contract data changes of the
// whole transaction and ttl_extensions was never filled; here both are the operation's own.
// Upstream also inferred extra cross-contract calls (and guessed function names) from
// diagnostic events, which depend on the node's diagnostic setting and are not consensus
// data; here contract_calls are the authorized calls only. arguments_raw holds base64 XDR
// (upstream: a Go struct dump), and decoded values use cdpd's ScVal JSON (the stellar-xdr
// JSON shape of the *_decoded columns). Replays upsert on (network, ledger, transaction hash,
// operation index).
type ContractInvocation struct {
	net       processor.NetID
	contracts contractSet
	accounts  map[string]bool // nil: every account
	now       func() time.Time
	stats     *processor.Counters
}

// NewContractInvocation is the ContractInvocation constructor.
func NewContractInvocation(c *contractInvocationConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ContractInvocation", env)
	if err != nil {
		return nil, err
	}
	p := &ContractInvocation{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"invocations_found", "successful_invokes", "failed_invokes", "cross_contract_calls", "invocations_filtered",
		"last_ledger", "last_processed_time")}
	if p.contracts, err = parseContracts("ContractInvocation", map[string][]string{"contract_id": {c.ContractID}, "contract_ids": c.ContractIDs}); err != nil {
		return nil, err
	}
	for _, a := range c.AccountIDs {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strkey.IsValidEd25519PublicKey(a) {
			return nil, fmt.Errorf("ContractInvocation: account_ids: %q is not an account strkey (G...)", a)
		}
		if p.accounts == nil {
			p.accounts = map[string]bool{}
		}
		p.accounts[a] = true
	}
	return p, nil
}

// Stats implements component.StatsReporter.
func (p *ContractInvocation) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *ContractInvocation) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	var out []component.Record
	var ok, failed, calls, filtered int
	err := walkInvokeHostFunctions(l, p.net.Passphrase, func(o *sorobanOp) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, n, keep, err := p.invocation(l, o)
		if err != nil {
			return fmt.Errorf("ledger %d transaction %s operation %d: %w", l.Sequence(), o.txHash, o.opIndex, err)
		}
		if !keep {
			filtered++
			return nil
		}
		if rec.Successful {
			ok++
		} else {
			failed++
		}
		calls += n
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ContractInvocation: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["invocations_found"] += float64(ok + failed)
		m["successful_invokes"] += float64(ok)
		m["failed_invokes"] += float64(failed)
		m["cross_contract_calls"] += float64(calls)
		m["invocations_filtered"] += float64(filtered)
	})
	return out, nil
}

// invocation builds the record of one operation and returns its number of contract calls.
func (p *ContractInvocation) invocation(l *ledger.Ledger, o *sorobanOp) (ContractInvocationRecord, int, bool, error) {
	r := ContractInvocationRecord{network: p.net.Name, Timestamp: l.CloseTime().UTC(), LedgerSequence: l.Sequence(),
		TransactionIndex: uint32(o.txIndex), OperationIndex: uint32(o.opIndex), //nolint:gosec // small indices
		OperationID: processor.OperationID(l.Sequence(), o.txIndex, o.opIndex), TransactionHash: o.txHash,
		HostFunctionType: hostFunctionName(o.fn.HostFunction.Type), Successful: o.successful}
	src := o.source()
	r.InvokingAccount = src.Address()
	args := []xdr.ScVal{}
	if ic, ok := o.fn.HostFunction.GetInvokeContract(); ok {
		var err error
		if r.ContractID, err = ic.ContractAddress.String(); err != nil {
			return r, 0, false, fmt.Errorf("encoding the invoked contract: %w", err)
		}
		r.FunctionName, args = string(ic.FunctionName), ic.Args
	}
	if (!p.contracts.all() && (r.ContractID == "" || !p.contracts.has(r.ContractID))) || (p.accounts != nil && !p.accounts[r.InvokingAccount]) {
		return r, 0, false, nil
	}
	var err error
	if r.ArgumentsRaw, r.Arguments, r.ArgumentsDecoded, err = renderArgs(args); err != nil {
		return r, 0, false, err
	}
	if r.DiagnosticEvents, err = renderEvents(o.events); err != nil {
		return r, 0, false, err
	}
	calls, err := authorizedCalls(o.fn.Auth, r.ContractID, o.successful)
	if err != nil {
		return r, 0, false, err
	}
	if r.ContractCalls, err = json.Marshal(calls); err != nil {
		return r, 0, false, fmt.Errorf("encoding contract calls: %w", err)
	}
	chs, err := o.changes()
	if err != nil {
		return r, 0, false, err
	}
	states, ttls, err := stateChanges(chs, func() map[xdr.Hash]string { return footprintContracts(o.env) })
	if err != nil {
		return r, 0, false, err
	}
	if r.StateChanges, err = json.Marshal(states); err != nil {
		return r, 0, false, fmt.Errorf("encoding state changes: %w", err)
	}
	if r.TtlExtensions, err = json.Marshal(ttls); err != nil {
		return r, 0, false, fmt.Errorf("encoding TTL extensions: %w", err)
	}
	return r, len(calls), true, nil
}

func hostFunctionName(t xdr.HostFunctionType) string {
	switch t {
	case xdr.HostFunctionTypeHostFunctionTypeInvokeContract:
		return "invoke_contract"
	case xdr.HostFunctionTypeHostFunctionTypeCreateContract:
		return "create_contract"
	case xdr.HostFunctionTypeHostFunctionTypeCreateContractV2:
		return "create_contract_v2"
	case xdr.HostFunctionTypeHostFunctionTypeUploadContractWasm:
		return "upload_wasm"
	}
	return fmt.Sprintf("unknown_%d", t)
}

// footprintContracts maps the hash of each contract data key of the transaction's Soroban
// footprint to its contract (TTL entries name the entry they extend only by key hash), and
// contract code keys to "".
func footprintContracts(env *xdr.TransactionEnvelope) map[xdr.Hash]string {
	out := map[xdr.Hash]string{}
	var data xdr.SorobanTransactionData
	var ok bool
	switch env.Type {
	case xdr.EnvelopeTypeEnvelopeTypeTx:
		data, ok = env.V1.Tx.Ext.GetSorobanData()
	case xdr.EnvelopeTypeEnvelopeTypeTxFeeBump:
		data, ok = env.FeeBump.Tx.InnerTx.V1.Tx.Ext.GetSorobanData()
	}
	if !ok {
		return out
	}
	fp := data.Resources.Footprint
	for _, keys := range [][]xdr.LedgerKey{fp.ReadOnly, fp.ReadWrite} {
		for _, k := range keys {
			owner := ""
			switch k.Type {
			case xdr.LedgerEntryTypeContractData:
				c, err := k.ContractData.Contract.String()
				if err != nil {
					continue
				}
				owner = c
			case xdr.LedgerEntryTypeContractCode:
			default:
				continue
			}
			b, err := k.MarshalBinary()
			if err != nil {
				continue
			}
			out[xdr.Hash(sha256.Sum256(b))] = owner
		}
	}
	return out
}

// keyHashHex is the hex of a TTL entry's key hash.
func keyHashHex(h xdr.Hash) string { return hex.EncodeToString(h[:]) }
