package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// LockFile is the file of the state directory that a running cdpd holds locked (flock, for
// its whole life): a second cdpd on the same state directory, which would write the same
// checkpoints, control plane database and owner token, refuses to start and names the holder.
// The file holds the holder's pid, host and start time; the lock, not the file, is what
// counts: a file left by a killed process does not stop the next start.
const LockFile = "cdpd.lock"

// stateLock is the held lock of a state directory.
type stateLock struct{ fl *flock.Flock }

// lockStateDir takes the state directory's lock, or fails naming the cdpd that holds it.
func lockStateDir(dir string, now time.Time) (*stateLock, error) {
	path := filepath.Join(dir, LockFile)
	fl := flock.New(path, flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking the state directory %s: %w", dir, err)
	}
	if !ok {
		holder, _ := os.ReadFile(path)
		h := strings.TrimSpace(string(holder))
		if h == "" {
			h = "holder unknown"
		}
		return nil, fmt.Errorf("the state directory %s is in use by another cdpd (%s; lock file %s): run one cdpd per state directory (--state-dir)", dir, h, path)
	}
	// Written in place, not replaced: the lock belongs to this inode.
	info := fmt.Sprintf("pid %d on host %s, started %s\n", os.Getpid(), hostname(), now.UTC().Format(time.RFC3339))
	if err := writeInPlace(path, info); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("writing the state directory's lock file %s: %w", path, err)
	}
	return &stateLock{fl: fl}, nil
}

func writeInPlace(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt([]byte(content), 0)
	return errors.Join(werr, f.Truncate(int64(len(content))), f.Close())
}

// release gives the lock up (the process's exit would too).
func (l *stateLock) release() error {
	if err := l.fl.Unlock(); err != nil {
		return fmt.Errorf("unlocking the state directory: %w", err)
	}
	return nil
}
