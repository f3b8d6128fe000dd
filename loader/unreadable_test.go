package loader

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// denyReads makes opening path fail with EACCES while deny is set, as `chmod 000` does for a
// user that is not root. Root reads a file whatever its mode (CI runs as root), so the tests
// inject the error at the open: the rest of the read path is the real one.
func denyReads(path string, deny *atomic.Bool) func(string, int, os.FileMode) (*os.File, error) {
	return func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if deny.Load() && name == path {
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return os.OpenFile(name, flag, perm)
	}
}

// TestUnreadableFileReadAgain (issue 17 item 5): a file that cannot be read is an error (its
// pipelines are not added). Once it is readable again it used to stay in error until SIGHUP:
// the watcher dropped chmod events and never retried. Now `chmod 644` (a chmod event of a
// pipeline file) rescans at once, and without any event the watcher retries every
// RetryUnreadable.
func TestUnreadableFileReadAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry time.Duration
		chmod bool
	}{
		{"chmod event", time.Hour, true},
		{"periodic retry", 50 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := filepath.Join(dir, "a.yaml")
			writeFile(t, a, pipelineYAML("1", "A"))
			var deny atomic.Bool
			deny.Store(true)
			h, b := startWith(t, dir, 20*time.Millisecond, func(o *Options) {
				o.open, o.RetryUnreadable = denyReads(a, &deny), tc.retry
			})
			if len(b.Events) != 0 || len(b.Errors) != 1 || !strings.Contains(b.Errors[0].Error(), "a.yaml: cannot read: open "+a+": permission denied") {
				t.Fatalf("initial batch %+v %v, want the read error and no pipeline", events(b), b.Errors)
			}
			deny.Store(false)
			if tc.chmod {
				if err := os.Chmod(a, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			expectEvents(t, h.nextEvents(), "add A")
			if errs := h.w.Errors(); len(errs) != 0 {
				t.Errorf("errors standing after the file was read: %v", errs)
			}
		})
	}
}

// The same with a real `chmod 000`, where it denies reading (not as root).
func TestChmodMakesFileReadableAgain(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a file whatever its mode: TestUnreadableFileReadAgain injects the error instead")
	}
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	writeFile(t, a, pipelineYAML("1", "A"))
	if err := os.Chmod(a, 0); err != nil {
		t.Fatal(err)
	}
	h, b := startWith(t, dir, 20*time.Millisecond, func(o *Options) { o.RetryUnreadable = time.Hour })
	if len(b.Errors) != 1 || !strings.Contains(b.Errors[0].Error(), "permission denied") {
		t.Fatalf("initial batch: %v", b.Errors)
	}
	if err := os.Chmod(a, 0o644); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, h.nextEvents(), "add A")
}
