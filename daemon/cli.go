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
	"strings"

	"github.com/withobsrvr/cdpd/host/builtin"
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
	case "help":
		return printUsage(serveFlags(&Config{}), stdout)
	}
	fmt.Fprintf(stderr, "cdpd help: unknown command %q (commands: validate, components, version)\n", args[0])
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
}

// validateCmd checks a config directory the way the daemon would load it (CI of config repos).
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdpd validate", flag.ContinueOnError)
	out := addOutputFlags(fs)
	strict := fs.Bool("strict", false, "treat warnings (config keys a component does not know, a pipeline without consumers) as errors")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdpd validate [--json | -o json] [--strict] DIR

Checks the pipeline files of DIR as cdpd would load them (YAML, component types and their
config, duplicate names, names that map to one service id, ${VAR} expansion from this
environment; CDP_PIPELINE_NAME applies).
Config keys a component does not know are warnings (upstream CDP ignores them): printed with
file:line:column and the keys the component knows, exit 0; --strict makes them errors.
Exit 0 when every pipeline is valid, 1 when there is an error (each names file, line and
pipeline), 2 on a usage error. With --json, prints {dir, ok, pipelines, errors, warnings}.

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
	if err != nil {
		fmt.Fprintf(stderr, "cdpd validate: %v\n", err)
		return 2
	}
	dir := pos[0]
	reg, err := builtin.Registry()
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: building the component registry: %v\n", err)
		return 1
	}
	name, _ := os.LookupEnv("CDP_PIPELINE_NAME")
	pipelines, errs, err := loader.Load(loader.Options{Dir: dir, Check: builtin.LoaderCheck(reg), NameOverride: name, Strict: *strict})
	if err != nil {
		fmt.Fprintf(stderr, "cdpd: %v\n", err)
		return 1
	}
	// Names that map to one service id: only one of them could register (the daemon runs the
	// others unregistered, reporting the conflict); for a config repository's CI, an error.
	for _, e := range serviceIDConflicts(pipelines) {
		errs = append(errs, e)
		delete(pipelines, e.Pipeline)
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
			rep.Pipelines = append(rep.Pipelines, validatePipeline{Name: n, File: p.File, Line: p.Line, Network: p.Network(), Hash: p.Hash})
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
		return 0
	}
	fmt.Fprintf(stdout, "ok: %d pipeline(s): %s\n", len(names), strings.Join(names, ", "))
	return 0
}
