package daemon

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/host/component"
)

// componentInfo is one registered component as `cdpd components --json` prints it.
type componentInfo struct {
	Kind    component.Kind  `json:"kind"`
	Type    string          `json:"type"`
	Aliases []string        `json:"aliases"`
	Doc     string          `json:"description"`
	Keys    []component.Key `json:"keys"`
}

// upstreamInfo is one upstream CDP type name as `cdpd components --upstream --json` prints it.
type upstreamInfo struct {
	Kind     component.Kind `json:"kind"`
	Type     string         `json:"type"`
	Provided bool           `json:"provided"`
}

// componentsCmd lists every registered component (kind, type, aliases, description, config
// keys with their types and defaults), generated from the component table; --upstream lists
// upstream CDP's type names and which cdpd provides; --markdown prints the README's table.
func componentsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdpd components", flag.ContinueOnError)
	out := addOutputFlags(fs)
	upstream := fs.Bool("upstream", false, "list upstream CDP's type names and whether cdpd provides each")
	markdown := fs.Bool("markdown", false, "print the README's component table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdpd components [--json | -o json] [--upstream] [--markdown]

Lists every component type cdpd knows: kind, CDP type name, aliases, a one-line description and
its config keys with their types and defaults. --upstream lists upstream CDP's type names and
which of them cdpd provides.

Flags:
`)
		fs.PrintDefaults()
	}
	pos, code, done := parseArgs(fs, args, stdout, stderr)
	if done {
		return code
	}
	asJSON, err := out.isJSON()
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "cdpd components: %v\n", err)
		return 2
	}
	reg, err := builtin.Registry()
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: building the component registry: %v\n", err)
		return 1
	}
	switch {
	case *markdown:
		fmt.Fprint(stdout, componentsMarkdown(reg))
	case *upstream && asJSON:
		err = printJSON(stdout, upstreamCoverage(reg))
	case *upstream:
		printUpstream(stdout, upstreamCoverage(reg))
	case asJSON:
		err = printJSON(stdout, componentInfos(reg))
	default:
		printComponents(stdout, componentInfos(reg))
	}
	if err != nil {
		fmt.Fprintf(stderr, "cdpd components: %v\n", err)
		return 1
	}
	return 0
}

func componentInfos(reg *component.Registry) []componentInfo {
	var out []componentInfo
	for _, s := range reg.Specs() {
		aliases := s.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		keys := s.Keys()
		if keys == nil {
			keys = []component.Key{}
		}
		out = append(out, componentInfo{Kind: s.Kind, Type: s.Type, Aliases: aliases, Doc: s.Doc, Keys: keys})
	}
	return out
}

func upstreamCoverage(reg *component.Registry) []upstreamInfo {
	var out []upstreamInfo
	for _, k := range component.Kinds {
		names, provided := reg.Upstream(k)
		for _, n := range names {
			out = append(out, upstreamInfo{Kind: k, Type: n, Provided: provided[n]})
		}
	}
	return out
}

func printComponents(w io.Writer, infos []componentInfo) {
	for i, c := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s", c.Kind, c.Type)
		if len(c.Aliases) > 0 {
			fmt.Fprintf(w, " (aliases: %s)", strings.Join(c.Aliases, ", "))
		}
		fmt.Fprintf(w, "\n  %s\n", c.Doc)
		printKeys(w, c.Keys, "  ")
	}
}

func printKeys(w io.Writer, keys []component.Key, indent string) {
	for _, k := range keys {
		fmt.Fprintf(w, "%s  %s: %s", indent, k.Name, k.Type)
		if k.Default != "" {
			fmt.Fprintf(w, " = %s", k.Default)
		}
		if k.Ignored != "" {
			fmt.Fprintf(w, " (no effect: %s)", k.Ignored)
		}
		fmt.Fprintln(w)
		printKeys(w, k.Keys, indent+"  ")
	}
}

func printUpstream(w io.Writer, infos []upstreamInfo) {
	counts := map[component.Kind][2]int{}
	for _, u := range infos {
		mark := "upstream only"
		c := counts[u.Kind]
		c[1]++
		if u.Provided {
			mark = "provided"
			c[0]++
		}
		counts[u.Kind] = c
		fmt.Fprintf(w, "%-9s %-45s %s\n", u.Kind, u.Type, mark)
	}
	fmt.Fprintln(w)
	for _, k := range component.Kinds {
		fmt.Fprintf(w, "%ss: %d of upstream's %d provided\n", k, counts[k][0], counts[k][1])
	}
}

// componentsMarkdown is the README's component table (kept equal to it by a test).
func componentsMarkdown(reg *component.Registry) string {
	var b strings.Builder
	b.WriteString("| kind | type | aliases | what it does |\n| --- | --- | --- | --- |\n")
	for _, c := range componentInfos(reg) {
		aliases := make([]string, len(c.Aliases))
		for i, a := range c.Aliases {
			aliases[i] = "`" + a + "`"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", c.Kind, c.Type, strings.Join(aliases, ", "), c.Doc)
	}
	return b.String()
}
