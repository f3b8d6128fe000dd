// Package loader owns cdpd's pipeline configuration: it reads the CDP pipeline YAML files of
// the config directory (env expansion, validation with file:line errors, a content hash per
// pipeline) and watches the directory, turning file changes into add / update / remove events
// of pipelines, not files. It knows nothing of the runtime: component types are checked
// through a hook the caller supplies (Options.Check).
//
// # Config files
//
// Every `*.yaml` / `*.yml` file directly in the config directory is read. A file holds one or
// more pipelines, in either shape of the CDP pipeline file (existing files work unchanged):
//
//	pipelines:                      # a map: pipeline name -> pipeline
//	  ContractEvents:
//	    description: contract events of pubnet   # optional
//	    restart: on-failure                       # optional: always | on-failure (default) | never
//	    source:     {type: FSBufferedStorageSourceAdapter, config: {path: "${DATA:-/data}", start_ledger: 58752000}}
//	    processors: [{type: ContractEvent, config: {network_passphrase: "..."}}]   # may be empty
//	    consumers:  [{type: SaveToParquet, config: {local_path: /out, buffer_size: 10000}}]
//
//	pipeline:                       # or one pipeline, named by its name: key
//	  name: cdp-latest-ledger
//	  source: ...
//
//	name: cdp-latest-ledger         # or flat: source, processors, consumers at the top level,
//	source: ...                     # named by name:, else by the file's name without .yaml
//	consumers: ...
//
// Several YAML documents (separated by `---`) may share a file. A pipeline needs a source;
// processors and consumers may be empty or absent (a pipeline without consumers runs, counts
// the records of its last processor and drops them; its checkpoint follows the ledgers it
// processed: a warning). Each component is `{type, config}` (config optional) with an optional
// `name` (1 to 63 letters, digits, '-' or '_'), which the host uses as the component's name in
// metrics and health details. Pipeline names are 1 to 63 letters, digits, '-' or '_', starting
// with a letter or digit. Unknown keys of the file's structure are errors, at every level;
// top-level keys starting with `x-` are free for YAML anchors (`x-defaults: &defaults {...}`,
// then `<<: *defaults` or `*defaults`).
//
// # Warnings and --strict
//
// Upstream CDP ignores config keys a component does not read, so existing files carry such
// keys (`buffer_size` on processors, `format` on StdoutSink). Keys a component does not know
// (Options.Check returns them) are warnings, not errors: each names the file, line and column
// of the key, the pipeline and the component, and the keys the component knows, nearest first.
// Pipeline.Warnings holds them; the pipeline loads. With Options.Strict (`cdpd validate
// --strict`, `cdpd --strict`) every warning is an error instead, for config repositories' CI.
// A type name the registry does not know is always an error. An
// empty file defines no pipeline and is no error (but one modified less than a second ago is
// taken as being written in place, truncated with its content not there yet: it keeps its
// pipelines until it is written or the second has passed). When CDP_PIPELINE_NAME (Options.NameOverride)
// is set, the pipeline of a file that defines exactly one is renamed to it; files with several
// keep their names.
//
// # Environment variables
//
// `${VAR}` and `${VAR:-default}` are expanded in string values (not in keys), after the YAML
// is parsed, so a variable's value always stays inside the one value that refers to it: it can
// never add keys, list items or documents. A variable's value is not expanded again. The
// default applies when VAR is unset or empty; `${VAR}` of an unset variable is an error naming
// the variable, the file, the line and the pipeline (never a value). `$${` gives a literal
// `${`; any other `$` is kept. Expanded values are strings: components convert "10000" to a
// number when their config field is one.
//
// # Errors
//
// Every problem is an *Error whose message names the file, the line (and the column where YAML
// gives one) and the pipeline, e.g.
//
//	configs/a.yaml:12:9: pipeline ContractEvents: consumer 1 (SaveToParqet): unknown component type ...
//
// A file or pipeline name that holds a control character (a newline, ESC), a bidi control or
// bytes that are not UTF-8 is printed quoted, Go style ("configs/evil\nok.yaml"), and such
// characters elsewhere in a message are escaped, so that a name can neither forge lines of
// `cdpd validate` or of a log nor send terminal escapes (Printable).
//
// A pipeline with an error is skipped; the other pipelines of the file still load, except
// when the error concerns the whole file (YAML syntax, size, top-level shape). Hostile input
// gives errors, not hangs: files over 1 MiB, nesting deeper than 64 levels and YAML alias
// expansion ("billion laughs") beyond 100,000 extra nodes are rejected.
//
// # Identity, hash and duplicates
//
// A pipeline is identified by its name across the whole directory. Its hash is the SHA-256 of
// a canonical encoding of its content after expansion (name, description, restart, each
// component's type and config; map key order, formatting, comments, positions and the file it
// is in do not count). So a pipeline moved to another file with the same content, a re-saved
// file, or a kubelet resync is a no-op; only pipelines whose hash changed get an event.
//
// The file that defined a name first keeps it (in the first scan, files are taken in path
// order). Another file defining the same name is rejected with an error naming both files;
// the running pipeline is untouched. When the holder stops defining the name (edited or
// deleted), the first other file (by path) that defines it takes it over, as a restart of
// cdpd would do: an Update event if the content differs, nothing if it is the same.
//
// # Watching
//
// The directory is watched (fsnotify), not the files, so new files, editors' atomic renames
// and the Kubernetes ConfigMap update (visible files are symlinks into `..data`, which is
// swapped atomically to a new `..2026_...` directory) are all seen. Any event (a chmod only of a
// pipeline file or of the directory: a file made readable again must be read again) schedules
// a rescan of the whole directory after Options.Debounce of quiet (default 100ms; a burst that
// never pauses is cut after 10 × Debounce), and the hashes decide what changed. Every file is
// read in every scan, but only a file whose bytes changed since the previous scan is parsed
// again (with hundreds of pipeline files, one edit does not re-parse them all);
// Watcher.Rescan forces a full one that parses every file and so reads the ${VAR} environment
// again (SIGHUP). While a file cannot be read (permissions, I/O errors) the
// watcher also rescans every Options.RetryUnreadable (10 s), in case no event says it is back. Ignored: dotfiles (which covers `..data`, `..2026_*`,
// Vim's `.x.swp` and Emacs' `.#x`), `x~` and `#x#` backups, and every name not ending in
// .yaml or .yml (Vim's `4913` probe, `x.yaml.tmp`). Symlinks are followed; a dangling one is
// a file that is not there.
//
//   - A file that turns invalid keeps its last good pipelines (no Remove event) and reports
//     the error; its pipelines that are still valid are updated. It loses pipelines only once
//     it is valid again (then the normal diff applies).
//   - A file deleted or moved out of the directory removes its pipelines.
//   - A config directory missing or unreadable at start is an error of NewWatcher / Load. If
//     it disappears while cdpd runs, the error is reported and every running pipeline is kept;
//     when the directory is back it is watched again and the normal diff applies.
//
// # Why YAML nodes and koanf's maps
//
// Files are parsed with go.yaml.in/yaml/v3 (the maintained yaml.v3 that koanf's YAML parser
// also uses) into yaml.Node trees, because errors must carry the line and column of every
// pipeline, component and value, which koanf's parser (decoding into map[string]any) drops.
// The node walk also does what a koanf load cannot: expansion per scalar after parsing, and
// budgets for aliases and depth. koanf's maps.Flatten gives the canonical, key-order-free form
// of a pipeline that its hash is taken over. The component configs handed on are plain
// map[string]any, ready for component.Decode.
package loader
