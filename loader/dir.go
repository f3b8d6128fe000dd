package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// IsConfigFile reports whether a directory entry name is read as a pipeline file: `*.yaml` or
// `*.yml` (any case), not a dotfile (which also covers the ConfigMap internals `..data` and
// `..2026_...`, Emacs lock files `.#x` and Vim swap files `.x.swp`), not an editor backup or
// autosave (`x~`, `#x#`).
func IsConfigFile(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || strings.HasSuffix(name, "~") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// fileResult is one file of a scan.
type fileResult struct {
	pipelines []*Pipeline
	errs      []*Error
	// writing: the file is empty and was modified within writeGrace: taken as being written
	// in place (truncated, the content not yet there), so its pipelines are kept for now.
	writing bool
	// unreadable: the file could not be read (permissions, I/O): the watcher tries again
	// (Options.RetryUnreadable).
	unreadable bool
	// data is what pipelines and errs were parsed from (nil when the file was not parsed).
	data []byte
}

// writeGrace is how long an empty file is taken as being written rather than emptied: a
// writer that truncates and then writes (os.WriteFile, `cat >`, editors saving in place)
// leaves the file empty for a moment, and a scan in that moment must not remove its
// pipelines. The watcher scans again once the grace has passed.
const writeGrace = time.Second

// checkDir returns a clear error when dir cannot serve as the config directory.
func checkDir(dir string) error {
	if dir == "" {
		return errors.New("loader: no config directory given")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("config directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("config directory %s: not a directory", dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("config directory %s is not readable: %w", dir, err)
	}
	return nil
}

// scanDir reads and parses every pipeline file of dir. A file that vanishes during the scan
// (or a symlink whose target is gone, as in the middle of a ConfigMap update) is absent. The
// error is for the directory itself.
//
// prev (nil for none) is a previous scan of the same directory with the same Options: a file
// whose bytes are the same as then keeps its result rather than being parsed again. Every file
// is still read (a ConfigMap update changes a file's content without an event on it), but with
// hundreds of pipeline files, a change to one no longer re-parses and re-validates them all.
// Whatever else a parse depends on (the ${VAR} environment) is read again only by a scan
// without prev.
func scanDir(dir string, opts Options, prev map[string]*fileResult) (map[string]*fileResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read config directory %s: %w", dir, err)
	}
	out := make(map[string]*fileResult, len(entries))
	for _, de := range entries {
		name := de.Name()
		if !IsConfigFile(name) {
			continue
		}
		path := filepath.Join(dir, name)
		r, present := readFile(path, opts, prev[path])
		if present {
			out[path] = r
		}
	}
	return out, nil
}

// readFile reads and parses one file; present is false when it does not exist (any more).
// prev, if not nil, is the file's previous result: it is returned as is when the bytes are the
// same.
func readFile(path string, opts Options, prev *fileResult) (r *fileResult, present bool) {
	fail := func(format string, args ...any) (*fileResult, bool) {
		return &fileResult{errs: []*Error{{File: path, Msg: fmt.Sprintf(format, args...)}}}, true
	}
	unreadable := func(err error) (*fileResult, bool) {
		r, ok := fail("cannot read: %v", err)
		r.unreadable = true
		return r, ok
	}
	fi, err := os.Stat(path) // follows symlinks (ConfigMap files are symlinks into ..data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		return unreadable(err)
	}
	if fi.IsDir() {
		return fail("is a directory, not a pipeline file")
	}
	if !fi.Mode().IsRegular() {
		return fail("not a regular file")
	}
	if fi.Size() > MaxFileSize {
		return fail("file is %d bytes; the limit is %d", fi.Size(), MaxFileSize)
	}
	// The entry may be replaced between Stat and Open (a FIFO renamed over the file). Opening
	// a FIFO for reading waits for a writer forever, which would hang the watcher and with it
	// every reload: O_NONBLOCK makes that open return at once, and the file actually opened
	// is judged again. (O_NONBLOCK does not change reads of a regular file.)
	f, err := opts.openFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		return unreadable(err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return unreadable(err)
	}
	if !fi.Mode().IsRegular() {
		return fail("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return unreadable(err)
	}
	if len(bytes.TrimSpace(data)) == 0 && time.Since(fi.ModTime()) < writeGrace {
		return &fileResult{writing: true}, true
	}
	if prev != nil && prev.data != nil && bytes.Equal(prev.data, data) {
		return prev, true
	}
	ps, errs := ParseFile(path, data, opts)
	return &fileResult{pipelines: ps, errs: errs, data: data}, true
}

// state is the resolved configuration of a directory across scans: which file holds which
// pipeline name, the last good pipelines of every file and the pipelines applied so far.
// Load uses one for a single scan, a Watcher one for its lifetime.
type state struct {
	files   map[string]map[string]*Pipeline // file -> its effective pipelines by name
	owner   map[string]string               // pipeline name -> file that holds it
	applied map[string]*Pipeline            // pipeline name -> applied definition
	errs    []*Error                        // errors standing after the last scan
}

func newState() *state {
	return &state{
		files:   map[string]map[string]*Pipeline{},
		owner:   map[string]string{},
		applied: map[string]*Pipeline{},
	}
}

// apply folds one scan into the state and returns the pipeline events, the errors that are
// new since the previous scan and whether the set of standing errors changed.
//
// Rules:
//   - A file without errors defines exactly the pipelines it holds.
//   - A file with errors keeps its last good pipelines; those of its pipelines that parsed
//     cleanly replace theirs. It loses none until it is clean again.
//   - A file that is gone loses its pipelines.
//   - A name belongs to the file that held it first; another file defining it is rejected
//     with an error naming both files. When the holder drops the name, the first other file
//     (by path) defining it takes it over. In the first scan, files are taken by path order.
//   - dirErr (the directory cannot be read): nothing changes but the errors.
func (s *state) apply(results map[string]*fileResult, dirErr *Error) (events []Event, newErrs []*Error, errsChanged bool) {
	var errs []*Error
	if dirErr != nil {
		errs = append(errs, dirErr)
	} else {
		for path := range s.files {
			if _, ok := results[path]; !ok {
				delete(s.files, path)
			}
		}
		for path, r := range results {
			if r.writing {
				if _, known := s.files[path]; !known {
					s.files[path] = map[string]*Pipeline{}
				}
				continue // keep what it defined until it is written
			}
			eff := map[string]*Pipeline{}
			if len(r.errs) > 0 {
				maps.Copy(eff, s.files[path])
			}
			for _, p := range r.pipelines {
				eff[p.Name] = p
			}
			s.files[path] = eff
			errs = append(errs, r.errs...)
		}
		var desired map[string]*Pipeline
		desired, errs = s.resolve(errs)
		events = diff(s.applied, desired)
		s.applied = desired
	}
	sortErrors(errs)
	old := map[string]bool{}
	for _, e := range s.errs {
		old[e.Error()] = true
	}
	cur := map[string]bool{}
	for _, e := range errs {
		cur[e.Error()] = true
		if !old[e.Error()] {
			newErrs = append(newErrs, e)
		}
	}
	errsChanged = len(newErrs) > 0 || len(cur) != len(old)
	s.errs = errs
	return events, newErrs, errsChanged
}

// resolve gives every pipeline name to one file and reports the rejected duplicates.
func (s *state) resolve(errs []*Error) (map[string]*Pipeline, []*Error) {
	desired := map[string]*Pipeline{}
	owner := map[string]string{}
	// Holders keep their names.
	for name, file := range s.owner {
		if p, ok := s.files[file][name]; ok {
			desired[name] = p
			owner[name] = file
		}
	}
	paths := slices.Sorted(maps.Keys(s.files))
	for _, path := range paths {
		names := slices.Sorted(maps.Keys(s.files[path]))
		for _, name := range names {
			p := s.files[path][name]
			holder, taken := owner[name]
			if !taken {
				desired[name] = p
				owner[name] = path
				continue
			}
			if holder == path {
				continue
			}
			h := desired[name]
			errs = append(errs, &Error{File: path, Line: p.Line, Column: p.Column, Pipeline: name,
				Msg: fmt.Sprintf("pipeline name already defined in %s:%d; this definition is ignored", h.File, h.Line)})
		}
	}
	s.owner = owner
	return desired, errs
}

// diff returns the events that turn applied into desired: removes, then updates, then adds,
// each sorted by name. Pipelines whose hash did not change give no event.
func diff(applied, desired map[string]*Pipeline) []Event {
	var rm, up, add []Event
	for _, name := range slices.Sorted(maps.Keys(applied)) {
		if _, ok := desired[name]; !ok {
			rm = append(rm, Event{Kind: Remove, Pipeline: applied[name]})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		p := desired[name]
		old, ok := applied[name]
		switch {
		case !ok:
			add = append(add, Event{Kind: Add, Pipeline: p})
		case old.Hash != p.Hash:
			up = append(up, Event{Kind: Update, Pipeline: p})
		}
	}
	return append(append(rm, up...), add...)
}

// Load scans opts.Dir once (for `cdpd validate`): every valid pipeline by name, every config
// error (sorted), duplicates across files resolved as the watcher's first scan does. The error
// is for a directory that is missing or unreadable.
func Load(opts Options) (map[string]*Pipeline, []*Error, error) {
	if err := checkDir(opts.Dir); err != nil {
		return nil, nil, err
	}
	results, err := scanDir(opts.Dir, opts, nil)
	if err != nil {
		return nil, nil, err
	}
	s := newState()
	s.apply(results, nil)
	return s.applied, s.errs, nil
}
