// Package refs extracts, from cdpd's own code, what deployment files and the operator docs may
// refer to: the flags and environment variables of cdpd and flowctl, the Prometheus metric
// names the code exports, and the metric names a PromQL expression uses. The tests of deploy/
// and the docs check (test/docs) compare the manifests, rules, dashboard and runbook against
// these, so that a renamed flag or metric breaks a test instead of a deployment.
package refs

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/cli"
	"github.com/withobsrvr/cdpd/daemon"
)

// flagLine matches a flag in the output of flag.PrintDefaults: "  -config-dir string".
var flagLine = regexp.MustCompile(`(?m)^\s+-{1,2}([a-zA-Z0-9][a-zA-Z0-9_-]*)`)

// envName matches an upper-case environment variable name.
var envName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)

// CDPD describes cdpd's command line, as its own usage text prints it.
type CDPD struct {
	Flags map[string]bool // flag names without dashes: "config-dir"
	// Env is every environment variable cdpd reads: CDPD_<FLAG> for every flag, and the
	// flowctl names of its usage text (FLOWCTL_ENDPOINT, FLOWCTL_TLS_*, CDP_PIPELINE_NAME).
	Env map[string]bool
}

// CDPDUsage runs cdpd's command line in-process with -h and parses its usage text.
func CDPDUsage() (CDPD, error) {
	var stdout, stderr bytes.Buffer
	if code := daemon.Main([]string{"-h"}, &stdout, &stderr); code != 0 {
		return CDPD{}, fmt.Errorf("cdpd -h exited %d: %s", code, stderr.String())
	}
	text := stdout.String() + stderr.String()
	c := CDPD{Flags: map[string]bool{}, Env: map[string]bool{}}
	for _, m := range flagLine.FindAllStringSubmatch(text, -1) {
		c.Flags[m[1]] = true
		c.Env[daemon.FlagEnv(m[1])] = true
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Environment:") {
			for _, n := range envName.FindAllString(line, -1) {
				c.Env[n] = true
			}
		}
	}
	if len(c.Flags) == 0 {
		return c, fmt.Errorf("no flags found in cdpd's usage text:\n%s", text)
	}
	return c, nil
}

// CDPDCommands are the commands of cdpd besides serving.
var CDPDCommands = []string{"validate", "shards", "components", "version"}

// CDPDCommandFlags runs `cdpd <command> -h` in-process and returns the command's flag names.
func CDPDCommandFlags(command string) (map[string]bool, error) {
	var stdout, stderr bytes.Buffer
	if code := daemon.Main([]string{command, "-h"}, &stdout, &stderr); code != 0 {
		return nil, fmt.Errorf("cdpd %s -h exited %d: %s", command, code, stderr.String())
	}
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(stdout.String()+stderr.String(), -1) {
		flags[m[1]] = true
	}
	return flags, nil
}

// FlowctlFlags runs `flowctl <command> -h` in-process and returns the command's flag names.
// Subcommands are given as more words: FlowctlFlags("alert", "create").
func FlowctlFlags(command ...string) (map[string]bool, error) {
	var stdout, stderr bytes.Buffer
	app := &cli.App{Stdout: &stdout, Stderr: &stderr}
	args := append(append([]string{}, command...), "-h")
	if code := app.Run(context.Background(), args); code != 0 {
		return nil, fmt.Errorf("flowctl %s -h exited %d: %s", strings.Join(command, " "), code, stderr.String())
	}
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(stdout.String()+stderr.String(), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flags in the usage of flowctl %s", strings.Join(command, " "))
	}
	return flags, nil
}

// FlowctlCommands are the commands of flowctl's usage text (server, status, health, ...),
// each with its subcommands where it has them.
var FlowctlCommands = map[string][]string{
	"server": nil, "status": nil, "health": nil, "list": nil, "metrics": nil, "version": nil,
	"alert": {"create", "list", "delete"},
}

// Metric is one exported metric family.
type Metric struct {
	Name string
	Type string // counter, gauge, histogram, summary, untyped
	File string // source file (relative to the module root) that defines it
}

// optsTypes maps the prometheus option structs to the type of metric they define.
var optsTypes = map[string]string{
	"CounterOpts": "counter", "GaugeOpts": "gauge", "HistogramOpts": "histogram",
	"SummaryOpts": "summary", "UntypedOpts": "untyped",
}

// Metrics parses every non-test Go file of the module rooted at root and returns the metric
// families the code defines, by name: composite literals of prometheus.{Counter,Gauge,
// Histogram,Summary}Opts (Namespace, Subsystem and Name joined as client_golang does, string
// constants of the same package resolved) and prometheus.NewDesc calls (untyped, unless the
// package-level variable holding one is passed to a constant histogram or summary).
func Metrics(root string) (map[string]Metric, error) {
	pkgs := map[string][]*ast.File{} // directory -> files
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", path, err)
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// String constants of every package by package name, for qualified references
	// (consumer.MetricsNamespace); the module's package names are unique enough for that.
	byPkg := map[string]map[string]string{}
	for _, files := range pkgs {
		name := files[0].Name.Name
		if byPkg[name] == nil {
			byPkg[name] = map[string]string{}
		}
		maps.Copy(byPkg[name], stringConsts(files))
	}
	out := map[string]Metric{}
	for dir, files := range pkgs {
		consts := stringConsts(files)
		descVars := map[string]string{}  // package-level variable -> the metric name of its NewDesc
		descTypes := map[string]string{} // such a variable -> the type of the constant metrics made with it
		str := func(e ast.Expr) (string, bool) {
			switch v := e.(type) {
			case *ast.BasicLit:
				if v.Kind == token.STRING {
					s, err := strconv.Unquote(v.Value)
					return s, err == nil
				}
			case *ast.Ident:
				s, ok := consts[v.Name]
				return s, ok
			case *ast.SelectorExpr:
				if pkg, ok := v.X.(*ast.Ident); ok {
					s, ok := byPkg[pkg.Name][v.Sel.Name]
					return s, ok
				}
			}
			return "", false
		}
		for _, f := range files {
			rel, _ := filepath.Rel(root, fset.Position(f.Pos()).Filename)
			var inspectErr error
			ast.Inspect(f, func(n ast.Node) bool {
				switch v := n.(type) {
				case *ast.CompositeLit:
					sel, ok := v.Type.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					typ, ok := optsTypes[sel.Sel.Name]
					if !ok {
						return true
					}
					var ns, sub, name string
					for _, el := range v.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						key, _ := kv.Key.(*ast.Ident)
						if key == nil {
							continue
						}
						var dst *string
						switch key.Name {
						case "Namespace":
							dst = &ns
						case "Subsystem":
							dst = &sub
						case "Name":
							dst = &name
						default:
							continue
						}
						s, ok := str(kv.Value)
						if !ok {
							inspectErr = fmt.Errorf("%s: %s of a %s is not a string constant", fset.Position(kv.Pos()), key.Name, sel.Sel.Name)
							return false
						}
						*dst = s
					}
					if name != "" {
						full := buildFQName(ns, sub, name)
						out[full] = Metric{Name: full, Type: typ, File: rel}
					}
				case *ast.ValueSpec: // descVar = prometheus.NewDesc("name", ...)
					for i, val := range v.Values {
						if call, ok := val.(*ast.CallExpr); ok && i < len(v.Names) && isCall(call, "NewDesc") {
							if s, ok := str(call.Args[0]); ok {
								descVars[v.Names[i].Name] = s
							}
						}
					}
				case *ast.CallExpr:
					sel, ok := v.Fun.(*ast.SelectorExpr)
					if !ok || len(v.Args) == 0 {
						return true
					}
					if typ, ok := constMetricTypes[sel.Sel.Name]; ok { // prometheus.MustNewConstHistogram(descVar, ...)
						if id, ok := v.Args[0].(*ast.Ident); ok {
							descTypes[id.Name] = typ
						}
					}
					if sel.Sel.Name != "NewDesc" {
						return true
					}
					if s, ok := str(v.Args[0]); ok {
						out[s] = Metric{Name: s, Type: "untyped", File: rel}
					}
				}
				return true
			})
			if inspectErr != nil {
				return nil, fmt.Errorf("%s: %w", dir, inspectErr)
			}
		}
		for id, typ := range descTypes {
			if m, ok := out[descVars[id]]; ok {
				m.Type = typ
				out[m.Name] = m
			}
		}
	}
	return out, nil
}

// constMetricTypes maps the constructors of constant metrics to the type they give the Desc
// they are passed (a package-level variable): a NewDesc alone does not say it.
var constMetricTypes = map[string]string{
	"MustNewConstHistogram": "histogram", "NewConstHistogram": "histogram",
	"MustNewConstSummary": "summary", "NewConstSummary": "summary",
}

func isCall(call *ast.CallExpr, name string) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name && len(call.Args) > 0
}

// buildFQName joins namespace, subsystem and name like prometheus.BuildFQName.
func buildFQName(ns, sub, name string) string {
	parts := []string{}
	for _, p := range []string{ns, sub, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

// stringConsts collects the package-level string constants of files.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							if v, err := strconv.Unquote(bl.Value); err == nil {
								out[n.Name] = v
							}
						}
					}
				}
			}
		}
	}
	return out
}

// SeriesNames expands metric families into the series names a scrape exposes: a histogram
// adds _bucket, _sum and _count, a summary _sum and _count.
func SeriesNames(ms map[string]Metric) map[string]bool {
	out := map[string]bool{}
	for n, m := range ms {
		out[n] = true
		switch m.Type {
		case "histogram":
			out[n+"_bucket"], out[n+"_sum"], out[n+"_count"] = true, true, true
		case "summary":
			out[n+"_sum"], out[n+"_count"] = true, true
		}
	}
	return out
}

// promqlKeywords are the identifiers of PromQL that are not metric names.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true,
	"inf": true, "nan": true, "atan2": true,
	// aggregation operators, also when by/without comes before their "("
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "stddev": true,
	"stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true,
	"group": true, "limitk": true, "limit_ratio": true,
}

// PromQLMetrics returns the metric names an expression selects: identifiers that are not
// functions, keywords, label names (inside {} or the label lists of by/without/on/ignoring/
// group_*) or part of strings, durations and numbers. Grafana variables ($x, ${x}) are skipped.
func PromQLMetrics(expr string) []string {
	var out []string
	seen := map[string]bool{}
	i := 0
	n := len(expr)
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	skipLabelList := false
	for i < n {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < n && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			depth := 1
			j := i + 1
			for j < n && depth > 0 {
				switch expr[j] {
				case '{':
					depth++
				case '}':
					depth--
				case '"', '\'', '`':
					q := expr[j]
					j++
					for j < n && expr[j] != q {
						if expr[j] == '\\' {
							j++
						}
						j++
					}
				}
				j++
			}
			i = j
		case c == '[':
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				return out
			}
			i += j + 1
		case c == '$':
			j := i + 1
			if j < n && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return out
				}
				i = j + k + 1
				continue
			}
			for j < n && isIdent(expr[j]) {
				j++
			}
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < n && (isIdent(expr[j]) || expr[j] == '.') {
				j++
			}
			i = j
		case isIdentStart(c):
			j := i
			for j < n && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < n && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			lw := strings.ToLower(word)
			switch {
			case lw == "by" || lw == "without" || lw == "on" || lw == "ignoring" || lw == "group_left" || lw == "group_right":
				skipLabelList = true
			case promqlKeywords[lw]:
			case k < n && expr[k] == '(':
				// a function or aggregation
			default:
				if !seen[word] {
					seen[word] = true
					out = append(out, word)
				}
			}
			i = j
			if skipLabelList && k < n && expr[k] == '(' && (lw == "by" || lw == "without" || lw == "on" || lw == "ignoring" || lw == "group_left" || lw == "group_right") {
				e := strings.IndexByte(expr[k:], ')')
				if e < 0 {
					return out
				}
				i = k + e + 1
				skipLabelList = false
			}
		default:
			i++
		}
	}
	sort.Strings(out)
	return out
}

// ModuleRoot walks up from dir to the directory holding go.mod.
func ModuleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// routePattern matches a route registration of daemon/api.go: mux.HandleFunc("GET /readyz", ...).
var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("(?:([A-Z]+) )?(/[^"]*)"`)

// Route is one HTTP route of cdpd.
type Route struct {
	Method string // "" = any
	Path   string // pattern, e.g. /api/v1/pipelines/{name}
}

// Routes reads the HTTP routes cdpd registers from daemon/api.go under root.
func Routes(root string) ([]Route, error) {
	b, err := os.ReadFile(filepath.Join(root, "daemon", "api.go"))
	if err != nil {
		return nil, fmt.Errorf("reading cdpd's routes: %w", err)
	}
	var out []Route
	for _, m := range routePattern.FindAllStringSubmatch(string(b), -1) {
		out = append(out, Route{Method: m[1], Path: m[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no routes found in daemon/api.go")
	}
	return out, nil
}

// Match reports whether a request path matches a route pattern ({name} matches one segment).
func (r Route) Match(method, path string) bool {
	if r.Method != "" && method != "" && r.Method != method && !(r.Method == "GET" && method == "HEAD") {
		return false
	}
	ps, qs := strings.Split(r.Path, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") && strings.HasSuffix(ps[i], "}") && qs[i] != "" {
			continue
		}
		if ps[i] != qs[i] {
			return false
		}
	}
	return true
}
