package loader

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func parseTestFile(t *testing.T, path string, opts Options) ([]*Pipeline, []*Error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ParseFile(path, data, opts)
}

func errStrings(errs []*Error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// wantPipeline is what a good file must yield, pipeline by pipeline.
type wantPipeline struct {
	name        string
	line        int
	restart     string
	description string
	source      Component
	processors  []string // types
	consumers   []Component
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		file string
		want []wantPipeline
	}{
		{"pipelines_map.yaml", []wantPipeline{
			{name: "ContractEvents", line: 3, restart: RestartOnFailure, description: "Contract events of pubnet to Parquet",
				source: Component{Type: "FSBufferedStorageSourceAdapter", Line: 5, Column: 5,
					Config: map[string]any{"path": "/data/ledgers", "start_ledger": 58752000}},
				processors: []string{"ContractEvent"},
				consumers: []Component{{Type: "SaveToParquet", Line: 15, Column: 9,
					Config: map[string]any{"local_path": "/data/out", "buffer_size": 10000}}}},
			{name: "Ledgers", line: 17, restart: RestartAlways,
				source: Component{Type: "FSBufferedStorageSourceAdapter", Line: 19, Column: 5,
					Config: map[string]any{"path": "/data/ledgers"}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 21, Column: 9, Config: map[string]any{}}}},
		}},
		{"single.yaml", []wantPipeline{
			{name: "cdp-latest-ledger", line: 1, restart: RestartNever,
				source: Component{Type: "BufferedStorageSourceAdapter", Line: 4, Column: 3,
					Config: map[string]any{"bucket_name": "stellar-ledgers"}},
				processors: []string{"LatestLedger"},
				consumers:  []Component{{Type: "StdoutConsumer", Line: 11, Column: 7, Config: map[string]any{}}}},
		}},
		{"env.yaml", []wantPipeline{
			{name: "EnvPipeline", line: 2, restart: RestartOnFailure,
				source: Component{Type: "BufferedStorageSourceAdapter", Line: 3, Column: 5,
					Config: map[string]any{
						"bucket_name": "bucket-from-env", // ${BUCKET}
						"prefix":      "ledgers/pubnet/", // ${NETWORK:-pubnet}, NETWORK unset
						"region":      "us-east-1",       // ${EMPTY:-us-east-1}, EMPTY set to ""
						"literal":     "${NOT_A_VAR} costs $5",
						// A value holding YAML stays one string: expansion runs after parsing.
						"injected": testEnv["INJECT"],
					}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 12, Column: 9, Config: map[string]any{}}}},
		}},
		{"anchors.yaml", []wantPipeline{
			{name: "A", line: 10, restart: RestartOnFailure,
				source: Component{Type: "FSBufferedStorageSourceAdapter", Line: 11, Column: 5,
					Config: map[string]any{"path": "/data/ledgers", "start_ledger": 1}},
				consumers: []Component{{Type: "SaveToParquet", Line: 13, Column: 9,
					Config: map[string]any{"local_path": "/data/out", "buffer_size": 500}}}},
			{name: "B", line: 17, restart: RestartOnFailure,
				source: Component{Type: "FSBufferedStorageSourceAdapter", Line: 18, Column: 5,
					Config: map[string]any{"path": "/data/ledgers", "start_ledger": 1}},
				consumers: []Component{{Type: "SaveToParquet", Line: 19, Column: 17,
					Config: map[string]any{"local_path": "/data/out", "buffer_size": 100}}}},
		}},
		{"multidoc.yaml", []wantPipeline{
			{name: "First", line: 1, restart: RestartOnFailure,
				source:    Component{Type: "BufferedStorageSourceAdapter", Line: 3, Column: 3, Config: map[string]any{}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 4, Column: 15, Config: map[string]any{}}}},
			{name: "Second", line: 6, restart: RestartOnFailure,
				source:    Component{Type: "BufferedStorageSourceAdapter", Line: 8, Column: 3, Config: map[string]any{}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 9, Column: 15, Config: map[string]any{}}}},
		}},
		{"empty.yaml", nil},
		{"flat.yaml", []wantPipeline{
			{name: "flat_named", line: 2, restart: RestartOnFailure, description: "contract events, flat",
				source: Component{Type: "FSBufferedStorageSourceAdapter", Line: 5, Column: 1,
					Config: map[string]any{"path": "/data/ledgers", "network": "pubnet"}},
				processors: []string{"ContractEvent"},
				consumers:  []Component{{Type: "StdoutConsumer", Line: 14, Column: 5, Config: map[string]any{}}}},
		}},
		{"flat-from-file.yaml", []wantPipeline{
			{name: "flat-from-file", line: 1, restart: RestartOnFailure,
				source:    Component{Type: "BufferedStorageSourceAdapter", Line: 1, Column: 1, Config: map[string]any{"bucket_name": "b"}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 5, Column: 5, Config: map[string]any{}}}},
		}},
		{"short.yml", []wantPipeline{
			{name: "Short", line: 2, restart: RestartOnFailure,
				source:    Component{Type: "BufferedStorageSourceAdapter", Line: 3, Column: 5, Config: map[string]any{}},
				consumers: []Component{{Type: "StdoutConsumer", Line: 5, Column: 17, Config: map[string]any{}}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "good", tt.file)
			ps, errs := parseTestFile(t, path, testOpts())
			if len(errs) > 0 {
				t.Fatalf("errors: %q", errStrings(errs))
			}
			for _, p := range ps {
				if len(p.Warnings) > 0 {
					t.Errorf("%s: unexpected warnings %q", p.Name, errStrings(p.Warnings))
				}
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d pipelines, want %d", len(ps), len(tt.want))
			}
			for i, w := range tt.want {
				p := ps[i]
				if p.Name != w.name || p.File != path || p.Line != w.line || p.Restart != w.restart || p.Description != w.description {
					t.Errorf("pipeline %d = {%s %s:%d restart=%s desc=%q}, want {%s %s:%d restart=%s desc=%q}",
						i, p.Name, p.File, p.Line, p.Restart, p.Description, w.name, path, w.line, w.restart, w.description)
				}
				if !reflect.DeepEqual(p.Source, w.source) {
					t.Errorf("%s source = %+v, want %+v", p.Name, p.Source, w.source)
				}
				var procs []string
				for _, c := range p.Processors {
					procs = append(procs, c.Type)
				}
				if !reflect.DeepEqual(procs, w.processors) {
					t.Errorf("%s processors = %v, want %v", p.Name, procs, w.processors)
				}
				if !reflect.DeepEqual(p.Consumers, w.consumers) {
					t.Errorf("%s consumers = %+v, want %+v", p.Name, p.Consumers, w.consumers)
				}
				if len(p.Hash) != 64 {
					t.Errorf("%s hash = %q, want 64 hex digits", p.Name, p.Hash)
				}
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		file string
		good []string // pipelines of the file that still load
		errs []string // without the "testdata/bad/<file>" prefix
	}{
		{file: "syntax.yaml", errs: []string{
			":3: invalid YAML: did not find expected ',' or '}'"}},
		{file: "no_source.yaml", errs: []string{
			":2:3: pipeline NoSource: source is required"}},
		{file: "unknown_key.yaml", errs: []string{
			`:4:5: pipeline Typo: unknown key "consumer" (want source, processors, consumers, restart or description)`,
			`:5:40: pipeline Typo: consumer 1: unknown key "confg" (want type, config and an optional name)`}},
		{file: "unknown_top.yaml", errs: []string{
			`:1:1: unknown top-level key "version" (want pipeline, pipelines, or source/processors/consumers of a flat file; x-... keys are free for YAML anchors)`}},
		{file: "mixed_shapes.yaml", errs: []string{
			`:5:1: top-level source next to pipelines: (a file is either flat, with source, processors and consumers at the top, or holds pipeline: / pipelines:)`}},
		{file: "component_name.yaml", errs: []string{
			`:4:46: pipeline BadName: consumer 1: name "two words": use 1 to 63 letters, digits, '-' or '_'`,
			`:7:51: pipeline Twice: component name "ev" is used twice in the pipeline`,
			`:12:17: pipeline Clash: component name "ContractEvent" is the name of another component of the pipeline (its type); choose another`}},
		{file: "unknown_type.yaml", errs: []string{
			`:3:5: pipeline Unknown: source (NoSuchSource): unknown component type: source "NoSuchSource"`,
			`:7:9: pipeline Unknown: processor 2 (NoSuchProcessor): unknown component type: processor "NoSuchProcessor"`,
			`:10:9: pipeline Unknown: consumer 2 (NoSuchConsumer): unknown component type: consumer "NoSuchConsumer"`}},
		{file: "bad_config.yaml", errs: []string{
			":5:9: pipeline BadConfig: consumer 1 (SaveToParquet): buffer_size must be positive"}},
		{file: "missing_env.yaml", errs: []string{
			":7:16: pipeline Secrets: source: config.token: environment variable API_TOKEN is not set (use ${API_TOKEN:-default} to give a default)",
			":11:16: pipeline Secrets: consumer 1: config.dsn: environment variables DB_PASSWORD, DB_HOST are not set"}},
		{file: "bad_env_syntax.yaml", errs: []string{
			":6:15: pipeline EnvSyntax: source: config.open: unterminated ${ in value (write $${ for a literal ${)",
			":7:14: pipeline EnvSyntax: source: config.bad: invalid variable name in ${...}: want ${NAME} or ${NAME:-default} with NAME of letters, digits and '_'"}},
		{file: "bad_name.yaml", errs: []string{
			`:2:3: pipeline my pipeline: invalid pipeline name "my pipeline": use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit`,
			`:5:3: pipeline -leading-dash: invalid pipeline name "-leading-dash": use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit`}},
		{file: "restart.yaml", errs: []string{
			":3:12: pipeline Restarts: restart must be one of always, on-failure or never"}},
		{file: "dup_in_file.yaml", good: []string{"Twice"}, errs: []string{
			":7:3: pipeline Twice: pipeline defined twice in this file (first at line 1)"}},
		{file: "duplicate_key.yaml", errs: []string{
			`:9:5: pipeline DupKey: key "source" already defined at line 3`}},
		{file: "component_shape.yaml", errs: []string{
			":3:5: pipeline Shapes: source must be a map with type and config, not a single value",
			":4:5: pipeline Shapes: processors must be a list of {type, config}, not a map",
			":6:9: pipeline Shapes: consumer 1: type is required",
			":7:9: pipeline Shapes: consumer 2: type must not be empty",
			":9:17: pipeline Shapes: consumer 3: config must be a map, not a list"}},
		{file: "partial.yaml", good: []string{"Good"}, errs: []string{
			`:8:17: pipeline Bad: consumer 1 (NoSuchConsumer): unknown component type: consumer "NoSuchConsumer"`}},
		{file: "top_list.yaml", errs: []string{
			":1:1: the file must be a map with a pipeline: or pipelines: key, not a list"}},
		{file: "no_pipeline.yaml", errs: []string{
			":1:1: the file defines no pipeline (want a pipeline: or pipelines: key)"}},
		{file: "single_no_name.yaml", errs: []string{
			":1:1: pipeline: name is required"}},
		{file: "name_in_map.yaml", errs: []string{
			`:3:5: pipeline Named: unknown key "name": under pipelines: the key above gives the name`}},
		{file: "billion_laughs.yaml", errs: []string{
			":3:37: file too large after expanding YAML aliases (more than 100000 extra nodes)"}},
		{file: "self_alias.yaml", errs: []string{
			":3:69: pipeline Loop: source: config.again.config.again: alias *s refers to a value that contains it (a cycle)"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			ps, errs := parseTestFile(t, path, testOpts())
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if !reflect.DeepEqual(names, tt.good) {
				t.Errorf("pipelines = %v, want %v", names, tt.good)
			}
			var want []string
			for _, e := range tt.errs {
				want = append(want, path+e)
			}
			if got := errStrings(errs); !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n got  %q\n want %q", got, want)
			}
			for _, e := range errs {
				if e.File != path {
					t.Errorf("error %q: File = %q", e, e.File)
				}
			}
		})
	}
}

// Messages name variables, never values: the values of set variables must not leak into them.
func TestParseErrorsHideValues(t *testing.T) {
	env := map[string]string{"BUCKET": "s3cr3t-bucket", "DB_USER": "s3cr3t-user"}
	opts := testOpts()
	opts.LookupEnv = lookupIn(env)
	_, errs := parseTestFile(t, "testdata/bad/missing_env.yaml", opts)
	if len(errs) == 0 {
		t.Fatal("no errors")
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), "s3cr3t") {
			t.Errorf("error leaks a value: %q", e)
		}
		var mv *MissingVarError
		if !errors.As(error(e), &mv) && e.Err != nil {
			t.Errorf("error %q does not wrap its cause", e)
		}
	}
}

func TestParseCheckErrorWrapped(t *testing.T) {
	_, errs := parseTestFile(t, "testdata/bad/unknown_type.yaml", testOpts())
	if len(errs) == 0 || !errors.Is(errs[0], errUnknownType) {
		t.Fatalf("errors %v do not wrap the Check error", errs)
	}
}

func TestParseLimits(t *testing.T) {
	deep := "pipelines:\n  Deep:\n    source: {type: BufferedStorageSourceAdapter, config: {x: " +
		strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}}\n    consumers: [{type: StdoutConsumer}]\n"
	veryDeep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	big := "pipelines: {}\n# " + strings.Repeat("x", MaxFileSize)
	tests := []struct {
		name, data, want string
	}{
		{"deep", deep, "f.yaml:3:122: pipeline Deep: ...0]" + strings.Repeat("[0]", 26) + ": nested deeper than 64 levels"},
		{"very deep", veryDeep, "f.yaml: invalid YAML: exceeded max depth of 10000"},
		{"too big", big, "f.yaml: file is 1048592 bytes; the limit is 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, errs := ParseFile("f.yaml", []byte(tt.data), testOpts())
			if len(ps) != 0 || len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("got %d pipelines, errors %q; want error %q", len(ps), errStrings(errs), tt.want)
			}
		})
	}
}

func TestParseNameOverride(t *testing.T) {
	opts := testOpts()
	opts.NameOverride = "renamed"
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/good/single.yaml", []string{"renamed"}},
		{"testdata/good/short.yml", []string{"renamed"}},
		{"testdata/good/multidoc.yaml", []string{"First", "Second"}}, // several: names kept
		{"testdata/bad/single_no_name.yaml", []string{"renamed"}},    // the override supplies the name
	}
	for _, tt := range tests {
		ps, errs := parseTestFile(t, tt.file, opts)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if len(errs) > 0 || !reflect.DeepEqual(names, tt.want) {
			t.Errorf("%s: names %v errors %q, want %v", tt.file, names, errStrings(errs), tt.want)
		}
	}
}

func TestParseNilCheckAcceptsAnyType(t *testing.T) {
	ps, errs := parseTestFile(t, "testdata/bad/unknown_type.yaml", Options{LookupEnv: lookupIn(nil)})
	if len(errs) != 0 || len(ps) != 1 {
		t.Fatalf("got %d pipelines, errors %q", len(ps), errStrings(errs))
	}
}

func TestHashCanonical(t *testing.T) {
	hash := func(t *testing.T, src string) string {
		t.Helper()
		ps, errs := ParseFile("a.yaml", []byte(src), testOpts())
		if len(errs) > 0 || len(ps) != 1 {
			t.Fatalf("parse: %d pipelines, errors %q in\n%s", len(ps), errStrings(errs), src)
		}
		return ps[0].Hash
	}
	base := hash(t, `
pipelines:
  P:
    source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: x, e: y}]}}}
    consumers: [{type: StdoutConsumer}]
`)
	same := []struct{ name, src string }{
		{"keys reordered, reformatted, other file", `
# a comment
pipelines:
  P:
    consumers:
      - type: StdoutConsumer
        config: {}
    source:
      config:
        b:
          c:
            - 1
            - {e: y, d: x}
        a: 1
      type: BufferedStorageSourceAdapter
`},
		{"pipeline shape", `
pipeline:
  name: P
  restart: on-failure
  source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: x, e: y}]}}}
  consumers: [{type: StdoutConsumer}]
`},
		{"value from the environment", `
pipelines:
  P:
    source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: "${UNSET_X:-x}", e: y}]}}}
    consumers: [{type: StdoutConsumer}]
`},
	}
	for _, tt := range same {
		if h := hash(t, tt.src); h != base {
			t.Errorf("%s: hash changed", tt.name)
		}
	}
	different := []struct{ name, src string }{
		{"value", `{pipelines: {P: {source: {type: BufferedStorageSourceAdapter, config: {a: 2, b: {c: [1, {d: x, e: y}]}}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"string vs number", `{pipelines: {P: {source: {type: BufferedStorageSourceAdapter, config: {a: "1", b: {c: [1, {d: x, e: y}]}}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"list order", `{pipelines: {P: {source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [{d: x, e: y}, 1]}}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"dotted key", `{pipelines: {P: {source: {type: BufferedStorageSourceAdapter, config: {a: 1, "b.c": [1, {d: x, e: y}]}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"restart", `{pipelines: {P: {restart: always, source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: x, e: y}]}}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"name", `{pipelines: {Q: {source: {type: BufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: x, e: y}]}}}, consumers: [{type: StdoutConsumer}]}}}`},
		{"type", `{pipelines: {P: {source: {type: FSBufferedStorageSourceAdapter, config: {a: 1, b: {c: [1, {d: x, e: y}]}}}, consumers: [{type: StdoutConsumer}]}}}`},
	}
	for _, tt := range different {
		if h := hash(t, tt.src); h == base {
			t.Errorf("%s: hash did not change", tt.name)
		}
	}
}

func TestParseCheckPanics(t *testing.T) {
	opts := testOpts()
	opts.Check = func(kind, typeName string, _ map[string]any, _ string) ([]UnknownKey, error) {
		if kind == KindConsumer {
			panic("boom")
		}
		return nil, nil
	}
	ps, errs := parseTestFile(t, "testdata/good/short.yml", opts)
	want := []string{"testdata/good/short.yml:5:17: pipeline Short: consumer 1 (StdoutConsumer): config check panicked: boom"}
	if got := errStrings(errs); len(ps) != 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("pipelines %d, errors %q, want %q", len(ps), got, want)
	}
}

// TestParseWarnings: what upstream CDP accepts silently (config keys a component does not
// read, a pipeline without consumers) loads with a warning naming file:line:column; under
// Strict the same is an error and the pipeline is rejected.
func TestParseWarnings(t *testing.T) {
	tests := []struct {
		file  string
		names []string
		warns []string // without the "testdata/warn/<file>" prefix
	}{
		{file: "unknown_keys.yaml", names: []string{"Upstream"}, warns: []string{
			`:10:11: pipeline Upstream: processor 1 (ContractEvent): unknown config key "buffer_size", ignored (known: network, network_passphrase, contract_ids)`,
			`:11:11: pipeline Upstream: processor 1 (ContractEvent): unknown config key "contract_idz", ignored (known: network, network_passphrase, contract_ids)`,
			`:16:11: pipeline Upstream: consumer 1 (SaveToParquet): unknown config key "format", ignored (known: local_path, buffer_size, compression)`,
			// A key merged in from an anchor is reported where the anchor defines it.
			`:16:11: pipeline Upstream: consumer 2 (SaveToParquet): unknown config key "format", ignored (known: local_path, buffer_size, compression)`,
			// A key the component accepts without effect says so, and why.
			`:17:11: pipeline Upstream: consumer 1 (SaveToParquet): config key "debug" has no effect in cdpd (use --log-level debug)`,
			`:17:11: pipeline Upstream: consumer 2 (SaveToParquet): config key "debug" has no effect in cdpd (use --log-level debug)`,
			`:21:11: pipeline Upstream: consumer 2 (SaveToParquet): unknown config key "compresion", ignored (known: local_path, buffer_size, compression)`,
		}},
		{file: "no_consumers.yaml", names: []string{"Empty", "Missing"}, warns: []string{
			":2:3: pipeline Missing: no consumers: the pipeline runs and counts its records (events_out of its last processor), then drops them; its checkpoint follows the ledgers processed",
			":6:5: pipeline Empty: no consumers: the pipeline runs and counts its records (events_out of its last processor), then drops them; its checkpoint follows the ledgers processed",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "warn", tt.file)
			ps, errs := parseTestFile(t, path, testOpts())
			if len(errs) > 0 {
				t.Fatalf("errors: %q", errStrings(errs))
			}
			var names, warns []string
			for _, p := range ps {
				names = append(names, p.Name)
				warns = append(warns, errStrings(p.Warnings)...)
			}
			sortStrings(names)
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("pipelines %v, want %v", names, tt.names)
			}
			var want []string
			for _, w := range tt.warns {
				want = append(want, path+w)
			}
			sortStrings(warns)
			sortStrings(want)
			if !reflect.DeepEqual(warns, want) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
			}

			strict := testOpts()
			strict.Strict = true
			ps, errs = parseTestFile(t, path, strict)
			if len(ps) != 0 {
				t.Errorf("strict: %d pipelines loaded, want none", len(ps))
			}
			if len(errs) != len(tt.warns) {
				t.Fatalf("strict: %d errors, want %d: %q", len(errs), len(tt.warns), errStrings(errs))
			}
			for _, e := range errs {
				if !strings.HasSuffix(e.Msg, "(an error under --strict)") {
					t.Errorf("strict error %q does not say it is one because of --strict", e)
				}
			}
		})
	}
}

// A component's optional name (upstream files carry it) is kept, and changes the hash only
// when it is given.
func TestComponentName(t *testing.T) {
	ps, errs := parseTestFile(t, filepath.Join("testdata", "good", "flat.yaml"), testOpts())
	if len(errs) > 0 || len(ps) != 1 {
		t.Fatalf("pipelines %d, errors %q", len(ps), errStrings(errs))
	}
	if got := ps[0].Processors[0].Name; got != "events" {
		t.Errorf("processor name = %q, want events", got)
	}
	before := ps[0].Hash
	ps[0].Processors[0].Name = ""
	if hashPipeline(ps[0]) == before {
		t.Error("removing a component's name did not change the hash")
	}
}

func sortStrings(s []string) { slices.Sort(s) }
