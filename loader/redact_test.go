package loader

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrorsRedactExpandedValues: a component check that quotes the value it rejects must not
// leak what ${VAR} expanded to (often a secret) into the error text; errors.Is still works.
func TestErrorsRedactExpandedValues(t *testing.T) {
	errBad := errors.New("bad value")
	env := map[string]string{"SECRET_NET": "s3cr3t-network-value", "SHORT": "1"}
	opts := Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Check: func(kind, typ string, cfg map[string]any, network string) ([]UnknownKey, error) {
			if kind == KindSource {
				return nil, fmt.Errorf("unknown network %q (retries %v): %w", cfg["network"], cfg["retries"], errBad)
			}
			return nil, nil
		},
	}
	data := []byte("pipeline:\n  name: p\n  source: {type: S, config: {network: \"${SECRET_NET}\", retries: \"${SHORT}\"}}\n" +
		"  processors: [{type: P, config: {}}]\n  consumers: [{type: C, config: {}}]\n")
	_, errs := ParseFile("f.yaml", data, opts)
	if len(errs) != 1 {
		t.Fatalf("want 1 error, got %v", errs)
	}
	e := errs[0]
	if strings.Contains(e.Error(), "s3cr3t") || strings.Contains(e.Err.Error(), "s3cr3t") {
		t.Errorf("the error leaks the expanded value: %q / %q", e.Error(), e.Err.Error())
	}
	if !strings.Contains(e.Error(), `unknown network "${SECRET_NET}"`) || !strings.Contains(e.Error(), "retries 1") {
		t.Errorf("error text %q: want the variable name in place of its value, short values kept", e.Error())
	}
	if !errors.Is(e, errBad) {
		t.Errorf("errors.Is lost the cause")
	}
}
