package contract

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// Reading the values of contract events that transformers (Soroswap, EventPaymentExtractor)
// take from ContractEvent's records: the records carry base64 XDR, decoded here.

// decodedEvent is a ContractEventRecord's topics and data, decoded.
type decodedEvent struct {
	topics []xdr.ScVal
	data   xdr.ScVal
}

func decodeEventRecord(r ContractEventRecord) (decodedEvent, error) {
	var d decodedEvent
	d.topics = make([]xdr.ScVal, len(r.Topics))
	for i, t := range r.Topics {
		if err := unmarshalB64(t, &d.topics[i]); err != nil {
			return d, fmt.Errorf("decoding topic %d: %w", i, err)
		}
	}
	if err := unmarshalB64(r.Data, &d.data); err != nil {
		return d, fmt.Errorf("decoding data: %w", err)
	}
	return d, nil
}

// unmarshalB64 decodes base64 XDR (xdr.SafeUnmarshalBase64 allocates a stream decoder per
// value; this decodes the bytes first).
func unmarshalB64(s string, v *xdr.ScVal) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return xdr.SafeUnmarshal(b, v)
}

// name is the text of a symbol or string value ("" for any other type).
func name(v xdr.ScVal) string {
	switch v.Type {
	case xdr.ScValTypeScvSymbol:
		return string(v.MustSym())
	case xdr.ScValTypeScvString:
		return string(v.MustStr())
	}
	return ""
}

// firstSymbol is the first symbol among the topics ("" when none is).
func firstSymbol(topics []xdr.ScVal) string {
	for _, t := range topics {
		if t.Type == xdr.ScValTypeScvSymbol {
			return string(t.MustSym())
		}
	}
	return ""
}

// structFields reads a Soroban contracttype struct (a map with symbol keys) into its fields.
func structFields(v xdr.ScVal) (map[string]xdr.ScVal, error) {
	m, ok := v.GetMap()
	if !ok || m == nil {
		return nil, fmt.Errorf("data is a %s, not a struct", v.Type)
	}
	out := make(map[string]xdr.ScVal, len(*m))
	for _, e := range *m {
		if e.Key.Type != xdr.ScValTypeScvSymbol {
			return nil, fmt.Errorf("struct key is a %s, not a symbol", e.Key.Type)
		}
		out[string(e.Key.MustSym())] = e.Val
	}
	return out, nil
}

// field returns a struct field or an error naming it.
func field(fs map[string]xdr.ScVal, key string) (xdr.ScVal, error) {
	v, ok := fs[key]
	if !ok {
		return xdr.ScVal{}, fmt.Errorf("field %s missing", key)
	}
	return v, nil
}

// addressField reads an address field as a strkey (G... or C...).
func addressField(fs map[string]xdr.ScVal, key string) (string, error) {
	v, err := field(fs, key)
	if err != nil {
		return "", err
	}
	s, err := addressText(v)
	if err != nil {
		return "", fmt.Errorf("field %s: %w", key, err)
	}
	return s, nil
}

// addressText is an address value as a strkey (G... or C...).
func addressText(v xdr.ScVal) (string, error) {
	a, ok := v.GetAddress()
	if !ok {
		return "", fmt.Errorf("a %s, not an address", v.Type)
	}
	return a.String()
}

// intField reads an integer field of any Soroban integer type as a decimal string.
func intField(fs map[string]xdr.ScVal, key string) (string, error) {
	v, err := field(fs, key)
	if err != nil {
		return "", err
	}
	n, ok := intText(v)
	if !ok {
		return "", fmt.Errorf("field %s is a %s, not an integer", key, v.Type)
	}
	return n, nil
}

// intText is a value of any Soroban integer type as a decimal string (false for another type).
func intText(v xdr.ScVal) (string, bool) {
	switch v.Type {
	case xdr.ScValTypeScvU32:
		return strconv.FormatUint(uint64(v.MustU32()), 10), true
	case xdr.ScValTypeScvI32:
		return strconv.FormatInt(int64(v.MustI32()), 10), true
	case xdr.ScValTypeScvU64:
		return strconv.FormatUint(uint64(v.MustU64()), 10), true
	case xdr.ScValTypeScvI64:
		return strconv.FormatInt(int64(v.MustI64()), 10), true
	case xdr.ScValTypeScvI128:
		return amount.String128Raw(v.MustI128()), true
	case xdr.ScValTypeScvU128:
		p := v.MustU128()
		n := new(big.Int).SetUint64(uint64(p.Hi))
		return n.Lsh(n, 64).Or(n, new(big.Int).SetUint64(uint64(p.Lo))).String(), true
	}
	return "", false
}

// uint64Field reads an integer field that must fit a uint64 (non-negative).
func uint64Field(fs map[string]xdr.ScVal, key string) (uint64, error) {
	s, err := intField(fs, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s: %s does not fit 0..%d", key, s, uint64(math.MaxUint64))
	}
	return n, nil
}
