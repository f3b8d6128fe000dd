// Package checkpoint owns the on-disk record of how far each pipeline got: the last ledger
// that every consumer of the pipeline durably accepted. One JSON file per pipeline,
// <dir>/<pipeline>/checkpoint.json, replaced atomically (internal/atomicfile: temporary file,
// fsync, rename, directory fsync), so a crash at any moment leaves either the old or the new
// checkpoint.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/withobsrvr/cdpd/internal/atomicfile"
	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// FileName is the name of the checkpoint file inside a pipeline's state directory.
const FileName = "checkpoint.json"

// Checkpoint is the content of one pipeline's checkpoint file.
type Checkpoint struct {
	Pipeline   string    `json:"pipeline"`
	Ledger     uint32    `json:"ledger"`                // last ledger every consumer durably accepted
	ConfigHash string    `json:"config_hash,omitempty"` // hash of the version that wrote it
	UpdatedAt  time.Time `json:"updated_at"`
}

// Store keeps the checkpoints of the pipelines under one directory.
type Store struct {
	dir string
}

// New returns a store rooted at dir (created on first Save).
func New(dir string) *Store { return &Store{dir: dir} }

// Dir is the state directory private to a pipeline: <dir>/<name>. Names that are not safe as
// a single path element (empty, ".", "..", or holding characters outside [A-Za-z0-9._-]) are
// mapped to a sanitized name plus a short hash, so two names never share a directory.
func (s *Store) Dir(pipeline string) string {
	return filepath.Join(s.dir, SafeName(pipeline))
}

// SafeName maps a pipeline name to a single safe path element (see Store.Dir).
func SafeName(name string) string {
	safe := name != "" && name != "." && name != ".."
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			safe = false
			b[i] = '_'
		}
	}
	if safe {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return fmt.Sprintf("%s-%s", string(b), hex.EncodeToString(sum[:4]))
}

// Load reads a pipeline's checkpoint; ok is false when there is none yet.
func (s *Store) Load(pipeline string) (c Checkpoint, ok bool, err error) {
	path := filepath.Join(s.Dir(pipeline), FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading checkpoint of pipeline %s: %w", pipeline, err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading checkpoint %s: %w (fix or delete the file to restart from start_ledger)", path, err)
	}
	return c, true, nil
}

// Save replaces a pipeline's checkpoint atomically and durably.
func (s *Store) Save(c Checkpoint) error {
	dir := s.Dir(c.Pipeline)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving checkpoint of pipeline %s: %w", c.Pipeline, err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding checkpoint of pipeline %s: %w", c.Pipeline, err)
	}
	f, err := atomicfile.Create(filepath.Join(dir, FileName))
	if err != nil {
		return fmt.Errorf("saving checkpoint of pipeline %s: %w", c.Pipeline, err)
	}
	defer f.Discard()
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("saving checkpoint of pipeline %s: %w", c.Pipeline, err)
	}
	failpoint.Inject(failpoint.CheckpointBeforeRename)
	if err := f.Commit(); err != nil {
		return fmt.Errorf("saving checkpoint of pipeline %s: %w", c.Pipeline, err)
	}
	failpoint.Inject(failpoint.CheckpointAfterRename)
	return nil
}
