// Package hostile generates malformed and hostile pipeline files for cdpd's reliability suite
// (issue 9, part 4): invalid YAML, wrong types, unknown components and keys, missing
// variables, invalid names, files over the size limit, deep nesting, "billion laughs" alias
// bombs, duplicate pipeline names, binary garbage, invalid UTF-8, and entries that are not
// readable files (directories, FIFOs, sockets, device symlinks, symlink loops). Every case is a
// file that the loader must answer with exactly one clear error naming it, and never with a
// running pipeline, a hang or unbounded memory. Dangling symlinks are generated too but are,
// by design, files that are not there (no error).
//
// Generation is deterministic for a seed.
package hostile

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Case is one generated directory entry.
type Case struct {
	// File is the entry's name in the directory.
	File string
	// Kind is the category of the fault (e.g. "syntax", "billion-laughs").
	Kind string
	// Errors is how many config errors must name the file: 1, or 0 for a dangling symlink.
	Errors int
}

// Options of Write.
type Options struct {
	// Count is the number of cases (entries) to write.
	Count int
	// Seed makes the choices (and the garbage bytes) reproducible.
	Seed uint64
	// Valid renders a valid single-pipeline file named name: the base that most cases break
	// in exactly one place. It must use the block style of pipelineYAML in the reliability
	// harness (keys `pipeline:`, `  name:`, `  source:`, `    type:`, `    config:`,
	// `      start_ledger:`, `  processors:`, `  consumers:`).
	Valid func(name string) string
	// Running are names of pipelines already running from other files: "duplicate" cases
	// define them again.
	Running []string
	// Prefix starts every generated file name (default "hostile-").
	Prefix string
}

// generator is one kind of case: it writes the entry at path (name is the pipeline name to
// use) and returns how many errors must name it.
type generator struct {
	kind  string
	write func(g *gen, path, name string) (errors int, err error)
}

type gen struct {
	opts Options
	rng  *rand.Rand
	n    int
}

// Kinds lists the case kinds in the order Write cycles through them.
func Kinds() []string {
	out := make([]string, len(generators))
	for i, g := range generators {
		out[i] = g.kind
	}
	return out
}

// Write writes opts.Count entries into dir, cycling through every kind, and returns them.
// The directory may be live (watched by cdpd): entries appear one by one, each with a single
// create or rename where possible.
func Write(dir string, opts Options) ([]Case, error) {
	if opts.Valid == nil {
		return nil, fmt.Errorf("hostile: Options.Valid is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "hostile-"
	}
	g := &gen{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x4057113))}
	cases := make([]Case, 0, opts.Count)
	for i := 0; i < opts.Count; i++ {
		gn := generators[i%len(generators)]
		name := fmt.Sprintf("h%04d", i)
		file := fmt.Sprintf("%s%04d-%s.yaml", opts.Prefix, i, gn.kind)
		if i%7 == 3 {
			file = strings.TrimSuffix(file, ".yaml") + ".yml"
		}
		path := filepath.Join(dir, file)
		n, err := gn.write(g, path, name)
		if err != nil {
			return cases, fmt.Errorf("hostile: writing case %d (%s): %w", i, gn.kind, err)
		}
		cases = append(cases, Case{File: file, Kind: gn.kind, Errors: n})
	}
	return cases, nil
}

// writeAtomic writes data to a dot-temporary next to path and renames it into place.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil { // WriteFile's perm is subject to the umask
		return err
	}
	return os.Rename(tmp, path)
}

// text returns a case writing s as the file's content.
func text(kind string, f func(g *gen, name string) string) generator {
	return generator{kind: kind, write: func(g *gen, path, name string) (int, error) {
		return 1, writeAtomic(path, []byte(f(g, name)), 0o644)
	}}
}

// replace returns a case that breaks the valid file by replacing old (which must occur) with
// new.
func replace(kind, old, new string) generator {
	return text(kind, func(g *gen, name string) string {
		v := g.opts.Valid(name)
		old := strings.ReplaceAll(old, "NAME", name)
		if !strings.Contains(v, old) {
			panic(fmt.Sprintf("hostile: %s: the valid file has no %q", kind, old))
		}
		return strings.Replace(v, old, strings.ReplaceAll(new, "NAME", name), 1)
	})
}

// section returns a case that replaces the block of the valid file starting at the line
// header (up to the next line indented no deeper) with repl.
func section(kind, header, repl string) generator {
	return text(kind, func(g *gen, name string) string {
		lines := strings.SplitAfter(g.opts.Valid(name), "\n")
		indent := len(header) - len(strings.TrimLeft(header, " "))
		var b strings.Builder
		found := false
		for i := 0; i < len(lines); i++ {
			if !found && strings.TrimRight(lines[i], "\n") == header {
				found = true
				b.WriteString(repl)
				for i+1 < len(lines) && lines[i+1] != "" && len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent {
					i++
				}
				continue
			}
			b.WriteString(lines[i])
		}
		if !found {
			panic(fmt.Sprintf("hostile: %s: the valid file has no line %q", kind, header))
		}
		return b.String()
	})
}

var generators = []generator{
	// --- YAML syntax ---
	text("syntax-unclosed-flow", func(_ *gen, name string) string {
		return "pipeline:\n  name: " + name + "\n  source: [not, a, map\n"
	}),
	text("syntax-bad-indent", func(g *gen, name string) string {
		return strings.Replace(g.opts.Valid(name), "  source:", "    source:", 1)
	}),
	text("syntax-tab-indent", func(g *gen, name string) string {
		return strings.Replace(g.opts.Valid(name), "  source:", "\tsource:", 1)
	}),
	text("syntax-unterminated-quote", func(_ *gen, name string) string {
		return "pipeline:\n  name: \"" + name + "\n  source: {}\n"
	}),
	text("syntax-duplicate-key", func(g *gen, name string) string {
		return strings.Replace(g.opts.Valid(name), "  source:", "  name: "+name+"-again\n  source:", 1)
	}),
	text("syntax-undefined-alias", func(g *gen, name string) string {
		return strings.Replace(g.opts.Valid(name), "  processors:", "  description: *nowhere\n  processors:", 1)
	}),
	text("recursive-alias", func(g *gen, name string) string {
		// An alias inside its own anchor, where the loader walks values (a component config).
		return "x-loop: &loop [1, *loop]\n" + strings.Replace(g.opts.Valid(name), "      network: pubnet\n", "      network: pubnet\n      loop: *loop\n", 1)
	}),
	// --- shape and types ---
	text("shape-top-level-list", func(_ *gen, name string) string {
		return "- pipeline:\n    name: " + name + "\n"
	}),
	text("shape-top-level-scalar", func(_ *gen, name string) string {
		return "just a string " + name + "\n"
	}),
	text("shape-unknown-top-key", func(g *gen, name string) string {
		return "pipelinez:\n" + strings.TrimPrefix(g.opts.Valid(name), "pipeline:\n")
	}),
	section("type-source-list", "  source:", "  source: [FSBufferedStorageSourceAdapter, LatestLedger]\n"),
	section("type-processors-map", "  processors:", "  processors: {type: LatestLedger}\n"),
	section("type-consumers-scalar", "  consumers:", "  consumers: 5\n"),
	replace("type-start-ledger-word", "      start_ledger: ", "      start_ledger: soon # "),
	replace("type-start-ledger-negative", "      start_ledger: ", "      start_ledger: -"),
	replace("type-start-ledger-huge", "      start_ledger: ", "      start_ledger: 99999999999999999999 # "),
	replace("type-name-map", "  name: NAME\n", "  name: {first: NAME}\n"),
	section("type-config-list", "    config:", "    config: [1, 2]\n"),
	// --- components ---
	replace("unknown-source", "FSBufferedStorageSourceAdapter", "NoSuchSourceAdapter"),
	section("unknown-processor", "  processors:", "  processors:\n    - {type: LatestLedgerr, config: {}}\n"),
	section("unknown-consumer", "  consumers:", "  consumers:\n    - {type: SaveToMongoDB, config: {}}\n"),
	// An unknown key is a warning (upstream files carry keys upstream never read); a misspelt
	// required key is an error: the key it should have been is missing.
	replace("misspelt-required-key", "      path: ", "      pth: "),
	replace("unknown-pipeline-key", "  source:\n", "  sauce: tomato\n  source:\n"),
	replace("bad-network", "      network: pubnet\n", "      network: moonnet\n"),
	// No consumers at all is a warning; a consumer entry that is not a component is an error.
	section("consumer-null-entry", "  consumers:", "  consumers:\n    - null\n"),
	section("no-source", "  source:", ""),
	replace("missing-env", "      network: pubnet\n", "      network: ${CDPD_HOSTILE_UNSET_VARIABLE}\n"),
	// --- names ---
	replace("name-invalid-chars", "  name: NAME\n", "  name: \"NAME/../../etc\"\n"),
	replace("name-too-long", "  name: NAME\n", "  name: NAME"+strings.Repeat("x", 80)+"\n"),
	replace("name-empty", "  name: NAME\n", "  name: \"\"\n"),
	{kind: "duplicate-running", write: func(g *gen, path, name string) (int, error) {
		if len(g.opts.Running) == 0 {
			return 1, writeAtomic(path, []byte("pipeline:\n  name: "+name+"\n  source: [x\n"), 0o644)
		}
		// A valid pipeline (with a description of its own, so its content differs) whose name
		// a running pipeline holds: rejected with an error naming both files.
		v := g.opts.Valid(g.opts.Running[g.n%len(g.opts.Running)])
		g.n++
		v = strings.Replace(v, "  source:", "  description: an impostor\n  source:", 1)
		return 1, writeAtomic(path, []byte(v), 0o644)
	}},
	// --- size and structure bombs ---
	text("huge-file", func(g *gen, name string) string {
		var b strings.Builder
		b.WriteString(g.opts.Valid(name))
		line := "# " + strings.Repeat("padding ", 16) + "\n"
		for b.Len() <= 1<<20+g.rng.IntN(1<<20) {
			b.WriteString(line)
		}
		return b.String()
	}),
	text("huge-scalar", func(g *gen, name string) string {
		// Under the size limit, but a 900 KiB pipeline name: the error must not echo it.
		return strings.Replace(g.opts.Valid(name), "  name: "+name+"\n", "  name: "+name+strings.Repeat("A", 900<<10)+"\n", 1)
	}),
	text("deep-flow-nesting", func(g *gen, name string) string {
		d := 10000 + g.rng.IntN(40000)
		return strings.Replace(g.opts.Valid(name), "      network: pubnet\n",
			"      network: pubnet\n      deep: "+strings.Repeat("[", d)+strings.Repeat("]", d)+"\n", 1)
	}),
	text("deep-map-nesting", func(g *gen, name string) string {
		var b strings.Builder
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", 6+2*i), i)
		}
		fmt.Fprintf(&b, "%sleaf\n", strings.Repeat(" ", 6+2*200))
		return strings.Replace(g.opts.Valid(name), "      network: pubnet\n", "      network: pubnet\n"+b.String(), 1)
	}),
	text("billion-laughs", func(g *gen, name string) string {
		var b strings.Builder
		b.WriteString("x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
		prev := "a"
		for _, l := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
			fmt.Fprintf(&b, "x-%s: &%s [", l, l)
			for j := 0; j < 9; j++ {
				if j > 0 {
					b.WriteString(",")
				}
				b.WriteString("*" + prev)
			}
			b.WriteString("]\n")
			prev = l
		}
		return b.String() + strings.Replace(g.opts.Valid(name), "      network: pubnet\n", "      network: pubnet\n      lol: *i\n", 1)
	}),
	text("alias-fanout", func(g *gen, name string) string {
		// One anchor of 2,000 items referenced 200 times: 400,000 nodes from a 10 KiB file.
		var b strings.Builder
		b.WriteString("x-wide: &w [")
		for i := 0; i < 2000; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("0")
		}
		b.WriteString("]\n")
		refs := strings.TrimSuffix(strings.Repeat("*w,", 200), ",")
		return b.String() + strings.Replace(g.opts.Valid(name), "      network: pubnet\n", "      network: pubnet\n      wide: ["+refs+"]\n", 1)
	}),
	text("many-documents", func(_ *gen, name string) string {
		// Thousands of empty documents, then one broken one.
		return strings.Repeat("---\n", 20000) + "pipeline:\n  name: " + name + "\n  source: [x\n"
	}),
	// --- bytes ---
	{kind: "binary-garbage", write: func(g *gen, path, _ string) (int, error) {
		b := make([]byte, 512+g.rng.IntN(8192))
		for i := range b {
			b[i] = byte(g.rng.UintN(256))
		}
		b[0] = 0 // a NUL first: never a valid YAML stream, whatever follows
		return 1, writeAtomic(path, b, 0o644)
	}},
	text("invalid-utf8", func(_ *gen, name string) string {
		return "pipeline:\n  name: " + name + "\xff\xfe\xfd\n  source: {}\n"
	}),
	text("utf16-bom", func(g *gen, name string) string {
		// UTF-16LE with a BOM: YAML readers accept it, cdpd's structure check must then fail
		// on the broken source.
		s := "pipeline:\n  name: " + name + "\n  source: [x\n"
		var b strings.Builder
		b.WriteString("\xff\xfe")
		for _, r := range s {
			b.WriteByte(byte(r))
			b.WriteByte(0)
		}
		return b.String()
	}),
	text("nul-in-value", func(g *gen, name string) string {
		return strings.Replace(g.opts.Valid(name), "  source:", "  description: \"a\x00b\"\n  x-nul: \x00\n  source:", 1)
	}),
	// --- entries that are not readable files ---
	{kind: "directory", write: func(_ *gen, path, _ string) (int, error) {
		return 1, os.Mkdir(path, 0o755)
	}},
	{kind: "fifo", write: func(_ *gen, path, _ string) (int, error) {
		// Opening a FIFO for reading blocks until a writer appears: the loader must never.
		return 1, syscall.Mkfifo(path, 0o644)
	}},
	{kind: "unix-socket", write: func(_ *gen, path, _ string) (int, error) {
		l, err := net.Listen("unix", path)
		if err != nil {
			return 0, err
		}
		// Closing a unix listener removes its file; keep the file, drop the listener.
		if ul, ok := l.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		return 1, l.Close()
	}},
	{kind: "symlink-dev-zero", write: func(_ *gen, path, _ string) (int, error) {
		return 1, os.Symlink("/dev/zero", path) // endless zeros if read
	}},
	{kind: "symlink-self-loop", write: func(_ *gen, path, _ string) (int, error) {
		return 1, os.Symlink(filepath.Base(path), path)
	}},
	{kind: "symlink-pair-loop", write: func(_ *gen, path, _ string) (int, error) {
		// path -> .loop-<name> -> path: the hidden half is ignored by name, the visible one
		// loops.
		hidden := "." + strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + "-loop"
		if err := os.Symlink(filepath.Base(path), filepath.Join(filepath.Dir(path), hidden)); err != nil {
			return 0, err
		}
		return 1, os.Symlink(hidden, path)
	}},
	{kind: "unreadable", write: func(_ *gen, path, name string) (int, error) {
		// Mode 000: "permission denied" for a normal user; root reads it anyway, so the
		// content is broken too: one error either way.
		return 1, writeAtomic(path, []byte("pipeline:\n  name: "+name+"\n  source: [x\n"), 0)
	}},
	{kind: "symlink-dangling", write: func(_ *gen, path, _ string) (int, error) {
		// By design a dangling symlink is a file that is not there (a ConfigMap mid-update).
		return 0, os.Symlink("does-not-exist-"+filepath.Base(path), path)
	}},
}
