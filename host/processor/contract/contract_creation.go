package contract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// ContractCreationRecord is one contract creation, with upstream ContractCreation's field
// names plus the creation's kind and origin.
type ContractCreationRecord struct {
	Timestamp         time.Time       `json:"timestamp"`
	LedgerSequence    uint32          `json:"ledger_sequence"`
	TransactionHash   string          `json:"transaction_hash"`
	TransactionIndex  uint32          `json:"transaction_index"` // 1-based, apply order
	OperationIndex    uint32          `json:"operation_index"`
	ContractID        string          `json:"contract_id"`
	CreatorAccount    string          `json:"creator_account"`  // the operation's source account
	ExecutorAccount   string          `json:"executor_account"` // the transaction's source account
	WasmID            string          `json:"wasm_id"`          // hex wasm hash; "" for a Stellar asset contract
	InitialSalt       string          `json:"initial_salt"`     // hex salt of an address preimage; "" otherwise
	Successful        bool            `json:"successful"`
	NetworkPassphrase string          `json:"network_passphrase"`
	CreationType      string          `json:"creation_type"`    // create_contract | create_contract_v2 | deployed_by_contract
	DeployerAddress   string          `json:"deployer_address"` // the preimage's address (G... or C...); "" for an asset contract or a contract-deployed one
	ExecutableType    string          `json:"executable_type"`  // wasm | stellar_asset
	Asset             string          `json:"asset"`            // a Stellar asset contract's asset: native or CODE:ISSUER; "" otherwise
	ConstructorArgs   json.RawMessage `json:"constructor_args"` // JSON array (create_contract_v2); null otherwise

	network string
}

// RecordKind implements component.Record.
func (ContractCreationRecord) RecordKind() string { return "contract_creations" }

// NaturalKey implements component.Record: network, ledger, transaction, operation, contract.
func (r ContractCreationRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.FormatUint(uint64(r.OperationIndex), 10), r.ContractID)
}

func (r ContractCreationRecord) contractAddress() string { return r.ContractID }

type contractCreationConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// ContractCreation emits the contracts created in a ledger, read through the ledger's view
// (ingest.LedgerTransactionViewRange; only Soroban transactions are decoded):
//
//   - one record per create_contract / create_contract_v2 host function, successful or not,
//     its contract id derived from the operation's preimage as the protocol defines it
//     (sha256 of the network id and the ContractIdPreimage), wasm id or asset, salt,
//     deployer and constructor arguments from the operation;
//   - one record (deployed_by_contract) per further contract instance a successful operation
//     created: contracts deployed by contracts (factories such as Soroswap's), found as
//     created ContractInstance entries in the operation's changes (read from the view; only
//     those entries are decoded).
//
// Config: network | network_passphrase. It reads the ledger and ignores the records before it.
//
// Upstream differences: upstream read only create_contract (not v2), took the contract id from
// the changes (empty for a failed creation), never filled initial_salt and missed contracts
// deployed by contracts. Replays upsert on (network, ledger, transaction, operation, contract).
type ContractCreation struct {
	net   processor.NetID
	netID xdr.Hash
	now   func() time.Time
	stats *processor.Counters
}

// NewContractCreation is the ContractCreation constructor.
func NewContractCreation(c *contractCreationConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("ContractCreation", env)
	if err != nil {
		return nil, err
	}
	return &ContractCreation{net: net, netID: sha256.Sum256([]byte(net.Passphrase)), now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "creations_found", "successful_creates", "failed_creates",
			"deployed_by_contract", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *ContractCreation) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *ContractCreation) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	var out []component.Record
	var ok, failed, nested int
	err := walkInvokeHostFunctions(l, p.net.Passphrase, func(o *sorobanOp) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := p.creations(l, o)
		if err != nil {
			return fmt.Errorf("ledger %d transaction %s operation %d: %w", l.Sequence(), o.txHash, o.opIndex, err)
		}
		for _, r := range recs {
			switch {
			case r.CreationType == "deployed_by_contract":
				nested++
			case r.Successful:
				ok++
			default:
				failed++
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ContractCreation: %w", err)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["creations_found"] += float64(len(out))
		m["successful_creates"] += float64(ok + nested)
		m["failed_creates"] += float64(failed)
		m["deployed_by_contract"] += float64(nested)
	})
	return out, nil
}

func (p *ContractCreation) creations(l *ledger.Ledger, o *sorobanOp) ([]ContractCreationRecord, error) {
	src, exec := o.source(), o.txSource()
	base := ContractCreationRecord{network: p.net.Name, Timestamp: l.CloseTime().UTC(), LedgerSequence: l.Sequence(),
		TransactionHash: o.txHash, TransactionIndex: uint32(o.txIndex), OperationIndex: uint32(o.opIndex), //nolint:gosec // small
		CreatorAccount: src.Address(), ExecutorAccount: exec.Address(), NetworkPassphrase: p.net.Passphrase}
	var out []ContractCreationRecord
	top := ""
	hf := o.fn.HostFunction
	var pre *xdr.ContractIdPreimage
	var executable xdr.ContractExecutable
	switch hf.Type {
	case xdr.HostFunctionTypeHostFunctionTypeCreateContract:
		base.CreationType, pre, executable = "create_contract", &hf.CreateContract.ContractIdPreimage, hf.CreateContract.Executable
	case xdr.HostFunctionTypeHostFunctionTypeCreateContractV2:
		base.CreationType, pre, executable = "create_contract_v2", &hf.CreateContractV2.ContractIdPreimage, hf.CreateContractV2.Executable
		args, err := processor.ScValsJSON(hf.CreateContractV2.ConstructorArgs)
		if err != nil {
			return nil, fmt.Errorf("rendering constructor arguments: %w", err)
		}
		base.ConstructorArgs = args
	case xdr.HostFunctionTypeHostFunctionTypeInvokeContract:
	default:
		return nil, nil // uploads create no contract
	}
	if pre != nil {
		r := base
		r.Successful = o.successful
		id, err := p.contractID(*pre)
		if err != nil {
			return nil, err
		}
		r.ContractID, top = id, id
		if err := describePreimage(&r, *pre); err != nil {
			return nil, err
		}
		describeExecutable(&r, executable)
		out = append(out, r)
	}
	if !o.successful {
		return out, nil
	}
	instances, err := createdInstances(o)
	if err != nil {
		return nil, err
	}
	for _, inst := range instances {
		if inst.id == top {
			continue
		}
		r := base
		r.CreationType, r.Successful, r.ContractID, r.ConstructorArgs = "deployed_by_contract", true, inst.id, nil
		describeExecutable(&r, inst.exec)
		out = append(out, r)
	}
	return out, nil
}

// contractID derives a contract's id from its preimage on the processor's network.
func (p *ContractCreation) contractID(pre xdr.ContractIdPreimage) (string, error) {
	b, err := xdr.HashIdPreimage{Type: xdr.EnvelopeTypeEnvelopeTypeContractId,
		ContractId: &xdr.HashIdPreimageContractId{NetworkId: p.netID, ContractIdPreimage: pre}}.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("encoding the contract id preimage: %w", err)
	}
	sum := sha256.Sum256(b)
	return strkey.Encode(strkey.VersionByteContract, sum[:])
}

func describePreimage(r *ContractCreationRecord, pre xdr.ContractIdPreimage) error {
	switch pre.Type {
	case xdr.ContractIdPreimageTypeContractIdPreimageFromAddress:
		fa := pre.MustFromAddress()
		addr, err := fa.Address.String()
		if err != nil {
			return fmt.Errorf("encoding the deployer address: %w", err)
		}
		r.DeployerAddress, r.InitialSalt = addr, hex.EncodeToString(fa.Salt[:])
	case xdr.ContractIdPreimageTypeContractIdPreimageFromAsset:
		a := pre.MustFromAsset()
		if a.IsNative() {
			r.Asset = "native"
		} else {
			var typ, code, issuer string
			if err := a.Extract(&typ, &code, &issuer); err != nil {
				return fmt.Errorf("reading the asset: %w", err)
			}
			r.Asset = code + ":" + issuer
		}
	}
	return nil
}

func describeExecutable(r *ContractCreationRecord, e xdr.ContractExecutable) {
	switch e.Type {
	case xdr.ContractExecutableTypeContractExecutableWasm:
		r.ExecutableType, r.WasmID = "wasm", hex.EncodeToString(e.WasmHash[:])
	case xdr.ContractExecutableTypeContractExecutableStellarAsset:
		r.ExecutableType = "stellar_asset"
	default:
		r.ExecutableType = fmt.Sprintf("unknown_%d", e.Type)
	}
}

type instance struct {
	id   string
	exec xdr.ContractExecutable
}

// createdInstances lists the contract instance entries the operation created, scanning its
// changes through the view and decoding only those entries.
func createdInstances(o *sorobanOp) ([]instance, error) {
	raw, err := o.changesRaw()
	if err != nil || raw == nil {
		return nil, err
	}
	var entries [][]byte
	if err := processor.Try(func() {
		for ch := range xdr.LedgerEntryChangesView(raw).MustIter() {
			if ch.MustType() != xdr.LedgerEntryChangeTypeLedgerEntryCreated {
				continue
			}
			e := ch.MustCreated()
			d := e.MustData()
			if d.MustType() != xdr.LedgerEntryTypeContractData ||
				d.MustContractData().MustKey().MustType() != xdr.ScValTypeScvLedgerKeyContractInstance {
				continue
			}
			entries = append(entries, e.MustRaw())
		}
	}); err != nil {
		return nil, fmt.Errorf("reading operation changes: %w", err)
	}
	out := make([]instance, 0, len(entries))
	for _, b := range entries {
		var e xdr.LedgerEntry
		if err := xdr.SafeUnmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("decoding a created contract instance: %w", err)
		}
		cd := e.Data.MustContractData()
		id, err := cd.Contract.String()
		if err != nil {
			return nil, fmt.Errorf("encoding a created contract's address: %w", err)
		}
		inst, ok := cd.Val.GetInstance()
		if !ok {
			return nil, fmt.Errorf("contract %s: instance entry without an instance value", id)
		}
		out = append(out, instance{id: id, exec: inst.Executable})
	}
	return out, nil
}
