package component

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/ledger"
)

type nopProcessor struct{ cfg *testConfig }

func (nopProcessor) Process(context.Context, *ledger.Ledger, []Record) ([]Record, error) {
	return nil, nil
}

type nestedConfig struct {
	Project string `mapstructure:"project"`
	Region  string `mapstructure:"region"`
}

type commonTest struct {
	Network string `mapstructure:"network"`
}

type testConfig struct {
	commonTest `mapstructure:",squash"`
	Limit      int           `mapstructure:"limit"`
	Wait       time.Duration `mapstructure:"wait"`
	IDs        []string      `mapstructure:"contract_ids"`
	Options    nestedConfig  `mapstructure:"gcs_options"`
	Strict     *bool         `mapstructure:"strict"`
	Format     string        `mapstructure:"format" cdpd:"ignored: records are JSON"`
}

func (c *testConfig) SetDefaults() { c.Limit, c.Wait, c.Network = 100, 5*time.Second, "pubnet" }

func newNop(c *testConfig, _ Env) (Processor, error) {
	if c.Limit < 0 {
		return nil, errors.New("limit must not be negative")
	}
	return nopProcessor{cfg: c}, nil
}

func testRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	if err := r.Add(ProcessorSpec("ContractEvent", "events", newNop, "ContractEventProcessor")); err != nil {
		t.Fatal(err)
	}
	r.AddUpstream(KindProcessor, "ContractEvent", "SoroswapRouter")
	return r
}

// Keys a component does not know are returned (nearest known keys first), not errors; nested
// structs' keys are reported with their path.
func TestCheckReturnsUnknownKeys(t *testing.T) {
	r := testRegistry(t)
	unknown, err := r.Check(KindProcessor, "ContractEventProcessor", map[string]any{
		"limit": "7", "buffer_size": 10, "contract_idz": "a", "gcs_options": map[string]any{"project": "p", "projct": "q"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range unknown {
		keys = append(keys, u.Key)
	}
	if want := []string{"buffer_size", "contract_idz", "gcs_options.projct"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("unknown keys %v, want %v", keys, want)
	}
	if got := unknown[1].Known[0]; got != "contract_ids" {
		t.Errorf("nearest known key to contract_idz = %q, want contract_ids (all: %v)", got, unknown[1].Known)
	}
	if got := unknown[2].Known; !reflect.DeepEqual(got, []string{"project", "region"}) {
		t.Errorf("known keys of gcs_options = %v, want [project region]", got)
	}
	// The constructor's own validation still fails the check.
	if _, err := r.Check(KindProcessor, "ContractEvent", map[string]any{"limit": -1}, ""); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative limit: error %v", err)
	}
}

// A misspelt type names the nearest known types; an upstream-only type says what it is.
func TestCheckUnknownTypes(t *testing.T) {
	r := testRegistry(t)
	_, err := r.Check(KindProcessor, "ContractEvnt", nil, "")
	if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "did you mean ContractEvent") {
		t.Errorf("misspelt type: %v", err)
	}
	_, err = r.Check(KindProcessor, "SoroswapRouter", nil, "")
	if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "upstream CDP processor type that cdpd does not provide") {
		t.Errorf("upstream-only type: %v", err)
	}
	names, provided := r.Upstream(KindProcessor)
	if !reflect.DeepEqual(names, []string{"ContractEvent", "SoroswapRouter"}) || !provided["ContractEvent"] || provided["SoroswapRouter"] {
		t.Errorf("upstream coverage %v %v", names, provided)
	}
}

// Defaults are set before the YAML values are decoded over them, and the constructor sees
// them; the registry builds through aliases.
func TestDefaultsAndConstruct(t *testing.T) {
	r := testRegistry(t)
	p, err := r.NewProcessor("ContractEventProcessor", map[string]any{"wait": "1s", "unknown": 1}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.(nopProcessor).cfg; c.Limit != 100 || c.Wait != time.Second {
		t.Errorf("config %+v: want the default limit 100 and wait 1s", c)
	}
	// Construct (tests build components with it) is strict.
	if _, err := Construct(newNop, map[string]any{"unknown": 1}, Env{}); err == nil {
		t.Error("Construct accepted an unknown key")
	}
}

// Keys lists every key with its type and default, embedded structs inline.
func TestSpecKeys(t *testing.T) {
	r := testRegistry(t)
	s, _ := r.Lookup(KindProcessor, "ContractEvent")
	got := map[string]Key{}
	for _, k := range s.Keys() {
		got[k.Name] = k
	}
	for name, want := range map[string]Key{
		"network":      {Name: "network", Type: "string", Default: "pubnet"},
		"limit":        {Name: "limit", Type: "integer", Default: "100"},
		"wait":         {Name: "wait", Type: "duration", Default: "5s"},
		"contract_ids": {Name: "contract_ids", Type: "list"},
		"strict":       {Name: "strict", Type: "boolean"},
		"gcs_options": {Name: "gcs_options", Type: "map", Keys: []Key{
			{Name: "project", Type: "string"}, {Name: "region", Type: "string"}}},
	} {
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("key %s = %+v, want %+v", name, got[name], want)
		}
	}
	if got["format"].Ignored != "records are JSON" {
		t.Errorf("format's ignored reason = %q", got["format"].Ignored)
	}
	if len(got) != 7 {
		t.Errorf("%d keys, want 7: %v", len(got), got)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	r := testRegistry(t)
	if err := r.Add(ProcessorSpec("Other", "x", newNop, "ContractEventProcessor")); err == nil {
		t.Error("an alias registered twice was accepted")
	}
	if specs := r.Specs(); len(specs) != 1 || specs[0].Type != "ContractEvent" {
		t.Errorf("Specs() = %v, want the one spec", specs)
	}
}

func TestNearest(t *testing.T) {
	cands := []string{"SaveToParquet", "SaveToPostgreSQL", "SaveToRedis", "StdoutConsumer"}
	if got := Nearest("SaveToParqet", cands, 2); got[0] != "SaveToParquet" {
		t.Errorf("Nearest(SaveToParqet) = %v", got)
	}
	if got := Nearest("zzzzzzzzzzzzzzzzzzzzzzzzzzzz", cands, 3); len(got) != 0 {
		t.Errorf("absurd suggestions %v", got)
	}
}

// A key the component accepts without effect is reported, with why, only when it is given.
func TestCheckReportsIgnoredKeys(t *testing.T) {
	r := testRegistry(t)
	unknown, err := r.Check(KindProcessor, "ContractEvent", map[string]any{"format": "json", "limit": 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0].Key != "format" || unknown[0].Ignored != "records are JSON" || unknown[0].Known != nil {
		t.Errorf("unknown %+v, want format reported as ignored", unknown)
	}
	if unknown, _ := r.Check(KindProcessor, "ContractEvent", map[string]any{"limit": 1}, ""); len(unknown) != 0 {
		t.Errorf("unknown %+v for a config without ignored keys", unknown)
	}
}
