package contract

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// ExtractedContractInvocationRecord is a contract invocation with the business fields an
// extraction schema read from its arguments, under upstream's names. A field the schema
// does not extract (or an optional one the arguments lack, without a default) is null.
type ExtractedContractInvocationRecord struct {
	Toid            uint64    `json:"toid"` // the operation's TOID (the SDK's toid)
	Ledger          uint32    `json:"ledger"`
	Timestamp       time.Time `json:"timestamp"`
	ContractID      string    `json:"contract_id"`
	FunctionName    string    `json:"function_name"`
	InvokingAccount string    `json:"invoking_account"`
	TxHash          string    `json:"transaction_hash"`
	Funder          *string   `json:"funder"`
	Recipient       *string   `json:"recipient"`
	Amount          *uint64   `json:"amount"`
	ProjectID       *string   `json:"project_id"`
	MemoText        *string   `json:"memo_text"`
	Email           *string   `json:"email"`
	SchemaName      string    `json:"schema_name"`
	Successful      bool      `json:"successful"`

	key string
}

// RecordKind implements component.Record (upstream's table extracted_contract_invocations).
func (ExtractedContractInvocationRecord) RecordKind() string { return "extracted_contract_invocations" }

// NaturalKey implements component.Record: that of the invocation (network, ledger,
// transaction, operation).
func (r ExtractedContractInvocationRecord) NaturalKey() string { return r.key }

func (r ExtractedContractInvocationRecord) contractAddress() string { return r.ContractID }

// extractedFields are the business fields a schema can fill; amount is the one number.
var extractedFields = []string{"funder", "recipient", "amount", "project_id", "memo_text", "email"}

type invocationExtractorConfig struct {
	ExtractionSchemas map[string]extractionSchema `mapstructure:"extraction_schemas"`
}

// extractionSchema: which invocations (function_name of contract_ids) and how to read each
// field (extractors, by field name) and check it (validation, by field name).
type extractionSchema struct {
	FunctionName string                    `mapstructure:"function_name"`
	ContractIDs  []string                  `mapstructure:"contract_ids"`
	Extractors   map[string]fieldExtractor `mapstructure:"extractors"`
	Validation   map[string]validationRule `mapstructure:"validation"`
}

// fieldExtractor reads argument argument_index (0-based), or the field field_path of that
// argument when it is a struct or map, as field_type: address (a G/C strkey), string (a
// string, symbol, address, integer, bool or bytes as hex) or uint64 (an integer in
// 0..2^64-1).
type fieldExtractor struct {
	ArgumentIndex *int   `mapstructure:"argument_index"`
	FieldPath     string `mapstructure:"field_path"`
	FieldType     string `mapstructure:"field_type"`
	Required      bool   `mapstructure:"required"`
	DefaultValue  string `mapstructure:"default_value"`
}

// validationRule: lengths (bytes) and pattern of a text field, bounds of amount.
type validationRule struct {
	MinLength int      `mapstructure:"min_length"`
	MaxLength int      `mapstructure:"max_length"`
	Pattern   string   `mapstructure:"pattern"`
	MinValue  *float64 `mapstructure:"min_value"`
	MaxValue  *float64 `mapstructure:"max_value"`

	re *regexp.Regexp
}

// ContractInvocationExtractor is a transformer of ContractInvocation's records (upstream
// chains it after ContractInvocation): an invocation of a function and contract that an
// extraction schema names becomes an ExtractedContractInvocationRecord whose business fields
// (funder, recipient, amount, project_id, memo_text, email) are read from its arguments as
// the schema says; invocations no schema names are skipped (schema_not_found), and so are
// those whose required fields cannot be read (failed_extractions) or whose fields fail the
// schema's validation (validation_errors, also counted as failed), each logged. Other
// records are ignored. Arguments are read from the invocation's XDR (arguments_raw), not
// from a JSON rendering.
//
// Config (upstream's keys): extraction_schemas, by schema name: function_name, contract_ids,
// extractors {field: {argument_index, field_path, field_type, required, default_value}},
// validation {field: {min_length, max_length, pattern, min_value, max_value}}.
//
// Upstream differences, each a fix: a config error (an unknown field, a field_type the field
// cannot hold, a bad pattern or contract id, two schemas for one contract and function, of
// which upstream kept one at random) fails at construction instead of at each invocation;
// amounts are exact or an error, never truncated from a float; toid is the SDK's TOID of
// the operation (upstream's own formula used a 0-based operation index); upstream's
// processed_at (the wall clock) is left out so a replay makes the same record.
type ContractInvocationExtractor struct {
	schemas map[string]*namedSchema // by contract id + ":" + function
	skips   *processor.SkipLog
	now     func() time.Time
	stats   *processor.Counters
}

type namedSchema struct {
	name string
	extractionSchema
}

// NewContractInvocationExtractor is the ContractInvocationExtractor constructor.
func NewContractInvocationExtractor(c *invocationExtractorConfig, env component.Env) (component.Processor, error) {
	const typ = "ContractInvocationExtractor"
	if len(c.ExtractionSchemas) == 0 {
		return nil, errors.New(typ + ": extraction_schemas is required")
	}
	p := &ContractInvocationExtractor{schemas: map[string]*namedSchema{}, skips: processor.NewSkipLog(env.Logger), now: processor.Clock(env),
		stats: processor.NewCounters("processed_ledgers", "processed_invocations", "successful_extractions", "failed_extractions",
			"schema_not_found", "validation_errors", "last_ledger", "last_processed_time")}
	for name, s := range c.ExtractionSchemas {
		if err := checkSchema(&s); err != nil {
			return nil, fmt.Errorf("%s: extraction_schemas.%s: %w", typ, name, err)
		}
		if _, err := parseContracts(typ, map[string][]string{"extraction_schemas." + name + ".contract_ids": s.ContractIDs}); err != nil {
			return nil, err
		}
		ns := &namedSchema{name: name, extractionSchema: s}
		for _, id := range s.ContractIDs {
			if id = strings.TrimSpace(id); id == "" {
				continue
			}
			k := id + ":" + s.FunctionName
			if other, dup := p.schemas[k]; dup {
				return nil, fmt.Errorf("%s: extraction_schemas %s and %s both extract %s of contract %s", typ,
					min(name, other.name), max(name, other.name), s.FunctionName, id)
			}
			p.schemas[k] = ns
		}
	}
	return p, nil
}

// checkSchema checks a schema's keys and compiles its patterns.
func checkSchema(s *extractionSchema) error {
	if s.FunctionName == "" || len(s.ContractIDs) == 0 {
		return errors.New("function_name and contract_ids are required")
	}
	for f, e := range s.Extractors {
		if !slices.Contains(extractedFields, f) {
			return fmt.Errorf("extractors: unknown field %q (fields: %s)", f, strings.Join(extractedFields, ", "))
		}
		if e.ArgumentIndex == nil || *e.ArgumentIndex < 0 {
			return fmt.Errorf("extractors.%s: argument_index (0 or more) is required", f)
		}
		want := []string{"string", "address"}
		if f == "amount" {
			want = []string{"uint64"}
		}
		if !slices.Contains(want, e.FieldType) {
			return fmt.Errorf("extractors.%s: field_type %q (%s takes %s)", f, e.FieldType, f, strings.Join(want, " or "))
		}
		if e.DefaultValue != "" && f == "amount" {
			if _, err := strconv.ParseUint(e.DefaultValue, 10, 64); err != nil {
				return fmt.Errorf("extractors.%s: default_value is not a uint64", f)
			}
		}
	}
	for f, r := range s.Validation {
		if !slices.Contains(extractedFields, f) {
			return fmt.Errorf("validation: unknown field %q (fields: %s)", f, strings.Join(extractedFields, ", "))
		}
		if r.Pattern != "" {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return fmt.Errorf("validation.%s: pattern: %w", f, err)
			}
			r.re = re
			s.Validation[f] = r
		}
	}
	return nil
}

// Stats implements component.StatsReporter.
func (p *ContractInvocationExtractor) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor: it reads the contract invocations in in.
func (p *ContractInvocationExtractor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	var out []component.Record
	var seen, missing, failed, invalid int
	for _, r := range in {
		inv, ok := r.(ContractInvocationRecord)
		if !ok {
			continue
		}
		seen++
		s := p.schemas[inv.ContractID+":"+inv.FunctionName]
		if s == nil {
			missing++
			continue
		}
		rec, err := s.extract(inv)
		if err == nil {
			if err = s.validate(&rec); err != nil {
				invalid++
			}
		}
		if err != nil {
			failed++
			p.skips.Warn("ContractInvocationExtractor: skipping an invocation", "schema", s.name, "contract_id", inv.ContractID,
				"function", inv.FunctionName, "ledger", inv.LedgerSequence, "transaction", inv.TransactionHash, "error", err)
			continue
		}
		out = append(out, rec)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["processed_invocations"] += float64(seen)
		m["successful_extractions"] += float64(len(out))
		m["failed_extractions"] += float64(failed)
		m["schema_not_found"] += float64(missing)
		m["validation_errors"] += float64(invalid)
	})
	return out, nil
}

// extract reads the schema's fields from the invocation's arguments.
func (s *namedSchema) extract(inv ContractInvocationRecord) (ExtractedContractInvocationRecord, error) {
	r := ExtractedContractInvocationRecord{Toid: uint64(inv.OperationID), Ledger: inv.LedgerSequence, Timestamp: inv.Timestamp,
		ContractID: inv.ContractID, FunctionName: inv.FunctionName, InvokingAccount: inv.InvokingAccount, TxHash: inv.TransactionHash,
		SchemaName: s.name, Successful: inv.Successful, key: inv.NaturalKey()}
	args := make([]*xdr.ScVal, len(inv.ArgumentsRaw)) // decoded once, for the fields read from them
	for _, f := range extractedFields {
		e, ok := s.Extractors[f]
		if !ok {
			continue
		}
		text, err := argument(inv.ArgumentsRaw, args, e)
		if err != nil {
			if e.Required {
				return r, fmt.Errorf("required field %s: %w", f, err)
			}
			if e.DefaultValue == "" {
				continue
			}
			text = e.DefaultValue
		}
		if f == "amount" {
			n, err := strconv.ParseUint(text, 10, 64)
			if err != nil {
				return r, fmt.Errorf("field amount: %s does not fit a uint64", text)
			}
			r.Amount = &n
			continue
		}
		*r.text(f) = &text
	}
	return r, nil
}

// text is the record's text field f.
func (r *ExtractedContractInvocationRecord) text(f string) **string {
	switch f {
	case "funder":
		return &r.Funder
	case "recipient":
		return &r.Recipient
	case "project_id":
		return &r.ProjectID
	case "memo_text":
		return &r.MemoText
	}
	return &r.Email
}

// argument reads one extractor's value, as text (a uint64's decimal digits). args holds the
// arguments decoded so far (raws[i] is decoded into args[i] on first use).
func argument(raws []string, args []*xdr.ScVal, e fieldExtractor) (string, error) {
	i := *e.ArgumentIndex
	if i >= len(raws) {
		return "", fmt.Errorf("argument %d missing (%d arguments)", i, len(raws))
	}
	if args[i] == nil {
		var dec xdr.ScVal
		if err := unmarshalB64(raws[i], &dec); err != nil {
			return "", fmt.Errorf("decoding argument %d: %w", i, err)
		}
		args[i] = &dec
	}
	v := *args[i]
	if e.FieldPath != "" {
		m, ok := v.GetMap()
		if !ok || m == nil {
			return "", fmt.Errorf("argument %d is a %s, not a struct or map", i, v.Type)
		}
		found := false
		for _, en := range *m {
			if name(en.Key) == e.FieldPath {
				v, found = en.Val, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("field %s missing in argument %d", e.FieldPath, i)
		}
	}
	switch e.FieldType {
	case "address":
		return addressText(v)
	case "uint64":
		n, ok := intText(v)
		if !ok {
			return "", fmt.Errorf("a %s, not an integer", v.Type)
		}
		return n, nil
	}
	if n, ok := intText(v); ok {
		return n, nil
	}
	switch v.Type {
	case xdr.ScValTypeScvString, xdr.ScValTypeScvSymbol:
		return name(v), nil
	case xdr.ScValTypeScvAddress:
		return addressText(v)
	case xdr.ScValTypeScvBool:
		return strconv.FormatBool(v.MustB()), nil
	case xdr.ScValTypeScvBytes:
		return hex.EncodeToString(v.MustBytes()), nil
	}
	return "", fmt.Errorf("a %s, not text", v.Type)
}

// validate checks the record's fields against the schema's rules (nil when it passes); an
// absent field passes (as upstream's empty one did) unless a min_length asks for text.
func (s *namedSchema) validate(r *ExtractedContractInvocationRecord) error {
	for _, f := range extractedFields {
		rule, ok := s.Validation[f]
		if !ok {
			continue
		}
		if f == "amount" {
			if r.Amount == nil {
				continue
			}
			n := float64(*r.Amount)
			if (rule.MinValue != nil && n < *rule.MinValue) || (rule.MaxValue != nil && n > *rule.MaxValue) {
				return fmt.Errorf("amount %d out of bounds", *r.Amount)
			}
			continue
		}
		t := ""
		if p := *r.text(f); p != nil {
			t = *p
		}
		if t == "" && rule.MinLength == 0 {
			continue
		}
		switch {
		case len(t) < rule.MinLength:
			return fmt.Errorf("%s shorter than %d", f, rule.MinLength)
		case rule.MaxLength > 0 && len(t) > rule.MaxLength:
			return fmt.Errorf("%s longer than %d", f, rule.MaxLength)
		case rule.re != nil && !rule.re.MatchString(t):
			return fmt.Errorf("%s does not match its pattern", f)
		}
	}
	return nil
}
