package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
)

// GCSOptions are upstream's gcs_options, which tune the GCS client: chunk_size (bytes per
// request of a resumable upload; 0: the client's default, 16 MiB), retry_backoff_multiplier and
// retry_backoff_max (seconds) of the client's own retries of transient errors.
type GCSOptions struct {
	ChunkSize              int     `mapstructure:"chunk_size"`
	RetryBackoffMultiplier float64 `mapstructure:"retry_backoff_multiplier"`
	RetryBackoffMax        float64 `mapstructure:"retry_backoff_max"`
}

func (o GCSOptions) check() error {
	if o.ChunkSize < 0 || o.RetryBackoffMax < 0 || (o.RetryBackoffMultiplier != 0 && o.RetryBackoffMultiplier <= 1) {
		return errors.New("gcs_options: chunk_size and retry_backoff_max must not be negative, retry_backoff_multiplier must be above 1")
	}
	return nil
}

// gcsStore is a Store in a GCS bucket, through cloud.google.com/go/storage (Application
// Default Credentials; STORAGE_EMULATOR_HOST points it at an emulator). Every call retries
// transient errors with the client's backoff: the store's writes are idempotent (a key is
// always written with the same records), so uploads are retried too.
type gcsStore struct {
	client *storage.Client
	bucket *storage.BucketHandle
	prefix string // "" or "a/b/"
	chunk  int
}

func openGCS(ctx context.Context, bucket, prefix string, o GCSOptions) (Store, error) {
	client, err := storage.NewClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating the GCS client: %w", err)
	}
	opts := []storage.RetryOption{storage.WithPolicy(storage.RetryAlways)}
	if o.RetryBackoffMultiplier != 0 || o.RetryBackoffMax != 0 {
		b := gax.Backoff{Multiplier: o.RetryBackoffMultiplier}
		if o.RetryBackoffMax != 0 {
			b.Max = time.Duration(o.RetryBackoffMax * float64(time.Second))
		}
		opts = append(opts, storage.WithBackoff(b))
	}
	s := &gcsStore{client: client, bucket: client.Bucket(bucket).Retryer(opts...), chunk: o.ChunkSize}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	if _, err := s.bucket.Attrs(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("opening the GCS bucket: %w", err)
	}
	return s, nil
}

func (s *gcsStore) Put(ctx context.Context, key string, write func(io.Writer) error) (int64, error) {
	// The object appears when the writer is closed; cancelling ctx before that abandons the
	// upload and leaves any earlier object of the key as it was.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.bucket.Object(s.prefix + key).NewWriter(ctx)
	w.ContentType = contentType(key)
	if s.chunk > 0 {
		w.ChunkSize = s.chunk
	}
	cw := &countWriter{w: w}
	if err := write(cw); err != nil {
		cancel()
		_ = w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("uploading %s: %w", key, err)
	}
	return cw.n, nil
}

func (s *gcsStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: s.prefix + prefix, Projection: storage.ProjectionNoACL})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing objects: %w", err)
		}
		if err := fn(strings.TrimPrefix(a.Name, s.prefix)); err != nil {
			return err
		}
	}
}

func (s *gcsStore) Open(ctx context.Context, key string) (Object, error) {
	r, err := s.bucket.Object(s.prefix + key).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return newMemObject(b), nil
}

func (s *gcsStore) Delete(ctx context.Context, key string) error {
	err := s.bucket.Object(s.prefix + key).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

func (s *gcsStore) RemoveTemps(context.Context, func(string) bool) (int, error) { return 0, nil }

func (s *gcsStore) Close() error { return s.client.Close() }

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// contentType is the content type of an object by its key's extension.
func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".ndjson"):
		return "application/x-ndjson"
	case strings.HasSuffix(key, ".parquet"):
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}
