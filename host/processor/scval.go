package processor

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// ScValJSON renders a Soroban value as JSON in the shape of the stellar-xdr JSON encoding that
// Hubble's *_decoded columns use: a one-key object naming the type ({"symbol":"transfer"},
// {"i128":"-5"}, {"address":"G..."}, {"vec":[...]}, {"map":[{"key":..,"val":..}]}), bare
// strings for unit variants ("void", "ledger_key_contract_instance"); 64-bit and wider
// integers are decimal strings so no JSON reader loses precision.
func ScValJSON(v xdr.ScVal) (json.RawMessage, error) {
	x, err := scValAny(v, 0)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("encoding value as JSON: %w", err)
	}
	return b, nil
}

// ScValsJSON renders a list of values as a JSON array.
func ScValsJSON(vs []xdr.ScVal) (json.RawMessage, error) {
	arr := make([]any, 0, len(vs))
	for i := range vs {
		x, err := scValAny(vs[i], 0)
		if err != nil {
			return nil, err
		}
		arr = append(arr, x)
	}
	b, err := json.Marshal(arr)
	if err != nil {
		return nil, fmt.Errorf("encoding values as JSON: %w", err)
	}
	return b, nil
}

const maxScValDepth = 200

func one(k string, v any) map[string]any { return map[string]any{k: v} }

func scValAny(v xdr.ScVal, depth int) (any, error) {
	if depth > maxScValDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxScValDepth)
	}
	if _, ok := v.ArmForSwitch(int32(v.Type)); !ok {
		return nil, fmt.Errorf("unknown ScVal type %d", v.Type)
	}
	switch v.Type {
	case xdr.ScValTypeScvBool:
		return one("bool", v.MustB()), nil
	case xdr.ScValTypeScvVoid:
		return "void", nil
	case xdr.ScValTypeScvError:
		return one("error", scErrorAny(v.MustError())), nil
	case xdr.ScValTypeScvU32:
		return one("u32", uint32(v.MustU32())), nil
	case xdr.ScValTypeScvI32:
		return one("i32", int32(v.MustI32())), nil
	case xdr.ScValTypeScvU64:
		return one("u64", strconv.FormatUint(uint64(v.MustU64()), 10)), nil
	case xdr.ScValTypeScvI64:
		return one("i64", strconv.FormatInt(int64(v.MustI64()), 10)), nil
	case xdr.ScValTypeScvTimepoint:
		return one("timepoint", strconv.FormatUint(uint64(v.MustTimepoint()), 10)), nil
	case xdr.ScValTypeScvDuration:
		return one("duration", strconv.FormatUint(uint64(v.MustDuration()), 10)), nil
	case xdr.ScValTypeScvU128:
		p := v.MustU128()
		return one("u128", wide(false, uint64(p.Hi), uint64(p.Lo))), nil
	case xdr.ScValTypeScvI128:
		p := v.MustI128()
		return one("i128", wide(true, uint64(p.Hi), uint64(p.Lo))), nil //nolint:gosec // two's complement bits
	case xdr.ScValTypeScvU256:
		p := v.MustU256()
		return one("u256", wide(false, uint64(p.HiHi), uint64(p.HiLo), uint64(p.LoHi), uint64(p.LoLo))), nil
	case xdr.ScValTypeScvI256:
		p := v.MustI256()
		return one("i256", wide(true, uint64(p.HiHi), uint64(p.HiLo), uint64(p.LoHi), uint64(p.LoLo))), nil //nolint:gosec // bits
	case xdr.ScValTypeScvBytes:
		return one("bytes", hex.EncodeToString(v.MustBytes())), nil
	case xdr.ScValTypeScvString:
		return one("string", string(v.MustStr())), nil
	case xdr.ScValTypeScvSymbol:
		return one("symbol", string(v.MustSym())), nil
	case xdr.ScValTypeScvVec:
		vec := v.MustVec()
		if vec == nil {
			return one("vec", nil), nil
		}
		arr := make([]any, 0, len(*vec))
		for _, e := range *vec {
			x, err := scValAny(e, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, x)
		}
		return one("vec", arr), nil
	case xdr.ScValTypeScvMap:
		m := v.MustMap()
		if m == nil {
			return one("map", nil), nil
		}
		entries, err := scMapAny(*m, depth)
		if err != nil {
			return nil, err
		}
		return one("map", entries), nil
	case xdr.ScValTypeScvAddress:
		s, err := v.MustAddress().String()
		if err != nil {
			return nil, fmt.Errorf("encoding address: %w", err)
		}
		return one("address", s), nil
	case xdr.ScValTypeScvContractInstance:
		inst := v.MustInstance()
		exec, err := executableAny(inst.Executable)
		if err != nil {
			return nil, err
		}
		var storage any
		if inst.Storage != nil {
			if storage, err = scMapAny(*inst.Storage, depth); err != nil {
				return nil, err
			}
		}
		return one("contract_instance", map[string]any{"executable": exec, "storage": storage}), nil
	case xdr.ScValTypeScvLedgerKeyContractInstance:
		return "ledger_key_contract_instance", nil
	case xdr.ScValTypeScvLedgerKeyNonce:
		return one("ledger_key_nonce", map[string]any{"nonce": strconv.FormatInt(int64(v.MustNonceKey().Nonce), 10)}), nil
	default:
		// A type this renderer does not know yet: keep it lossless as base64 XDR.
		raw, err := v.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encoding ScVal type %d: %w", v.Type, err)
		}
		return one(snake(strings.TrimPrefix(v.Type.String(), "ScValTypeScv")), map[string]any{"xdr": raw}), nil
	}
}

func scMapAny(m xdr.ScMap, depth int) ([]any, error) {
	entries := make([]any, 0, len(m))
	for _, e := range m {
		k, err := scValAny(e.Key, depth+1)
		if err != nil {
			return nil, err
		}
		val, err := scValAny(e.Val, depth+1)
		if err != nil {
			return nil, err
		}
		entries = append(entries, map[string]any{"key": k, "val": val})
	}
	return entries, nil
}

func executableAny(e xdr.ContractExecutable) (any, error) {
	switch e.Type {
	case xdr.ContractExecutableTypeContractExecutableWasm:
		h := e.MustWasmHash()
		return one("wasm", hex.EncodeToString(h[:])), nil
	case xdr.ContractExecutableTypeContractExecutableStellarAsset:
		return "stellar_asset", nil
	default:
		raw, err := e.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encoding contract executable: %w", err)
		}
		return one(snake(strings.TrimPrefix(e.Type.String(), "ContractExecutableTypeContractExecutable")), map[string]any{"xdr": raw}), nil
	}
}

func scErrorAny(e xdr.ScError) any {
	name := snake(strings.TrimPrefix(e.Type.String(), "ScErrorTypeSce"))
	if e.Type == xdr.ScErrorTypeSceContract && e.ContractCode != nil {
		return one(name, uint32(*e.ContractCode))
	}
	if e.Code != nil {
		return one(name, snake(strings.TrimPrefix(e.Code.String(), "ScErrorCodeScec")))
	}
	return name
}

// wide renders big-endian 64-bit limbs as a decimal integer (two's complement if signed).
func wide(signed bool, limbs ...uint64) string {
	n := new(big.Int)
	for _, l := range limbs {
		n.Lsh(n, 64)
		n.Or(n, new(big.Int).SetUint64(l))
	}
	if signed && limbs[0]>>63 == 1 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(64*len(limbs))))
	}
	return n.String()
}

// snake turns "WasmVm" into "wasm_vm".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
