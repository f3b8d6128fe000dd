package daemon

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/test/fixture"
)

// cdpd runs the command line in-process.
func cdpd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"help", "help"},
		{"validate", "--help"}, {"validate", "-h"}, {"validate", "configs", "--help"}, {"help", "validate"},
		{"version", "--help"}, {"version", "-h"}, {"help", "version"},
		{"shards", "--help"}, {"help", "shards"},
	} {
		code, out, errOut := cdpd(args...)
		if code != 0 || !strings.HasPrefix(out, "Usage: cdpd") || errOut != "" {
			t.Errorf("cdpd %s: exit %d, stdout %q, stderr %q; want the usage on stdout and exit 0", strings.Join(args, " "), code, out, errOut)
		}
	}
	// Each command's usage is its own.
	if _, out, _ := cdpd("validate", "--help"); !strings.Contains(out, "cdpd validate [--json | -o json] [--strict] [--shard-count N] DIR") || !strings.Contains(out, "-json") {
		t.Errorf("validate --help: %q", out)
	}
	if _, out, _ := cdpd("--help"); !strings.Contains(out, "-config-file") || !strings.Contains(out, "FLOWCTL_ENDPOINT") {
		t.Errorf("--help: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate"}, "want exactly one directory"},
		{[]string{"validate", "a", "b"}, "want exactly one directory"},
		{[]string{"validate", "--nope", "a"}, "flag provided but not defined: -nope (cdpd validate --help prints the usage)"},
		{[]string{"validate", "-o", "yaml", "a"}, `-o must be text or json, got "yaml"`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "-o", "xml"}, `-o must be text or json`},
		{[]string{"help", "nope"}, `unknown command "nope"`},
		{[]string{"--nope"}, "flag provided but not defined: -nope (cdpd --help prints the usage)"},
	} {
		code, out, errOut := cdpd(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("cdpd %s: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}

func TestParseArgsFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"--json", "d"}, []string{"d"}, true},
		{[]string{"d", "--json"}, []string{"d"}, true},
		{[]string{"d", "-o", "json", "e"}, []string{"d", "e"}, false},
		{[]string{"d", "--", "--json"}, []string{"d", "--json"}, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "")
		fs.String("o", "text", "")
		pos, _, done := parseArgs(fs, tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		if done || !reflect.DeepEqual(pos, tc.pos) || *asJSON != tc.json {
			t.Errorf("%q: positional %q, --json %v, done %v; want %q, %v", tc.args, pos, *asJSON, done, tc.pos, tc.json)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	if code, out, _ := cdpd("version"); code != 0 || out != "cdpd "+Version+"\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, out, _ := cdpd("--version"); code != 0 || out != "cdpd "+Version+"\n" {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	for _, args := range [][]string{{"version", "--json"}, {"version", "-o", "json"}} {
		code, out, errOut := cdpd(args...)
		var v struct{ Name, Version string }
		if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Name != "cdpd" || v.Version != Version || v.Version == "" {
			t.Errorf("%q: exit %d, %q (%v), stderr %q", args, code, out, err, errOut)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeAtomic(t, filepath.Join(dir, "a.yaml"), pipelineYAML("a", ds.Dir, ds.First, ds.First))
	writeAtomic(t, filepath.Join(dir, "b.yaml"), "pipeline:\n  name: b\n  source: {type: Nope, config: {}}\n  consumers: [{type: StdoutConsumer, config: {}}]\n")

	var first string
	for _, args := range [][]string{{"validate", "--json", dir}, {"validate", dir, "-o", "json"}} {
		code, out, errOut := cdpd(args...)
		if code != 1 || errOut != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 (an error) and the report on stdout only", args, code, errOut)
		}
		var rep validateReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%q: %v: %s", args, err, out)
		}
		if rep.OK || rep.Dir != dir || len(rep.Pipelines) != 1 || len(rep.Errors) != 1 {
			t.Fatalf("%q: report %+v", args, rep)
		}
		if p := rep.Pipelines[0]; p.Name != "a" || p.File != filepath.Join(dir, "a.yaml") || p.Line < 1 || len(p.Hash) != 64 {
			t.Errorf("pipeline %+v", p)
		}
		if e := rep.Errors[0]; e.File != filepath.Join(dir, "b.yaml") || e.Line != 3 || e.Column == 0 || e.Pipeline != "b" || !strings.Contains(e.Message, "Nope") {
			t.Errorf("error %+v: want b.yaml, line 3, a column, pipeline b, a message naming Nope", e)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("-o json and --json print different reports:\n%s\n%s", first, out)
		}
	}
	// A valid directory: ok, exit 0, an empty error list (not null).
	code, out, _ := cdpd("validate", "--json", filepath.Join("..", "configs"))
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"errors": []`) {
		t.Errorf("validate --json configs/: exit %d, %s", code, out)
	}
}
