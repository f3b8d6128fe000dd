package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/internal/shard"
	"github.com/withobsrvr/cdpd/loader"
)

// The command line's conventions: every command answers -h/--help with its usage on stdout
// and exit 0; a usage error is one line on stderr and exit 2; a failure exits 1; every command
// that prints data prints JSON with --json or -o json. Flags may come before or after the
// positional arguments.

// Main runs the cdpd command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			return versionCmd(args[1:], stdout, stderr)
		case "validate":
			return validateCmd(args[1:], stdout, stderr)
		case "components":
			return componentsCmd(args[1:], stdout, stderr)
		case "shards":
			return shardsCmd(args[1:], stdout, stderr)
		case "help":
			return helpCmd(args[1:], stdout, stderr)
		}
	}
	cfg, err := parseFlags(args, os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		return printUsage(serveFlags(&Config{}), stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: %v (cdpd --help prints the usage)\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	if err := Run(context.Background(), cfg, logger); err != nil {
		logger.Error("cdpd stopped with an error", "err", err)
		return 1
	}
	return 0
}

// helpCmd prints the usage of cdpd or of one of its commands.
func helpCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return printUsage(serveFlags(&Config{}), stdout)
	}
	switch args[0] {
	case "validate":
		return validateCmd([]string{"--help"}, stdout, stderr)
	case "version":
		return versionCmd([]string{"--help"}, stdout, stderr)
	case "components":
		return componentsCmd([]string{"--help"}, stdout, stderr)
	case "shards":
		return shardsCmd([]string{"--help"}, stdout, stderr)
	case "help":
		return printUsage(serveFlags(&Config{}), stdout)
	}
	fmt.Fprintf(stderr, "cdpd help: unknown command %q (commands: validate, shards, components, version)\n", args[0])
	return 2
}

// printUsage prints the usage of fs on w and returns exit code 0.
func printUsage(fs *flag.FlagSet, w io.Writer) int {
	fs.SetOutput(w)
	fs.Usage()
	return 0
}

// parseArgs parses a command's arguments, flags before or after the positional ones ("--"
// ends the flags). done is true when the command must stop now and exit with code: after a
// help request (usage on stdout, 0) or a usage error (stderr, 2).
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	fs.SetOutput(io.Discard)
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, printUsage(fs, stdout), true
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v (%s --help prints the usage)\n", fs.Name(), err, fs.Name())
			return nil, 2, true
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, false
		}
		if len(rest) == 0 {
			return pos, 0, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// outputFormat is the --json / -o choice of a command that prints data.
type outputFormat struct {
	json   bool
	format string
}

func addOutputFlags(fs *flag.FlagSet) *outputFormat {
	o := &outputFormat{}
	fs.BoolVar(&o.json, "json", false, "print JSON (same as -o json)")
	fs.StringVar(&o.format, "o", "text", "output format: text or json")
	return o
}

// isJSON says whether JSON was asked for; -o other than text or json is a usage error.
func (o *outputFormat) isJSON() (bool, error) {
	switch o.format {
	case "text":
		return o.json, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("-o must be text or json, got %q", o.format)
}

// printJSON prints v as indented JSON, as the HTTP API answers.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// versionCmd prints the version of this build.
func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdpd version", flag.ContinueOnError)
	out := addOutputFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: cdpd version [--json | -o json]\n\nPrints the version of this build (stamped from git describe by make build).\n\nFlags:\n")
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
		fmt.Fprintf(stderr, "cdpd version: %v\n", err)
		return 2
	}
	v := Version
	if asJSON {
		if err := printJSON(stdout, struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		}{"cdpd", v}); err != nil {
			fmt.Fprintf(stderr, "cdpd version: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "cdpd %s\n", v)
	return 0
}

// validateReport is the JSON answer of `cdpd validate --json`.
type validateReport struct {
	Dir       string             `json:"dir"`
	OK        bool               `json:"ok"`
	Pipelines []validatePipeline `json:"pipelines"`
	Errors    []ConfigError      `json:"errors"`   // as GET /api/v1/errors shows them
	Warnings  []ConfigError      `json:"warnings"` // unknown config keys, no consumers (errors under --strict)
}

type validatePipeline struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Network string `json:"network,omitempty"`
	Hash    string `json:"hash"`
	// Shard is the replica that runs it, with --shard-count above 1.
	Shard *int `json:"shard,omitempty"`
}

// validateCmd checks a config directory the way the daemon would load it (CI of config repos).
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdpd validate", flag.ContinueOnError)
	out := addOutputFlags(fs)
	strict := fs.Bool("strict", false, "treat warnings (config keys a component does not know, a pipeline without consumers) as errors")
	shards := addShardCountFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdpd validate [--json | -o json] [--strict] [--shard-count N] DIR

Checks the pipeline files of DIR as cdpd would load them (YAML, component types and their
config, duplicate names, ${VAR} expansion from this environment; CDP_PIPELINE_NAME applies).
Config keys a component does not know are warnings (upstream CDP ignores them): printed with
file:line:column and the keys the component knows, exit 0; --strict makes them errors.
Exit 0 when every pipeline is valid, 1 when there is an error (each names file, line and
pipeline), 2 on a usage error. With --json, prints {dir, ok, pipelines, errors, warnings}.
With --shard-count above 1 (default $CDPD_SHARD_COUNT), prints which shard runs each pipeline.

Flags:
`)
		fs.PrintDefaults()
	}
	pos, code, done := parseArgs(fs, args, stdout, stderr)
	if done {
		return code
	}
	asJSON, err := out.isJSON()
	if err == nil && len(pos) != 1 {
		err = errors.New("want exactly one directory: cdpd validate DIR")
	}
	if err == nil && *shards < 1 {
		err = fmt.Errorf("--shard-count must be at least 1, got %d", *shards)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cdpd validate: %v\n", err)
		return 2
	}
	dir := pos[0]
	pipelines, errs, err := loadDir(dir, *strict)
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: %v\n", err)
		return 1
	}
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	var warns []*loader.Error
	for _, n := range names {
		warns = append(warns, pipelines[n].Warnings...)
	}
	if asJSON {
		rep := validateReport{Dir: dir, OK: len(errs) == 0, Pipelines: []validatePipeline{}, Errors: []ConfigError{},
			Warnings: []ConfigError{}}
		for _, n := range names {
			p := pipelines[n]
			vp := validatePipeline{Name: n, File: p.File, Line: p.Line, Network: p.Network(), Hash: p.Hash}
			if *shards > 1 {
				k := shard.Of(n, *shards)
				vp.Shard = &k
			}
			rep.Pipelines = append(rep.Pipelines, vp)
		}
		for _, e := range errs {
			rep.Errors = append(rep.Errors, configError(e))
		}
		for _, w := range warns {
			rep.Warnings = append(rep.Warnings, configError(w))
		}
		if err := printJSON(stdout, rep); err != nil {
			fmt.Fprintf(stderr, "cdpd validate: %v\n", err)
			return 1
		}
		if !rep.OK {
			return 1
		}
		return 0
	}
	for _, w := range warns {
		fmt.Fprintln(stderr, "warning: "+w.Error())
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%d error(s); %d valid pipeline(s): %s\n", len(errs), len(names), strings.Join(names, ", "))
		return 1
	}
	if len(warns) > 0 {
		fmt.Fprintf(stdout, "ok, %d warning(s): %d pipeline(s): %s\n", len(warns), len(names), strings.Join(names, ", "))
	} else {
		fmt.Fprintf(stdout, "ok: %d pipeline(s): %s\n", len(names), strings.Join(names, ", "))
	}
	if *shards > 1 {
		for _, line := range byShard(assign(pipelines, *shards, 0), *shards) {
			fmt.Fprintln(stdout, line)
		}
	}
	return 0
}

// loadDir loads a config directory as the daemon would (the built-in components,
// CDP_PIPELINE_NAME from this environment): what validate and shards check.
func loadDir(dir string, strict bool) (map[string]*loader.Pipeline, []*loader.Error, error) {
	reg, err := builtin.Registry()
	if err != nil {
		return nil, nil, fmt.Errorf("building the component registry: %w", err)
	}
	name, _ := os.LookupEnv("CDP_PIPELINE_NAME")
	return loader.Load(loader.Options{Dir: dir, Check: builtin.LoaderCheck(reg), NameOverride: name, Strict: strict})
}

// addShardCountFlag is the --shard-count of the commands that print an assignment; its default
// is $CDPD_SHARD_COUNT (the daemon's), else 1.
func addShardCountFlag(fs *flag.FlagSet) *int {
	def := 1
	if v, err := strconv.Atoi(os.Getenv(FlagEnv("shard-count"))); err == nil && v > 0 {
		def = v
	}
	return fs.Int("shard-count", def, "number of shards (cdpd replicas) [$"+FlagEnv("shard-count")+", else 1]")
}

// shardsReport is the JSON answer of `cdpd shards --json`.
type shardsReport struct {
	Dir        string       `json:"dir"`
	ShardCount int          `json:"shard_count"`
	From       int          `json:"from,omitempty"`
	Pipelines  []assignment `json:"pipelines"`
	// Moves are the pipelines whose shard differs between --from and --shard-count.
	Moves  []string      `json:"moves"`
	Errors []ConfigError `json:"errors"`
}

// shardsCmd prints which shard runs each pipeline of a directory, and what a change of the
// shard count moves: the review before a rollout.
func shardsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdpd shards", flag.ContinueOnError)
	out := addOutputFlags(fs)
	count := addShardCountFlag(fs)
	from := fs.Int("from", 0, "the shard count the fleet runs now: list the pipelines a change to --shard-count moves")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdpd shards [--json | -o json] --shard-count N [--from M] DIR

Prints which shard (cdpd replica, --shard-index) runs each valid pipeline of DIR among N shards,
by the rendezvous hashing every replica uses. With --from M, also the pipelines that move when
the fleet goes from M to N shards: going from M to M+1 moves only pipelines onto the new shard.
Exit 1 when DIR has config errors (printed on stderr; the valid pipelines are still assigned).

Flags:
`)
		fs.PrintDefaults()
	}
	pos, code, done := parseArgs(fs, args, stdout, stderr)
	if done {
		return code
	}
	asJSON, err := out.isJSON()
	switch {
	case err != nil:
	case len(pos) != 1:
		err = errors.New("want exactly one directory: cdpd shards --shard-count N DIR")
	case *count < 1:
		err = fmt.Errorf("--shard-count must be at least 1, got %d", *count)
	case *from < 0:
		err = fmt.Errorf("--from must be at least 1, got %d", *from)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cdpd shards: %v\n", err)
		return 2
	}
	pipelines, errs, err := loadDir(pos[0], false)
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: %v\n", err)
		return 1
	}
	rep := shardsReport{Dir: pos[0], ShardCount: *count, From: *from, Pipelines: assign(pipelines, *count, *from),
		Moves: []string{}, Errors: []ConfigError{}}
	for _, a := range rep.Pipelines {
		if a.From != nil && *a.From != a.Shard {
			rep.Moves = append(rep.Moves, fmt.Sprintf("%s %d->%d", a.Name, *a.From, a.Shard))
		}
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, configError(e))
	}
	code = 0
	if len(errs) > 0 {
		code = 1
	}
	if asJSON {
		if err := printJSON(stdout, rep); err != nil {
			fmt.Fprintf(stderr, "cdpd shards: %v\n", err)
			return 1
		}
		return code
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	header := "SHARD\tPIPELINE\tFILE"
	if *from > 0 {
		header += "\tFROM"
	}
	fmt.Fprintln(tw, header)
	for _, a := range rep.Pipelines {
		line := fmt.Sprintf("%d\t%s\t%s", a.Shard, a.Name, a.File)
		if a.From != nil {
			mark := strconv.Itoa(*a.From)
			if *a.From != a.Shard {
				mark += " (moves)"
			}
			line += "\t" + mark
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	for _, line := range byShard(rep.Pipelines, *count) {
		fmt.Fprintln(stdout, line)
	}
	if *from > 0 {
		fmt.Fprintf(stdout, "%d of %d pipeline(s) move from %d to %d shards\n", len(rep.Moves), len(rep.Pipelines), *from, *count)
	}
	return code
}
