package file

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
	"github.com/withobsrvr/cdpd/test/fixture/s3emu"
)

// objectStore is an emulated bucket a test writes to: the storage keys that point a consumer
// at it (under path_prefix "lake/stellar"), and what it holds, by key relative to the prefix
// (read through the emulator, not through the consumer's store), and a way to put an object
// back (to stage what a crash leaves).
type objectStore struct {
	name    string
	where   map[string]any
	objects func(t *testing.T) map[string][]byte
	put     func(t *testing.T, key string, b []byte)
}

const testPrefix = "lake/stellar"

// objectStores are the emulated stores by name; start one per test.
var objectStores = []struct {
	name  string
	start func(t *testing.T) objectStore
}{
	{"GCS", func(t *testing.T) objectStore {
		srv := gcsemu.Start(t, "bkt")
		return objectStore{name: "GCS",
			where: map[string]any{"storage_type": "GCS", "bucket_name": "bkt", "path_prefix": testPrefix,
				"gcs_options": map[string]any{"chunk_size": 262144, "retry_backoff_multiplier": 2.0, "retry_backoff_max": 120}},
			objects: func(t *testing.T) map[string][]byte {
				return trimKeys(gcsemu.Objects(t, srv, "bkt", testPrefix+"/"))
			},
			put: func(t *testing.T, key string, b []byte) {
				srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: testPrefix + "/" + key}, Content: b})
			}}
	}},
	{"S3", func(t *testing.T) objectStore {
		srv := s3emu.Start(t, "bkt")
		return objectStore{name: "S3",
			where: map[string]any{"storage_type": "S3", "bucket_name": "bkt", "path_prefix": "/" + testPrefix + "/", "endpoint": srv.URL},
			objects: func(t *testing.T) map[string][]byte {
				return trimKeys(srv.Objects(t, "bkt", testPrefix+"/"))
			},
			put: func(t *testing.T, key string, b []byte) { srv.Put(t, "bkt", testPrefix+"/"+key, b) }}
	}},
}

func trimKeys(m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[strings.TrimPrefix(k, testPrefix+"/")] = v
	}
	return out
}

// On GCS and S3 the files are objects with the same names, written by the same rule, and a
// replay after a crash replaces them instead of doubling rows, as on FS.
func TestParquetObjectStoreReplay(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			for _, tc := range []struct {
				name       string
				checkpoint uint32
				buf1, buf2 int
			}{
				{"resume inside a file", 10, 10, 7},
				{"resume at the start, bigger windows", 0, 6, 40},
			} {
				t.Run(tc.name, func(t *testing.T) {
					st := os.start(t)
					a := newTestParquetAt(t, st.where, map[string]any{"buffer_size": tc.buf1})
					want := consumeRange(t, a, 1, 30, 3)
					// crash: a is dropped without Close; its buffered ledgers are lost.
					b := newTestParquetAt(t, st.where, map[string]any{"buffer_size": tc.buf2})
					consumeRange(t, b, tc.checkpoint+1, 30, 3)
					if err := b.Close(context.Background()); err != nil {
						t.Fatal(err)
					}
					got, files := readParquetObjects(t, st.objects(t))
					sameRecords(t, got, want)
					checkDisjoint(t, files)
					for _, f := range files {
						if !strings.HasPrefix(f, "all_types/all_types_") {
							t.Errorf("object %s is not under <prefix>/<kind>/", f)
						}
					}
				})
			}
		})
	}
}

// A crash in the middle of a cut leaves an old object next to the new one that covers its
// ledgers; Start repairs the overlap through the store.
func TestParquetObjectStoreRepair(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			st := os.start(t)
			a := newTestParquetAt(t, st.where, map[string]any{"buffer_size": 10})
			want := consumeRange(t, a, 1, 12, 3)
			if err := a.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			saved := st.objects(t)
			if len(saved) != 3 {
				t.Fatalf("%d objects after the first run, want 3", len(saved))
			}
			b := newTestParquetAt(t, st.where, map[string]any{"buffer_size": 1000})
			consumeRange(t, b, 1, 12, 3)
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, files := readParquetObjects(t, st.objects(t))
			if !reflect.DeepEqual(files, []string{"all_types/all_types_0000000001-0000000012.parquet"}) {
				t.Fatalf("objects after the rewrite: %v", files)
			}
			for k, v := range saved {
				st.put(t, k, v)
			}
			c := newTestParquetAt(t, st.where, nil)
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, files := readParquetObjects(t, st.objects(t))
			sameRecords(t, got, want)
			checkDisjoint(t, files)
		})
	}
}

// A bucket that does not exist fails in Start, with an error that names the step.
func TestParquetObjectStoreMissingBucket(t *testing.T) {
	for _, os := range objectStores {
		t.Run(os.name, func(t *testing.T) {
			st := os.start(t)
			where := map[string]any{}
			for k, v := range st.where {
				where[k] = v
			}
			where["bucket_name"] = "nope"
			p, err := component.Construct(NewParquet, where, component.Env{})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), "opening the "+st.name+" bucket") {
				t.Errorf("Start on a missing bucket: %v", err)
			}
			_ = p.Close(context.Background())
		})
	}
}
