package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// testEnv is the environment the parse tests see.
var testEnv = map[string]string{
	"BUCKET":   "bucket-from-env",
	"EMPTY":    "",
	"INJECT":   "x\nconsumers: [{type: Evil}]\n---\npipeline: {name: Evil}",
	"DB_USER":  "alice",
	"NETWORK2": "testnet",
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

var knownTypes = map[string][]string{
	KindSource:    {"FSBufferedStorageSourceAdapter", "BufferedStorageSourceAdapter"},
	KindProcessor: {"ContractEvent", "LatestLedger"},
	KindConsumer:  {"SaveToParquet", "StdoutConsumer"},
}

var errUnknownType = errors.New("unknown component type")

// knownKeys are the config keys testCheck knows of some types (nearest-first order is the
// registry's business: here they are listed as they are).
var knownKeys = map[string][]string{
	"SaveToParquet": {"local_path", "buffer_size", "compression"},
	"ContractEvent": {"network", "network_passphrase", "contract_ids"},
}

// testCheck plays component.Registry.Check: known type names, one config rule, and unknown
// keys of the types in knownKeys.
func testCheck(kind, typeName string, cfg map[string]any, _ string) ([]UnknownKey, error) {
	if !slices.Contains(knownTypes[kind], typeName) {
		return nil, fmt.Errorf("%w: %s %q", errUnknownType, kind, typeName)
	}
	if typeName == "SaveToParquet" {
		if n, ok := cfg["buffer_size"].(int); ok && n <= 0 {
			return nil, errors.New("buffer_size must be positive")
		}
	}
	var unknown []UnknownKey
	if known, ok := knownKeys[typeName]; ok {
		for k := range cfg {
			if k == "debug" {
				unknown = append(unknown, UnknownKey{Key: k, Ignored: "use --log-level debug"})
				continue
			}
			if !slices.Contains(known, k) {
				unknown = append(unknown, UnknownKey{Key: k, Known: known})
			}
		}
	}
	slices.SortFunc(unknown, func(a, b UnknownKey) int { return strings.Compare(a.Key, b.Key) })
	return unknown, nil
}

func testOpts() Options {
	return Options{Check: testCheck, LookupEnv: lookupIn(testEnv), Logger: slog.New(slog.DiscardHandler)}
}
