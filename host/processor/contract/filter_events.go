package contract

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stellar/go-stellar-sdk/strkey"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor"
)

// filterRuleConfig is one of FilterEventsProcessor's rules, under upstream's keys.
type filterRuleConfig struct {
	Field    string `mapstructure:"field"`
	Operator string `mapstructure:"operator"`
	Value    string `mapstructure:"value"`
}

type filterEventsConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	Rules                   []filterRuleConfig `mapstructure:"rules"`
}

// ruleFields are the fields a rule can test: each yields the values a record offers for it.
// contractId (upstream's name) offers both the C... strkey and the hex of the contract id,
// as upstream compared the hex.
var ruleFields = map[string]func(r *ContractDataRecord) []string{
	"contractId":          contractIDForms,
	"contract_id":         contractIDForms,
	"change_type":         func(r *ContractDataRecord) []string { return []string{r.ChangeType} },
	"contract_durability": func(r *ContractDataRecord) []string { return []string{r.ContractDurability} },
	"contract_key_type":   func(r *ContractDataRecord) []string { return []string{r.ContractKeyType} },
}

func contractIDForms(r *ContractDataRecord) []string {
	forms := []string{r.ContractID}
	if b, err := strkey.Decode(strkey.VersionByteContract, r.ContractID); err == nil {
		forms = append(forms, hex.EncodeToString(b))
	}
	return forms
}

// ruleOps compare a record's value with a rule's value, case-insensitively (upstream's
// operators); neq holds when no value is equal.
var ruleOps = map[string]func(v, want string) bool{
	"eq":         strings.EqualFold,
	"contains":   func(v, want string) bool { return strings.Contains(strings.ToLower(v), strings.ToLower(want)) },
	"startsWith": func(v, want string) bool { return strings.HasPrefix(strings.ToLower(v), strings.ToLower(want)) },
	"endsWith":   func(v, want string) bool { return strings.HasSuffix(strings.ToLower(v), strings.ToLower(want)) },
}

// NewFilterEventsProcessor is the FilterEventsProcessor constructor. FilterEventsProcessor
// emits the ledger's contract data changes (ContractData's records and reader: the SDK's
// ledger change reader on the shared decoded ledger) that match every rule of its config.
//
// Config: network | network_passphrase; rules (required), each {field, operator, value}:
// field contractId (or contract_id: matches the C... strkey or the hex contract id),
// change_type (created | updated | removed | restored), contract_durability, contract_key_type;
// operator eq, neq, contains, startsWith, endsWith (case-insensitive, as upstream). An unknown
// field or operator is a config error (upstream silently matched everything, or nothing).
//
// Upstream differences: upstream looked only at transaction-level changes of version-1
// transaction meta, so on Soroban ledgers (meta v3/v4, changes per operation) it found
// nothing, and it forwarded each change with its entry type set to the change type; here
// every contract data change of the ledger is read, in ContractData's records (same keys, so
// both processors write the same rows).
func NewFilterEventsProcessor(c *filterEventsConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("FilterEventsProcessor", env)
	if err != nil {
		return nil, err
	}
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("FilterEventsProcessor: rules is required (a list of {field, operator, value})")
	}
	type rule struct {
		get  func(*ContractDataRecord) []string
		op   func(v, want string) bool
		neq  bool
		want string
	}
	rules := make([]rule, 0, len(c.Rules))
	for i, rc := range c.Rules {
		get, ok := ruleFields[rc.Field]
		if !ok {
			return nil, fmt.Errorf("FilterEventsProcessor: rules[%d]: unknown field %q (known: %s)", i, rc.Field, strings.Join(slices.Sorted(maps.Keys(ruleFields)), ", "))
		}
		r := rule{get: get, want: rc.Value}
		if rc.Operator == "neq" {
			r.op, r.neq = ruleOps["eq"], true
		} else if r.op, ok = ruleOps[rc.Operator]; !ok {
			return nil, fmt.Errorf("FilterEventsProcessor: rules[%d]: unknown operator %q (known: eq, neq, contains, startsWith, endsWith)", i, rc.Operator)
		}
		rules = append(rules, r)
	}
	return newContractData("FilterEventsProcessor", net, env, func(rec *ContractDataRecord) bool {
		for _, r := range rules {
			hit := slices.ContainsFunc(r.get(rec), func(v string) bool { return r.op(v, r.want) })
			if hit == r.neq {
				return false
			}
		}
		return true
	}), nil
}
