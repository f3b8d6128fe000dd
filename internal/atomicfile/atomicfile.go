// Package atomicfile owns cdpd's one way of replacing a file so that a reader, and a crash at
// any moment, sees either the old content or the new one (checkpoints, Parquet output).
// github.com/google/renameio/v2 writes a temporary file in the destination's directory, fsyncs
// it and renames it over the destination; this package adds the fsync of the directory that
// makes the rename itself durable, and recognises the temporary files an interrupted write
// leaves behind.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// File is a file being written. Nothing is visible at its path until Commit; Discard (or a
// crash) leaves a temporary file, never a partial destination.
type File struct {
	*renameio.PendingFile
	dir string
}

// Create starts writing the file that will replace path. The temporary file lives in path's
// directory (a rename does not cross file systems), readable by the owner only.
func Create(path string) (*File, error) {
	dir := filepath.Dir(path)
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir))
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file for %s: %w", path, err)
	}
	return &File{PendingFile: pf, dir: dir}, nil
}

// Commit fsyncs the file, renames it over its path and fsyncs the directory.
func (f *File) Commit() error {
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("replacing %s: %w", f.Name(), err)
	}
	return syncDir(f.dir)
}

// Discard removes the temporary file unless Commit succeeded. It is safe to defer.
func (f *File) Discard() { _ = f.Cleanup() }

// WriteFile replaces path with data atomically and durably.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// TempOf says whether name (a base name) is a temporary file Create made, and for which
// destination base name: ".<dest><digits>". A name whose destination itself ends in digits is
// ambiguous; callers check the destination against the names they write.
func TempOf(name string) (dest string, ok bool) {
	if !strings.HasPrefix(name, ".") {
		return "", false
	}
	rest := strings.TrimRight(name[1:], "0123456789")
	if rest == "" || len(rest) == len(name)-1 {
		return "", false
	}
	return rest, true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
