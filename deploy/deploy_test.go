package deploy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/withobsrvr/cdpd/daemon"
	"github.com/withobsrvr/cdpd/deploy/refs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// root is the module root (tests run in deploy/).
func root(t testing.TB) string {
	t.Helper()
	r, err := refs.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	cdpdOnce sync.Once
	cdpdRefs refs.CDPD
	cdpdErr  error
)

// cdpdUsage is cdpd's flags and environment names, from its own usage text.
func cdpdUsage(t testing.TB) refs.CDPD {
	t.Helper()
	cdpdOnce.Do(func() { cdpdRefs, cdpdErr = refs.CDPDUsage() })
	if cdpdErr != nil {
		t.Fatal(cdpdErr)
	}
	return cdpdRefs
}

func flowctlFlags(t testing.TB, cmd ...string) map[string]bool {
	t.Helper()
	f, err := refs.FlowctlFlags(cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	metricsOnce sync.Once
	metricSet   map[string]bool
	metricsErr  error
)

// exported is every series name the code exports (see refs.Metrics), plus Prometheus's own
// `up`.
func exported(t testing.TB) map[string]bool {
	t.Helper()
	metricsOnce.Do(func() {
		ms, err := refs.Metrics(root(t))
		if err != nil {
			metricsErr = err
			return
		}
		metricSet = refs.SeriesNames(ms)
		metricSet["up"] = true
		// The control plane's re-export of the pipelines' heartbeat metrics.
		fleet, err := refs.FleetMetrics(root(t))
		if err != nil {
			metricsErr = err
			return
		}
		for n := range fleet {
			metricSet[n] = true
		}
	})
	if metricsErr != nil {
		t.Fatal(metricsErr)
	}
	return metricSet
}

// flagArg is one --flag or --flag=value (or -flag) of a command line.
type flagArg struct {
	Name  string
	Value string
	HasEq bool
}

// parseArgs splits a command line's words into flags (with their values: the next word when
// the flag has no "=" and the next word is not a flag) and positional words.
func parseArgs(words []string, boolFlags map[string]bool) (flags []flagArg, pos []string) {
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "-" {
			pos = append(pos, w)
			continue
		}
		name := strings.TrimLeft(w, "-")
		if k := strings.IndexByte(name, '='); k >= 0 {
			flags = append(flags, flagArg{Name: name[:k], Value: name[k+1:], HasEq: true})
			continue
		}
		f := flagArg{Name: name}
		if !boolFlags[name] && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
			f.Value = words[i+1]
			i++
		}
		flags = append(flags, f)
	}
	return flags, pos
}

func flagValue(flags []flagArg, name string) (string, bool) {
	for _, f := range flags {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// checkFlags fails for every flag that is not one of known.
func checkFlags(t *testing.T, where string, flags []flagArg, known map[string]bool) {
	t.Helper()
	for _, f := range flags {
		if !known[f.Name] {
			t.Errorf("%s: --%s is not a flag (known: %s)", where, f.Name, strings.Join(sortedKeys(known), ", "))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: document %d: %v", path, len(out)+1, err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
	return out
}

// dig follows keys (string for maps, int for lists) into decoded YAML/JSON.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any { l, _ := v.([]any); return l }

func strList(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, str(x))
	}
	return out
}

// portOf returns the port of host:port.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

// pipelineVars is every ${VAR} the example pipeline files use.
func pipelineVars(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(root(t), "deploy", "examples", "*.yaml"))
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("the example pipelines use no variables: expected CDP_DATASTORE at least")
	}
	return out
}

// validateDir runs `cdpd validate dir` in-process with the given environment.
func validateDir(t *testing.T, dir string, env map[string]string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	if code := daemon.Main([]string{"validate", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("cdpd validate %s: exit %d\n%s%s", dir, code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// makeBuilds returns the binaries `make build` builds: output name -> package path ("./...").
func makeBuilds(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\$\(GO\) build (?:\S+ )*?-o \$\(BIN\)/(\S+) (\./\S+)`)
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) < 2 {
		t.Fatalf("Makefile: found %d `$(GO) build [flags] -o $(BIN)/x ./pkg` lines, want cdpd and flowctl", len(out))
	}
	return out
}

// goDirective is the go version of go.mod.
func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// promtool returns the path of promtool, or skips the calling (sub)test with how to get it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install -y prometheus): skipping the promtool checks; the static checks ran")
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
