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

// TestPipelineRecordsItsExpandedValues: each pipeline of a file records the variables its own
// definition expanded (for the host's redactor), and never prints their values.
func TestPipelineRecordsItsExpandedValues(t *testing.T) {
	env := map[string]string{"A_KEY": "value-of-a-key", "B_PASS": "value-of-b-pass", "UNUSED": "unused-value"}
	opts := Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	data := []byte(`pipelines:
  a:
    source: {type: S, config: {url: "https://h/?k=${A_KEY}"}}
  b:
    source: {type: S, config: {password: "${B_PASS}", user: literal-user, missing: "${NOT_SET:-dflt}"}}
`)
	ps, errs := ParseFile("f.yaml", data, opts)
	if len(errs) != 0 || len(ps) != 2 {
		t.Fatalf("parse: %v %v", ps, errs)
	}
	byName := map[string]*Pipeline{ps[0].Name: ps[0], ps[1].Name: ps[1]}
	a, b := byName["a"], byName["b"]
	if fmt.Sprint(a.Expanded.Names()) != "[A_KEY]" || fmt.Sprint(b.Expanded.Names()) != "[B_PASS]" {
		t.Fatalf("expanded: a %v, b %v", a.Expanded.Names(), b.Expanded.Names())
	}
	for _, printed := range []string{fmt.Sprint(a.Expanded), fmt.Sprintf("%v %+v %#v %s %q", a.Expanded, b.Expanded, b.Expanded, a.Expanded, b.Expanded)} {
		if strings.Contains(printed, "value-of") {
			t.Errorf("printing a definition shows an expanded value: %s", printed)
		}
	}
	secrets := map[string]string{}
	for _, s := range b.Secrets() {
		if _, seen := secrets[s.Value]; !seen {
			secrets[s.Value] = s.Label // the first label wins, as in redact.New
		}
	}
	if secrets["value-of-b-pass"] != "${B_PASS}" {
		t.Errorf("b's secrets %v: want its password labelled ${B_PASS}", secrets)
	}
	if _, ok := secrets["literal-user"]; ok {
		t.Errorf("b's secrets hold a user name that is no secret: %v", secrets)
	}
}
