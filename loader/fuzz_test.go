package loader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to ParseFile: it must never panic (ParseFile turns a panic
// into an "internal error" *Error, which fails here), never hang, and what it returns must be
// consistent: valid pipelines, errors naming the file, a stable hash.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.y*ml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---", "pipelines: {}", "pipeline: null", "pipelines: {A: {source: {type: S}, consumers: [{type: C}]}}",
		"pipelines: {A: {source: &a {type: S, config: {x: *a}}, consumers: [{type: C, config: {<<: [*a, *a]}}]}}",
		"x-a: &a {b: *a}\npipeline: *a",
		"pipelines: {A: {source: {type: S, config: {a: \"${X:-${Y}}\"}}, consumers: [{type: C}]}}",
		"pipelines: {A: {source: {type: S, config: {n: 99999999999999999999, f: .nan, t: 2001-12-14}}, consumers: [{type: C}]}}",
		"pipeline: {name: ${NAME}, source: {type: S}, consumers: [{type: C}]}",
		"? [a, b]\n: c\n",
		"pipelines: {<<: {A: {}}}",
	} {
		f.Add([]byte(s))
	}
	lookup := func(k string) (string, bool) {
		if strings.HasPrefix(k, "X") {
			return "", false
		}
		return "v:" + k, true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{LookupEnv: lookup}
		ps, errs := ParseFile("f.yaml", data, opts)
		for _, e := range errs {
			if e.File != "f.yaml" || e.Line < 0 || e.Column < 0 || e.Msg == "" {
				t.Fatalf("malformed error %#v", e)
			}
			if strings.Contains(e.Msg, "internal error") {
				t.Fatalf("panic while parsing: %s", e.Msg)
			}
		}
		ps2, errs2 := ParseFile("f.yaml", data, opts)
		if len(ps2) != len(ps) || len(errs2) != len(errs) {
			t.Fatal("parsing twice gave different results")
		}
		for i, p := range ps {
			if !NamePattern.MatchString(p.Name) || p.Source.Type == "" || len(p.Hash) != 64 || (len(p.Consumers) == 0) != hasNoConsumersWarning(p) {
				t.Fatalf("invalid pipeline returned: %+v", p)
			}
			switch p.Restart {
			case RestartAlways, RestartOnFailure, RestartNever:
			default:
				t.Fatalf("restart %q", p.Restart)
			}
			if ps2[i].Hash != p.Hash {
				t.Fatalf("hash of %s not stable", p.Name)
			}
		}
	})
}

func hasNoConsumersWarning(p *Pipeline) bool {
	for _, w := range p.Warnings {
		if strings.Contains(w.Msg, "no consumers") {
			return true
		}
	}
	return false
}
