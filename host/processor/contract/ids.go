package contract

import (
	"fmt"
	"strings"

	"github.com/stellar/go-stellar-sdk/strkey"
)

// contractSet is a contract filter given under upstream's keys: contract_id (one C... strkey)
// and contract_ids (a list, or a comma-separated string). The zero value (no ids given)
// matches every contract.
type contractSet struct {
	ids  map[[32]byte]struct{}
	strs map[string]struct{}
}

// parseContracts builds the filter of the keys named in errors (e.g. "contract_id",
// "contract_ids"); blank entries are skipped, anything that is not a contract strkey is an
// error naming the processor type and the key.
func parseContracts(typeName string, keys map[string][]string) (contractSet, error) {
	var s contractSet
	for key, vals := range keys {
		for _, id := range vals {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			b, err := strkey.Decode(strkey.VersionByteContract, id)
			if err != nil || len(b) != 32 {
				return contractSet{}, fmt.Errorf("%s: %s: %q is not a contract strkey (C...)", typeName, key, id)
			}
			if s.ids == nil {
				s.ids, s.strs = map[[32]byte]struct{}{}, map[string]struct{}{}
			}
			s.ids[[32]byte(b)] = struct{}{}
			s.strs[id] = struct{}{}
		}
	}
	return s, nil
}

// all reports whether the filter matches every contract.
func (s contractSet) all() bool { return s.ids == nil }

// hasID reports whether the raw contract id passes the filter.
func (s contractSet) hasID(id []byte) bool {
	if s.ids == nil {
		return true
	}
	if len(id) != 32 {
		return false
	}
	_, ok := s.ids[[32]byte(id)]
	return ok
}

// has reports whether the contract strkey passes the filter ("" passes only an empty filter).
func (s contractSet) has(c string) bool {
	if s.ids == nil {
		return true
	}
	_, ok := s.strs[c]
	return ok
}
