package loader

import "fmt"

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
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
		if e.Column > 0 {
			loc = fmt.Sprintf("%s:%d", loc, e.Column)
		}
	}
	s := loc + ": "
	if e.Pipeline != "" {
		s += "pipeline " + e.Pipeline + ": "
	}
	return s + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }
