package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/withobsrvr/cdpd/internal/atomicfile"
)

// pinFile holds, in the pipeline's state directory, the range a source resolved at its first
// start from keys that depend on when or where it starts (start_time_ago, end_time_ago, a
// captive-core source without start_ledger). The host resumes from max(start, checkpoint+1):
// were the start resolved again on every restart, a restart after a backlog would move it
// past ledgers not yet processed and skip them. Pinned, a restart resumes from the checkpoint;
// changing the keys (or deleting the file) resolves again.
const pinFile = "source_range.json"

// pinned is the content of pinFile.
type pinned struct {
	Spec       string    `json:"spec"` // the keys the range was resolved from
	Start      uint32    `json:"start_ledger"`
	End        uint32    `json:"end_ledger"` // 0: unbounded
	ResolvedAt time.Time `json:"resolved_at"`
}

// loadPin returns the range pinned in dir for spec; ok is false without one (no state
// directory, no file, or a range of other keys).
func loadPin(dir, spec string) (p pinned, ok bool, err error) {
	if dir == "" {
		return p, false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, pinFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("reading the resolved range: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, false, fmt.Errorf("reading the resolved range %s (delete it to resolve the range again): %w", pinFile, err)
	}
	if p.Spec != spec || p.Start < 2 {
		return pinned{}, false, nil
	}
	return p, true, nil
}

// savePin pins p in dir (nothing without a state directory).
func savePin(dir string, p pinned) error {
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("recording the resolved range: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recording the resolved range: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, pinFile), b); err != nil {
		return fmt.Errorf("recording the resolved range: %w", err)
	}
	return nil
}
