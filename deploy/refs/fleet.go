package refs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/server"
)

// statWord is what a component stat key looks like ("ledgers_behind_tip").
var statWord = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// FleetMetrics returns the gauges the control plane's /metrics can re-export for cdpd's
// pipelines (server.PromName of their heartbeat keys), read from the code like Metrics: every
// "pipeline.<key>" string of host/, and every stat-like string ([a-z][a-z0-9_]*) of the
// components under host/source, host/processor and host/consumer as the key of a source,
// processor or consumer stat. It is a superset (any such string may be a key), so it catches a
// rule or panel naming a metric no code could write, not one that is never sent.
func FleetMetrics(root string) (map[string]Metric, error) {
	out := map[string]Metric{}
	add := func(key, rel string) {
		if name, _, ok := server.PromName(key); ok {
			out[name] = Metric{Name: name, Type: "gauge", File: rel}
		}
	}
	fset := token.NewFileSet()
	host := filepath.Join(root, "host")
	err := filepath.WalkDir(host, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		kind := ""
		for _, k := range []string{"source", "processor", "consumer"} {
			if strings.HasPrefix(filepath.ToSlash(rel), "host/"+k+"/") {
				kind = k
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			bl, ok := n.(*ast.BasicLit)
			if !ok || bl.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(bl.Value)
			switch {
			case err != nil:
			case strings.HasPrefix(s, "pipeline.") && statWord.MatchString(strings.TrimPrefix(s, "pipeline.")):
				add(s, rel)
			case kind != "" && statWord.MatchString(s):
				add(kind+".Component."+s, rel)
			}
			return true
		})
		return nil
	})
	return out, err
}
