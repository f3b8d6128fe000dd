package loader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Batch is the outcome of one scan of the directory.
type Batch struct {
	// Initial is true for the first batch of Run (delivered even when empty).
	Initial bool
	// Events are the pipeline changes, by content hash: removes, then updates, then adds,
	// each sorted by name.
	Events []Event
	// Errors are the errors new in this scan; Watcher.Errors has every error still standing.
	// A batch with no event and no new error says that some errors were resolved.
	Errors []*Error
	// Hash identifies the whole valid configuration after this batch.
	Hash string
}

// Watcher watches a config directory and turns file changes into pipeline events. Create it
// with NewWatcher and run it with Run.
type Watcher struct {
	opts    Options
	dir     string
	log     *slog.Logger
	rescan  chan struct{}
	running atomic.Bool

	// retry is how often Run tries to watch the directory again after it was removed.
	retry time.Duration

	mu   sync.Mutex
	errs []*Error

	// parsed is the last scan's result of every file (Run's goroutine only): a later scan
	// parses again only the files whose bytes changed.
	parsed map[string]*fileResult

	scans atomic.Int64 // completed scans (tests wait on it)
}

// NewWatcher returns a watcher of opts.Dir; it fails with a clear error when the directory is
// missing, not a directory or unreadable.
func NewWatcher(opts Options) (*Watcher, error) {
	if err := checkDir(opts.Dir); err != nil {
		return nil, err
	}
	return &Watcher{
		opts:   opts,
		dir:    filepath.Clean(opts.Dir),
		log:    opts.logger().With(slog.String("config_dir", opts.Dir)),
		rescan: make(chan struct{}, 1),
		retry:  time.Second,
	}, nil
}

// Rescan asks Run for a full rescan now (SIGHUP): every file parsed again, the ${VAR}
// environment read again. It never blocks; requests made while one is pending are coalesced.
func (w *Watcher) Rescan() {
	select {
	case w.rescan <- struct{}{}:
	default:
	}
}

// Errors returns the config errors standing after the last scan, sorted by file and line.
func (w *Watcher) Errors() []*Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.errs)
}

// Run watches the directory until ctx is done. It does the initial scan and delivers it as the
// first Batch (Initial, even if empty), then delivers a Batch after every scan that changed a
// pipeline or the set of errors. deliver is called from Run's goroutine only, one batch at a
// time; Run waits for it to return. Run returns nil when ctx is done, an error when the
// directory cannot be watched at start. It may be called once.
//
// Every event on the directory (create, write, remove, rename; chmod is dropped) schedules a
// rescan after Debounce of quiet, at most 10 × Debounce after the first event of a burst. The
// directory itself is watched, not its files, so new files, atomic renames and the ConfigMap
// `..data` symlink swap are all seen. If the directory is removed, its pipelines are kept, an
// error is reported, and Run watches it again once it is back.
func (w *Watcher) Run(ctx context.Context, deliver func(Batch)) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("loader: Watcher.Run called twice")
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("start watching config directory %s: %w", w.dir, err)
	}
	defer fsw.Close()
	if err := fsw.Add(w.dir); err != nil {
		return fmt.Errorf("watch config directory %s: %w", w.dir, err)
	}
	st := newState()
	grace := time.NewTimer(time.Hour) // rescan after a file taken as being written
	grace.Stop()
	defer grace.Stop()
	unreadable := time.NewTimer(time.Hour) // rescan while a file cannot be read
	unreadable.Stop()
	defer unreadable.Stop()
	rescanAfter := func(writing, cannotRead bool) {
		if writing {
			grace.Reset(writeGrace)
		}
		if cannotRead {
			unreadable.Reset(w.opts.retryUnreadable())
		}
	}
	rescanAfter(w.scan(st, true, true, deliver))

	var (
		debounce = w.opts.debounce()
		maxWait  = 10 * debounce
		timer    = time.NewTimer(time.Hour)
		pending  bool      // a rescan is scheduled on timer
		first    time.Time // first event of the pending burst
		retry    *time.Ticker
		retryC   <-chan time.Time
	)
	timer.Stop()
	defer timer.Stop()
	stopRetry := func() {
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
	}
	defer stopRetry()
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		wait := debounce
		if left := first.Add(maxWait).Sub(now); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	scanNow := func(full bool) {
		timer.Stop()
		pending = false
		rescanAfter(w.scan(st, false, full, deliver))
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return errors.New("loader: file watcher closed")
			}
			if ev.Op == fsnotify.Chmod && !w.concerns(ev.Name) {
				continue
			}
			if filepath.Clean(ev.Name) == w.dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
				// The directory itself went away (or was moved): watch for its return.
				_ = fsw.Remove(w.dir)
				if retry == nil {
					retry = time.NewTicker(w.retry)
					retryC = retry.C
				}
			}
			schedule()
		case err, ok := <-fsw.Errors:
			if !ok {
				return errors.New("loader: file watcher closed")
			}
			// An overflow means events were lost: a rescan recovers whatever they said.
			w.log.Warn("config directory watcher error; rescanning", slog.Any("error", err))
			schedule()
		case <-w.rescan:
			scanNow(true)
		case <-timer.C:
			scanNow(false)
		case <-grace.C:
			scanNow(false)
		case <-unreadable.C:
			scanNow(false)
		case <-retryC:
			if err := fsw.Add(w.dir); err == nil {
				stopRetry()
				scanNow(false)
			}
		}
	}
}

// concerns reports whether a chmod of path may change what a scan finds: the directory's, or a
// pipeline file's (one made readable again, `chmod 644`, must be read again).
func (w *Watcher) concerns(path string) bool {
	path = filepath.Clean(path)
	return path == w.dir || (filepath.Dir(path) == w.dir && IsConfigFile(filepath.Base(path)))
}

// scan rescans the directory, folds it into st and delivers what changed. writing reports a
// file taken as being written (see writeGrace), unreadable one that could not be read: the
// caller scans again after the grace, or after Options.RetryUnreadable. Files whose bytes did
// not change since the previous scan keep their parse (scanDir), except in a full scan (the
// first, and every Rescan): that one parses every file again, and so reads the environment
// again.
func (w *Watcher) scan(st *state, initial, full bool, deliver func(Batch)) (writing, unreadable bool) {
	defer w.scans.Add(1)
	prev := w.parsed
	if full {
		prev = nil
	}
	results, err := scanDir(w.dir, w.opts, prev)
	if err == nil {
		w.parsed = results
	}
	for _, r := range results {
		writing = writing || r.writing
		unreadable = unreadable || r.unreadable
	}
	var dirErr *Error
	if err != nil {
		cause := err
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			cause = pe.Err
		}
		dirErr = &Error{File: w.dir, Err: err,
			Msg: fmt.Sprintf("cannot read the config directory (%v); keeping the running pipelines", cause)}
	}
	events, newErrs, errsChanged := st.apply(results, dirErr)
	w.mu.Lock()
	w.errs = slices.Clone(st.errs)
	w.mu.Unlock()

	for _, ev := range events {
		w.log.Info("pipeline config "+ev.Kind.String(), slog.String("pipeline", ev.Pipeline.Name),
			slog.String("file", ev.Pipeline.File), slog.String("hash", ev.Pipeline.Hash))
	}
	for _, e := range newErrs {
		attrs := []any{slog.String("error", e.Error()), slog.String("file", e.File)}
		if e.Pipeline != "" {
			attrs = append(attrs, slog.String("pipeline", e.Pipeline))
		}
		w.log.Warn("config error", attrs...)
	}
	if !initial && len(events) == 0 && !errsChanged {
		return writing, unreadable
	}
	deliver(Batch{Initial: initial, Events: events, Errors: newErrs, Hash: hashConfig(st.applied)})
	return writing, unreadable
}
