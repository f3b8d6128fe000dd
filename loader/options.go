package loader

import (
	"log/slog"
	"os"
	"regexp"
	"time"
)

// Limits that keep hostile or broken files from hurting the daemon: each gives an *Error.
const (
	// MaxFileSize is the largest pipeline file read (1 MiB).
	MaxFileSize = 1 << 20
	// MaxDepth is the deepest nesting of maps and lists allowed inside a pipeline file.
	MaxDepth = 64
	// maxAliasNodes is how many nodes alias expansion may add to a file beyond the nodes it
	// holds (a "billion laughs" file stops here with an error).
	maxAliasNodes = 100_000
)

// Options configure ParseFile, Load and NewWatcher.
type Options struct {
	// Dir is the config directory (Load, NewWatcher).
	Dir string
	// Check validates one component: kind is "source", "processor" or "consumer"; network is
	// the pipeline's network (see Pipeline.Network), which processors that name none follow.
	// It returns an error for an unknown type or a bad config, and the config keys the
	// component does not know (the daemon passes component.Registry.Check). nil = accept
	// everything. It must not modify config.
	Check func(kind, typeName string, config map[string]any, network string) ([]UnknownKey, error)
	// Strict turns warnings (unknown config keys, a pipeline without consumers) into errors:
	// `cdpd validate --strict` and `cdpd --strict`, for config repositories' CI.
	Strict bool
	// LookupEnv resolves ${VAR} references; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// NameOverride (CDP_PIPELINE_NAME) renames the pipeline of a file that defines exactly one;
	// files that define several keep their names.
	NameOverride string
	// Debounce is how long the watcher waits after the last event of a burst before it
	// rescans (default 100ms). A burst that keeps going is cut after 10 × Debounce.
	Debounce time.Duration
	// Logger receives one line per pipeline event and per new config error (default
	// slog.Default()). Config values are never logged.
	Logger *slog.Logger
	// RetryUnreadable is how often the watcher scans again while a file cannot be read
	// (permissions, I/O errors; default 10s), in case no event says it is readable again.
	RetryUnreadable time.Duration

	// open opens a file to read it (os.OpenFile; tests inject read errors that root, who may
	// read any file whatever its mode, would not get).
	open func(name string, flag int, perm os.FileMode) (*os.File, error)
}

func (o Options) lookupEnv() func(string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv
	}
	return os.LookupEnv
}

func (o Options) debounce() time.Duration {
	if o.Debounce > 0 {
		return o.Debounce
	}
	return 100 * time.Millisecond
}

func (o Options) retryUnreadable() time.Duration {
	if o.RetryUnreadable > 0 {
		return o.RetryUnreadable
	}
	return 10 * time.Second
}

func (o Options) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if o.open != nil {
		return o.open(name, flag, perm)
	}
	return os.OpenFile(name, flag, perm)
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Component kinds passed to Options.Check.
const (
	KindSource    = "source"
	KindProcessor = "processor"
	KindConsumer  = "consumer"
)

// NamePattern is what a pipeline name must match: it becomes part of the flowctl service id,
// metric labels and file names under the state dir.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// componentNameRE is what a component's optional `name:` must match: it becomes part of metric
// names and health details.
var componentNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)
