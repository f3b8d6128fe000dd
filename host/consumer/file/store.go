package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/withobsrvr/cdpd/internal/atomicfile"
)

// Store is where a file consumer keeps its objects: a local directory, a GCS bucket or an S3
// bucket, each under a prefix. Keys are slash-separated paths relative to that prefix. It is
// the one object writer of the file consumers (SaveToParquet on every storage_type, SaveToGCS).
//
// Put is atomic on every store: a reader, and a crash at any moment, sees the object's old
// content (or none) or the whole new one. On FS that is internal/atomicfile (temporary file,
// fsync, rename, directory fsync); on GCS and S3 an object upload is atomic by the services'
// own contract (an object appears, or is replaced, only when its upload completes).
type Store interface {
	// Put writes the object key with what write writes and returns its size.
	Put(ctx context.Context, key string, write func(io.Writer) error) (int64, error)
	// List calls fn with the key of every object whose key starts with prefix ("" for all),
	// in no particular order.
	List(ctx context.Context, prefix string, fn func(key string) error) error
	// Open opens an object for reading (repairs read the objects they cut).
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes an object; removing one that is gone is not an error.
	Delete(ctx context.Context, key string) error
	// RemoveTemps removes what interrupted writes left behind whose destination's base name
	// keep accepts, and returns how many it removed (FS: temporary files; the object stores
	// leave nothing visible).
	RemoveTemps(ctx context.Context, keep func(dest string) bool) (int, error)
	// Close releases the store's clients.
	Close() error
}

// Object is an object opened for reading.
type Object interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// StorageConfig is where a file consumer writes: the keys upstream's SaveToParquet uses
// (storage_type, local_path, bucket_name, path_prefix, region) plus endpoint (an S3-compatible
// store or an emulator) and gcs_options.
type StorageConfig struct {
	// StorageType: FS (the local filesystem; the default when local_path is set), GCS or S3.
	StorageType string `mapstructure:"storage_type"`
	// LocalPath is the root directory of FS storage.
	LocalPath string `mapstructure:"local_path"`
	// BucketName is the GCS or S3 bucket.
	BucketName string `mapstructure:"bucket_name"`
	// PathPrefix is a path under local_path or inside the bucket.
	PathPrefix string `mapstructure:"path_prefix"`
	// Region is the S3 region (default us-east-1).
	Region string `mapstructure:"region"`
	// Endpoint is an S3-compatible endpoint URL (path-style requests); absent for AWS.
	Endpoint string `mapstructure:"endpoint"`
	// GCSOptions tune the GCS client.
	GCSOptions GCSOptions `mapstructure:"gcs_options"`
}

// Storage types.
const (
	StorageFS  = "FS"
	StorageGCS = "GCS"
	StorageS3  = "S3"
)

// check validates the config and returns the storage type; typ names the consumer in errors.
// Errors quote no value but the storage type.
func (c *StorageConfig) check(typ string) (string, error) {
	st := strings.ToUpper(c.StorageType)
	switch st {
	case "":
		switch {
		case c.LocalPath != "":
			st = StorageFS
		case c.BucketName != "":
			return "", fmt.Errorf("%s: storage_type is required with bucket_name (GCS or S3)", typ)
		default:
			return "", fmt.Errorf("%s: local_path is required (or storage_type GCS or S3 with bucket_name)", typ)
		}
	case "LOCAL":
		st = StorageFS
	case StorageFS, StorageGCS, StorageS3:
	default:
		return "", fmt.Errorf("%s: unknown storage_type %q (FS, GCS or S3)", typ, c.StorageType)
	}
	if c.PathPrefix != "" && !filepath.IsLocal(filepath.FromSlash(strings.Trim(c.PathPrefix, "/"))) {
		return "", fmt.Errorf("%s: path_prefix must be a relative path that stays inside the storage root", typ)
	}
	switch st {
	case StorageFS:
		if c.LocalPath == "" {
			return "", fmt.Errorf("%s: local_path is required for storage_type FS", typ)
		}
		if c.BucketName != "" || c.Region != "" || c.Endpoint != "" {
			return "", fmt.Errorf("%s: bucket_name, region and endpoint are for storage_type GCS or S3, not FS", typ)
		}
	case StorageGCS, StorageS3:
		if c.BucketName == "" {
			return "", fmt.Errorf("%s: bucket_name is required for storage_type %s", typ, st)
		}
		if strings.Contains(c.BucketName, "/") {
			return "", fmt.Errorf("%s: bucket_name is a bucket; put the path inside it in path_prefix", typ)
		}
		if c.LocalPath != "" {
			return "", fmt.Errorf("%s: local_path is for storage_type FS, not %s", typ, st)
		}
		if st == StorageGCS && (c.Region != "" || c.Endpoint != "") {
			return "", fmt.Errorf("%s: region and endpoint are for storage_type S3, not GCS (the GCS client follows STORAGE_EMULATOR_HOST)", typ)
		}
		if st == StorageS3 && c.GCSOptions != (GCSOptions{}) {
			return "", fmt.Errorf("%s: gcs_options are for storage_type GCS, not S3", typ)
		}
		if err := c.GCSOptions.check(); err != nil {
			return "", fmt.Errorf("%s: %w", typ, err)
		}
		if st == StorageS3 {
			if err := checkEndpoint(c.Endpoint); err != nil {
				return "", fmt.Errorf("%s: %w", typ, err)
			}
		}
	}
	return st, nil
}

// openStore opens the store the config names (connections are made here, in Start).
func openStore(ctx context.Context, c *StorageConfig, st string) (Store, error) {
	prefix := strings.Trim(path.Clean("/"+strings.Trim(c.PathPrefix, "/")), "/")
	switch st {
	case StorageGCS:
		return openGCS(ctx, c.BucketName, prefix, c.GCSOptions)
	case StorageS3:
		return openS3(ctx, c.BucketName, prefix, c.Region, c.Endpoint)
	}
	root := c.LocalPath
	if strings.HasPrefix(root, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("expanding ~ in local_path: %w", err)
		}
		root = filepath.Join(home, root[2:])
	}
	root = filepath.Join(root, filepath.FromSlash(prefix))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	return &fsStore{root: root}, nil
}

// fsStore is a Store in a local directory.
type fsStore struct{ root string }

func (s *fsStore) path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

func (s *fsStore) Put(_ context.Context, key string, write func(io.Writer) error) (int64, error) {
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, fmt.Errorf("creating directory of %s: %w", key, err)
	}
	f, err := atomicfile.Create(p)
	if err != nil {
		return 0, err
	}
	defer f.Discard()
	if err := write(f); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat of the written %s: %w", key, err)
	}
	if err := f.Commit(); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (s *fsStore) walk(fn func(p, key string, d fs.DirEntry) error) error {
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		return fn(p, filepath.ToSlash(rel), d)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func isTemp(name string) (dest string, ok bool) {
	if dest, ok := atomicfile.TempOf(name); ok {
		return dest, true
	}
	// Temporary names of earlier versions: ".<dest>.<n>.tmp".
	if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
		rest := strings.TrimSuffix(name[1:], ".tmp")
		if i := strings.LastIndexByte(rest, '.'); i > 0 {
			return rest[:i], true
		}
	}
	return "", false
}

func (s *fsStore) List(_ context.Context, prefix string, fn func(string) error) error {
	return s.walk(func(_, key string, d fs.DirEntry) error {
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		if _, tmp := isTemp(d.Name()); tmp {
			return nil
		}
		return fn(key)
	})
}

func (s *fsStore) RemoveTemps(_ context.Context, keep func(string) bool) (int, error) {
	n := 0
	err := s.walk(func(p, _ string, d fs.DirEntry) error {
		dest, tmp := isTemp(d.Name())
		if !tmp || !keep(dest) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	return n, err
}

type fsObject struct{ *os.File }

func (o fsObject) Size() int64 {
	st, err := o.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

func (s *fsStore) Open(_ context.Context, key string) (Object, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, err
	}
	return fsObject{f}, nil
}

func (s *fsStore) Delete(_ context.Context, key string) error {
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *fsStore) Close() error { return nil }

// memObject is an object read whole into memory (GCS, S3).
type memObject struct{ *bytes.Reader }

func (memObject) Close() error { return nil }

func newMemObject(b []byte) Object { return memObject{bytes.NewReader(b)} }
