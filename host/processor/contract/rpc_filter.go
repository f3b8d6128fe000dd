package contract

import (
	"encoding/json"
	"fmt"
	"strings"

	protocol "github.com/stellar/go-stellar-sdk/protocols/rpc"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// rpcFilterConfig is one entry of a getEvents `filters` list, under Stellar RPC's (and
// upstream's RPCSourceAdapter's) keys: type ("contract", "system" or both, as a list or a
// comma-separated string), contractIds (C... strkeys) and topics (a list of topic filters,
// each a list of segments: "*" for exactly one topic, a trailing "**" for any number of
// further topics, or a base64 XDR ScVal that must equal the topic at that position).
type rpcFilterConfig struct {
	Type        []string   `mapstructure:"type"`
	ContractIDs []string   `mapstructure:"contractIds"`
	Topics      [][]string `mapstructure:"topics"`
}

// rpcFilters is a getEvents filter list, built into the SDK's own filter types
// (protocols/rpc.EventFilter) so matching is Stellar RPC's: an event passes when any filter
// matches it (no filters: every event); within a filter, type, contract ids and topics must
// all match.
type rpcFilters struct {
	req protocol.GetEventsRequest
	// Cheap pre-checks on values read from the view, before an event is decoded: an event
	// whose type and contract id no filter accepts is dropped without decoding it.
	pre []rpcPreFilter
}

type rpcPreFilter struct {
	types     map[xdr.ContractEventType]bool // nil: any type
	contracts contractSet
}

// parseRPCFilters validates the filters as Stellar RPC validates a getEvents request
// (EventFilter.Valid: type contract or system, at most 5 contract ids and 5 topic filters per
// filter, 1 to 4 segments per topic filter, "**" only last; at most 5 filters).
func parseRPCFilters(typeName string, cfgs []rpcFilterConfig) (rpcFilters, error) {
	var fs rpcFilters
	if len(cfgs) > protocol.MaxFiltersLimit {
		return fs, fmt.Errorf("%s: filters: %d filters, Stellar RPC accepts at most %d", typeName, len(cfgs), protocol.MaxFiltersLimit)
	}
	for i, c := range cfgs {
		f := protocol.EventFilter{EventType: protocol.EventTypeSet{}}
		pre := rpcPreFilter{}
		for _, t := range c.Type {
			if t = strings.TrimSpace(t); t != "" {
				f.EventType[t] = nil
			}
		}
		for _, id := range c.ContractIDs {
			if id = strings.TrimSpace(id); id != "" {
				f.ContractIDs = append(f.ContractIDs, id)
			}
		}
		for j, topic := range c.Topics {
			tf := make(protocol.TopicFilter, 0, len(topic))
			for k, seg := range topic {
				var sf protocol.SegmentFilter
				q, _ := json.Marshal(strings.TrimSpace(seg))
				if err := sf.UnmarshalJSON(q); err != nil {
					return fs, fmt.Errorf("%s: filters[%d].topics[%d][%d]: %q is neither \"*\", \"**\" nor a base64 XDR ScVal: %w", typeName, i, j, k, seg, err)
				}
				tf = append(tf, sf)
			}
			f.Topics = append(f.Topics, tf)
		}
		if err := f.Valid(); err != nil {
			return fs, fmt.Errorf("%s: filters[%d]: %w", typeName, i, err)
		}
		if len(f.EventType) > 0 {
			pre.types = map[xdr.ContractEventType]bool{}
			for t := range f.EventType {
				pre.types[protocol.GetEventTypeXDRFromEventType()[t]] = true
			}
		}
		var err error
		if pre.contracts, err = parseContracts(typeName, map[string][]string{fmt.Sprintf("filters[%d].contractIds", i): f.ContractIDs}); err != nil {
			return fs, err
		}
		fs.req.Filters = append(fs.req.Filters, f)
		fs.pre = append(fs.pre, pre)
	}
	return fs, nil
}

// mayMatch reports whether some filter accepts an event of this type and contract id (nil:
// none); false means the event can be dropped undecoded.
func (fs rpcFilters) mayMatch(typ xdr.ContractEventType, contractID []byte) bool {
	if len(fs.pre) == 0 {
		return true
	}
	for _, p := range fs.pre {
		if p.types != nil && !p.types[typ] {
			continue
		}
		if !p.contracts.all() && (contractID == nil || !p.contracts.hasID(contractID)) {
			continue
		}
		return true
	}
	return false
}

// matches applies the filters to a decoded event with the SDK's getEvents matching.
func (fs rpcFilters) matches(ev xdr.ContractEvent) bool {
	return fs.req.Matches(xdr.DiagnosticEvent{Event: ev})
}
