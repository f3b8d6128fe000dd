package contract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/stellar/go-stellar-sdk/ingest"
	protocol "github.com/stellar/go-stellar-sdk/protocols/rpc"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/processor"
)

// The nested parts of a ContractInvocationRecord (its JSON columns).

type invocationEvent struct {
	ContractID    string          `json:"contract_id"`
	Type          string          `json:"type"`
	Topics        []string        `json:"topics"`
	TopicsDecoded json.RawMessage `json:"topics_decoded"`
	Data          string          `json:"data"`
	DataDecoded   json.RawMessage `json:"data_decoded"`
}

type contractCall struct {
	FromContract   string          `json:"from_contract"`
	ToContract     string          `json:"to_contract"`
	Function       string          `json:"function"`
	Arguments      json.RawMessage `json:"arguments"`
	CallDepth      int             `json:"call_depth"`
	AuthType       string          `json:"auth_type"`
	Successful     bool            `json:"successful"`
	ExecutionOrder int             `json:"execution_order"`
}

type stateChange struct {
	ContractID  string          `json:"contract_id"`
	Key         json.RawMessage `json:"key"`
	KeyRaw      string          `json:"key_raw"`
	OldValue    json.RawMessage `json:"old_value"`
	OldValueRaw *string         `json:"old_value_raw"`
	NewValue    json.RawMessage `json:"new_value"`
	NewValueRaw *string         `json:"new_value_raw"`
	Operation   string          `json:"operation"`
}

type ttlExtension struct {
	ContractID string `json:"contract_id"`
	KeyHash    string `json:"key_hash"`
	OldTTL     uint32 `json:"old_ttl"`
	NewTTL     uint32 `json:"new_ttl"`
}

// renderArgs returns the arguments as base64 XDR, as a JSON array and as {"arg_i": ...}.
func renderArgs(args []xdr.ScVal) ([]string, json.RawMessage, json.RawMessage, error) {
	raws := make([]string, len(args))
	decoded := make([]json.RawMessage, len(args))
	named := make(map[string]json.RawMessage, len(args))
	for i, a := range args {
		var err error
		if raws[i], err = xdr.MarshalBase64(a); err != nil {
			return nil, nil, nil, fmt.Errorf("encoding argument %d: %w", i, err)
		}
		if decoded[i], err = processor.ScValJSON(a); err != nil {
			return nil, nil, nil, fmt.Errorf("rendering argument %d: %w", i, err)
		}
		named["arg_"+strconv.Itoa(i)] = decoded[i]
	}
	arr, err := json.Marshal(decoded)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encoding arguments: %w", err)
	}
	obj, err := json.Marshal(named)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encoding arguments: %w", err)
	}
	return raws, arr, obj, nil
}

// renderEvents decodes raw contract events into their JSON column.
func renderEvents(raws [][]byte) (json.RawMessage, error) {
	evs := make([]invocationEvent, 0, len(raws))
	for i, raw := range raws {
		var ev xdr.ContractEvent
		if err := xdr.SafeUnmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decoding event %d: %w", i, err)
		}
		v0, ok := ev.Body.GetV0()
		if !ok {
			return nil, fmt.Errorf("event %d: unsupported body version %d", i, ev.Body.V)
		}
		e := invocationEvent{Type: eventTypeName(ev.Type), Topics: make([]string, len(v0.Topics))}
		if ev.ContractId != nil {
			e.ContractID = strkey.MustEncode(strkey.VersionByteContract, ev.ContractId[:])
		}
		var err error
		for j, tp := range v0.Topics {
			if e.Topics[j], err = xdr.MarshalBase64(tp); err != nil {
				return nil, fmt.Errorf("event %d: encoding topic %d: %w", i, j, err)
			}
		}
		if e.TopicsDecoded, err = processor.ScValsJSON(v0.Topics); err != nil {
			return nil, fmt.Errorf("event %d: rendering topics: %w", i, err)
		}
		if e.Data, err = xdr.MarshalBase64(v0.Data); err != nil {
			return nil, fmt.Errorf("event %d: encoding data: %w", i, err)
		}
		if e.DataDecoded, err = processor.ScValJSON(v0.Data); err != nil {
			return nil, fmt.Errorf("event %d: rendering data: %w", i, err)
		}
		evs = append(evs, e)
	}
	b, err := json.Marshal(evs)
	if err != nil {
		return nil, fmt.Errorf("encoding events: %w", err)
	}
	return b, nil
}

// eventTypeNames are the SDK's names of the event types (protocols/rpc: system, contract,
// diagnostic).
var eventTypeNames = protocol.GetEventTypeFromEventTypeXDR()

func eventTypeName(t xdr.ContractEventType) string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("unknown_%d", t)
}

// authorizedCalls walks the operation's authorization trees depth-first, in order: each
// contract function a node authorizes is a call from its parent's contract (the invoked
// contract for a root) to its own, unless the two are the same contract. Nodes that authorize
// a contract creation name no contract; their children keep the parent's.
func authorizedCalls(auth []xdr.SorobanAuthorizationEntry, invoked string, successful bool) ([]contractCall, error) {
	calls := []contractCall{}
	var walk func(n *xdr.SorobanAuthorizedInvocation, from string, depth int, authType string) error
	walk = func(n *xdr.SorobanAuthorizedInvocation, from string, depth int, authType string) error {
		to := from
		if fn, ok := n.Function.GetContractFn(); ok {
			c, err := fn.ContractAddress.String()
			if err != nil {
				return fmt.Errorf("encoding an authorized contract: %w", err)
			}
			to = c
			if from != "" && c != from {
				args, err := processor.ScValsJSON(fn.Args)
				if err != nil {
					return fmt.Errorf("rendering authorized call arguments: %w", err)
				}
				calls = append(calls, contractCall{FromContract: from, ToContract: c, Function: string(fn.FunctionName),
					Arguments: args, CallDepth: depth, AuthType: authType, Successful: successful, ExecutionOrder: len(calls)})
			}
		}
		for i := range n.SubInvocations {
			if err := walk(&n.SubInvocations[i], to, depth+1, authType); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range auth {
		authType := "contract" // an address credential (account or contract), upstream's name
		if auth[i].Credentials.Type == xdr.SorobanCredentialsTypeSorobanCredentialsSourceAccount {
			authType = "source_account"
		}
		if err := walk(&auth[i].RootInvocation, invoked, 0, authType); err != nil {
			return nil, err
		}
	}
	return calls, nil
}

// stateChanges splits an operation's changes into its contract data changes and the TTL
// changes that raised a live-until ledger (footprint: key hash -> contract, built on first
// use).
func stateChanges(chs []ingest.Change, footprint func() map[xdr.Hash]string) ([]stateChange, []ttlExtension, error) {
	states, ttls := []stateChange{}, []ttlExtension{}
	var owners map[xdr.Hash]string
	for _, ch := range chs {
		switch ch.Type {
		case xdr.LedgerEntryTypeContractData:
			s, err := dataChange(ch)
			if err != nil {
				return nil, nil, err
			}
			states = append(states, s)
		case xdr.LedgerEntryTypeTtl:
			if ch.Post == nil {
				continue
			}
			post := ch.Post.Data.MustTtl()
			var old uint32
			if ch.Pre != nil {
				old = uint32(ch.Pre.Data.MustTtl().LiveUntilLedgerSeq)
			}
			if uint32(post.LiveUntilLedgerSeq) <= old {
				continue
			}
			if owners == nil {
				owners = footprint()
			}
			ttls = append(ttls, ttlExtension{ContractID: owners[post.KeyHash], KeyHash: keyHashHex(post.KeyHash),
				OldTTL: old, NewTTL: uint32(post.LiveUntilLedgerSeq)})
		}
	}
	return states, ttls, nil
}

func dataChange(ch ingest.Change) (stateChange, error) {
	var s stateChange
	switch ch.ChangeType {
	case xdr.LedgerEntryChangeTypeLedgerEntryCreated:
		s.Operation = "create"
	case xdr.LedgerEntryChangeTypeLedgerEntryUpdated:
		s.Operation = "update"
	case xdr.LedgerEntryChangeTypeLedgerEntryRemoved:
		s.Operation = "delete"
	case xdr.LedgerEntryChangeTypeLedgerEntryRestored:
		s.Operation = "restore"
	default:
		return s, fmt.Errorf("unexpected change type %v", ch.ChangeType)
	}
	entry := ch.Post
	if entry == nil {
		entry = ch.Pre
	}
	if entry == nil {
		return s, fmt.Errorf("%s change without its entry", s.Operation)
	}
	cd := entry.Data.MustContractData()
	var err error
	if s.ContractID, err = cd.Contract.String(); err != nil {
		return s, fmt.Errorf("encoding contract address: %w", err)
	}
	if s.KeyRaw, err = xdr.MarshalBase64(cd.Key); err != nil {
		return s, fmt.Errorf("encoding key: %w", err)
	}
	if s.Key, err = processor.ScValJSON(cd.Key); err != nil {
		return s, fmt.Errorf("rendering key: %w", err)
	}
	val := func(e *xdr.LedgerEntry) (json.RawMessage, *string, error) {
		if e == nil {
			return nil, nil, nil
		}
		v := e.Data.MustContractData().Val
		raw, err := v.MarshalBinary()
		if err != nil {
			return nil, nil, fmt.Errorf("encoding value: %w", err)
		}
		b := base64.StdEncoding.EncodeToString(raw)
		j, err := processor.ScValJSON(v)
		if err != nil {
			return nil, nil, fmt.Errorf("rendering value: %w", err)
		}
		return j, &b, nil
	}
	if s.OldValue, s.OldValueRaw, err = val(ch.Pre); err != nil {
		return s, err
	}
	if s.NewValue, s.NewValueRaw, err = val(ch.Post); err != nil {
		return s, err
	}
	return s, nil
}
