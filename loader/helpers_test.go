package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// testCheck plays component.Registry.Check: known type names, and one config rule.
func testCheck(kind, typeName string, cfg map[string]any, _ string) error {
	if !slices.Contains(knownTypes[kind], typeName) {
		return fmt.Errorf("%w: %s %q", errUnknownType, kind, typeName)
	}
	if typeName == "SaveToParquet" {
		if n, ok := cfg["buffer_size"].(int); ok && n <= 0 {
			return errors.New("buffer_size must be positive")
		}
	}
	return nil
}

func testOpts() Options {
	return Options{Check: testCheck, LookupEnv: lookupIn(testEnv), Logger: slog.New(slog.DiscardHandler)}
}
