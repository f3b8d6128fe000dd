package loader

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/withobsrvr/cdpd/internal/redact"
)

// Component is one `{type, config}` entry of a pipeline (upstream CDP files may also give it
// a `name`).
type Component struct {
	Type string // CDP type name, e.g. "ContractEvent"
	// Name is the entry's optional `name:`; when set the host names the component after it
	// (metrics, health details) instead of <Type> / <Type>_2.
	Name   string
	Config map[string]any // after ${VAR} expansion; may hold secrets: never log it
	Line   int            // 1-based line of the entry in its file (0 if unknown)
	Column int            // 1-based column of the entry (0 if unknown)
}

// UnknownKey is a config key a component does not act on (Options.Check): Key is its path in
// the config ("buffer_size", "gcs_options.project"). Either the component does not know it
// (Known: the keys it knows at that level, nearest first) or it accepts it for upstream
// compatibility without effect (Ignored: why).
type UnknownKey struct {
	Key     string
	Known   []string
	Ignored string
}

// Restart policies of a pipeline (`restart:` key of a pipeline; default on-failure).
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Pipeline is one pipeline definition, identified by its Name across the whole directory.
type Pipeline struct {
	Name   string
	File   string // path of the file that defines it
	Line   int    // line of its definition in File
	Column int    // column of its definition in File (0 if unknown)
	// Description is the optional free text of the `description:` key.
	Description string
	Source      Component
	Processors  []Component
	Consumers   []Component
	Restart     string // RestartAlways, RestartOnFailure or RestartNever
	// Warnings are what upstream CDP accepts silently and cdpd reports: config keys a
	// component does not know (ignored), a pipeline without consumers. Under Options.Strict
	// they are errors instead. Never part of Hash.
	Warnings []*Error
	// Hash is the hex SHA-256 of the pipeline's definition after expansion: equal hashes mean
	// equal content, so an event whose hash did not change is never emitted.
	Hash string
	// Expanded is what the ${VAR} references of this definition expanded to. Often secrets:
	// never log the values (Expanded prints as the variable names only); Secrets hands them
	// to the host's redactor.
	Expanded Expanded
}

// Expanded maps each variable a definition's ${VAR} references expanded to its value. It
// prints, logs and encodes to JSON as the sorted variable names only.
type Expanded map[string]string

// Names are the variables, sorted.
func (e Expanded) Names() []string { return slices.Sorted(maps.Keys(e)) }

func (e Expanded) String() string                { return "[" + strings.Join(e.Names(), " ") + "]" }
func (e Expanded) GoString() string              { return "loader.Expanded" + e.String() }
func (e Expanded) LogValue() slog.Value          { return slog.StringValue(e.String()) }
func (e Expanded) MarshalJSON() ([]byte, error)  { return json.Marshal(e.Names()) }
func (e Expanded) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(e.String())) }

// Secrets are the expanded values, each shown as "${VAR}" by a redactor.
func (e Expanded) Secrets() []redact.Secret {
	out := make([]redact.Secret, 0, len(e))
	for _, n := range e.Names() {
		out = append(out, redact.Secret{Value: e[n], Label: "${" + n + "}"})
	}
	return out
}

// Secrets lists every value of the definition that must never be shown (internal/redact): the
// values ${VAR} expanded to, and the secrets of each component's config (values of keys that
// name a secret, URL user names, passwords and query values, connection string passwords).
func (p *Pipeline) Secrets() []redact.Secret {
	out := p.Expanded.Secrets()
	out = append(out, redact.Collect(p.Source.Config)...)
	for _, c := range p.Processors {
		out = append(out, redact.Collect(c.Config)...)
	}
	for _, c := range p.Consumers {
		out = append(out, redact.Collect(c.Config)...)
	}
	return out
}

// Network is the pipeline's network as its source names it: the source's `network` value
// (e.g. "pubnet"), else its `network_passphrase`, else "".
func (p *Pipeline) Network() string {
	for _, k := range []string{"network", "network_passphrase"} {
		if v, ok := p.Source.Config[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

// EventKind says what happened to a pipeline.
type EventKind int

const (
	Add EventKind = iota + 1
	Update
	Remove
)

func (k EventKind) String() string {
	switch k {
	case Add:
		return "add"
	case Update:
		return "update"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change of one pipeline. Pipeline is the new definition for Add and Update and the
// last applied one for Remove.
type Event struct {
	Kind     EventKind
	Pipeline *Pipeline
}

// Error is a config error. Its message names the file, the line (and column when YAML gives
// one) and the pipeline, e.g. "configs/a.yaml:12:5: pipeline ContractEvents: consumer 1
// (SaveToParquet): unknown type ...".
type Error struct {
	File     string
	Line     int    // 0 if unknown
	Column   int    // 0 if unknown
	Pipeline string // "" when the error is not about one pipeline
	Msg      string
	Err      error // wrapped cause, may be nil
}

func (e *Error) Error() string {
	loc := Printable(e.File)
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
		if e.Column > 0 {
			loc = fmt.Sprintf("%s:%d", loc, e.Column)
		}
	}
	s := loc + ": "
	if e.Pipeline != "" {
		s += "pipeline " + Printable(e.Pipeline) + ": "
	}
	return s + escapeUnprintable(e.Msg)
}

// Printable returns s as it is when it is valid UTF-8 of printable characters only
// (strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space), else
// quoted as Go quotes it (strconv.Quote). File and pipeline names come from the filesystem and
// from YAML: printed raw, a newline in one could forge lines of `cdpd validate` or of a log, an
// ESC send terminal escapes.
func Printable(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

func printable(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !strconv.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

// escapeUnprintable writes each character of s that Printable would quote as Go escapes it
// (\n, \x1b, \u2028, \xff for a byte that is not UTF-8), without quoting the whole.
func escapeUnprintable(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case !strconv.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
