package source

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
)

// path_prefix and url_template locate the datastore; each resolves to the SDK datastore
// parameters shown.
func TestStorageLocationKeys(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "ds")
	cases := []struct {
		name     string
		typeName string
		cfg      map[string]any
		kind     string
		params   map[string]string
		manifest bool // requireManifest
	}{
		{"GCS path_prefix", "BufferedStorageSourceAdapter", map[string]any{"storage_type": "GCS",
			"bucket_name": "stellar-historical-data", "path_prefix": "ledgers/testnet"},
			StorageGCS, map[string]string{"destination_bucket_path": "stellar-historical-data/ledgers/testnet"}, false},
		{"GCS bucket with prefix and path_prefix", "GCSBufferedStorageSourceAdapter", map[string]any{
			"bucket_name": "/b/landing/", "path_prefix": "/mainnet/"},
			StorageGCS, map[string]string{"destination_bucket_path": "b/landing/mainnet"}, false},
		{"S3 path_prefix", "S3BufferedStorageSourceAdapter", map[string]any{"bucket_name": "b", "region": "eu-west-1",
			"path_prefix": "pubnet"},
			StorageS3, map[string]string{"destination_bucket_path": "b/pubnet", "region": "eu-west-1"}, false},
		{"FS path_prefix", "FSBufferedStorageSourceAdapter", map[string]any{"path": abs, "path_prefix": "pubnet/v1"},
			StorageFS, map[string]string{"destination_path": filepath.Join(abs, "pubnet", "v1")}, false},
		{"upstream's url_template (relative)", "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "file://path/to/ledgers/{0}.xdr.gz"},
			StorageFS, map[string]string{"destination_path": filepath.Join("path", "to", "ledgers")}, true},
		{"absolute file url_template", "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "file://" + filepath.ToSlash(abs) + "/{0}.xdr.gz", "storage_type": "FS"},
			StorageFS, map[string]string{"destination_path": abs}, true},
		{"file url_template without placeholder, with path_prefix", "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "file://" + filepath.ToSlash(abs), "path_prefix": "p"},
			StorageFS, map[string]string{"destination_path": filepath.Join(abs, "p")}, true},
		{"gs url_template", "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "gs://bucket/landing/ledgers/{partition}/{file}"},
			StorageGCS, map[string]string{"destination_bucket_path": "bucket/landing/ledgers"}, true},
		{"s3 url_template", "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "s3://bucket/pubnet/{0}.xdr.zst", "endpoint": "http://127.0.0.1:9000"},
			StorageS3, map[string]string{"destination_bucket_path": "bucket/pubnet", "region": "us-east-1",
				"endpoint_url": "http://127.0.0.1:9000"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg["network"], c.cfg["start_ledger"] = "pubnet", 2
			env, _, _ := testEnv(t)
			s := newSource(t, c.typeName, c.cfg, env).(*storageSource)
			if s.kind != c.kind || s.requireManifest != c.manifest || len(s.params) != len(c.params) {
				t.Fatalf("kind %s manifest %v params %v; want %s %v %v", s.kind, s.requireManifest, s.params, c.kind, c.manifest, c.params)
			}
			for k, v := range c.params {
				if s.params[k] != v {
					t.Fatalf("params %v, want %v", s.params, c.params)
				}
			}
		})
	}

	for name, c := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"path_prefix escapes":         {map[string]any{"bucket_name": "b", "path_prefix": "a/../../x"}, "path_prefix"},
		"template scheme":             {map[string]any{"url_template": "https://h/{0}.xdr.gz"}, "scheme"},
		"template without scheme":     {map[string]any{"url_template": "/data/{0}.xdr.gz"}, "file://"},
		"template without a root":     {map[string]any{"url_template": "file://{0}.xdr.gz"}, "no datastore"},
		"template and storage_type":   {map[string]any{"url_template": "file:///d/{0}", "storage_type": "S3"}, "storage_type"},
		"template and bucket":         {map[string]any{"url_template": "gs://b/{0}", "bucket_name": "b"}, "not both"},
		"template and path":           {map[string]any{"url_template": "file:///d/{0}", "path": "/d"}, "not both"},
		"S3 template without region?": {map[string]any{"url_template": "s3://b/{0}"}, "region is required"},
	} {
		c.cfg["network"], c.cfg["start_ledger"] = "pubnet", 2
		env, _, _ := testEnv(t)
		_, err := sourceCtors["BufferedStorageSourceAdapter"](c.cfg, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

// A datastore found through url_template or path_prefix streams like any other; a template
// pointing at files that are not a galexie datastore fails in Start, saying why.
func TestStorageLocationsStream(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 3})
	parent := filepath.Dir(ds.Dir) // ds.Dir is <parent>/ds

	for name, cfg := range map[string]map[string]any{
		"url_template": {"url_template": "file://" + filepath.ToSlash(ds.Dir) + "/{0}.xdr.gz"},
		"path_prefix":  {"storage_type": "FS", "path": parent, "path_prefix": filepath.Base(ds.Dir)},
	} {
		t.Run(name, func(t *testing.T) {
			cfg["network"], cfg["start_ledger"], cfg["end_ledger"] = "pubnet", 58752000, 58752002
			env, _, _ := testEnv(t)
			checkLedgers(t, ds, runBounded(t, newSource(t, "BufferedStorageSourceAdapter", cfg, env), 0),
				seqRange(58752000, 58752002))
		})
	}

	t.Run("template over a non-galexie directory", func(t *testing.T) {
		env, _, _ := testEnv(t)
		s := newSource(t, "BufferedStorageSourceAdapter", map[string]any{
			"url_template": "file://" + filepath.ToSlash(t.TempDir()) + "/{0}.xdr.gz", "network": "pubnet",
			"start_ledger": 2}, env)
		err := s.(component.Starter).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("Start = %v, want an error about the missing galexie manifest", err)
		}
		_ = s.Close()
	})

	t.Run("GCS path_prefix and gs url_template", func(t *testing.T) {
		gcsemu.Serve(t, ds, "ledgers", "landing/pubnet")
		for _, cfg := range []map[string]any{
			{"bucket_name": "ledgers", "path_prefix": "landing/pubnet"},
			{"bucket_name": "ledgers/landing", "path_prefix": "pubnet"},
			{"url_template": "gs://ledgers/landing/pubnet/{0}.xdr.zst"},
		} {
			cfg["network"], cfg["start_ledger"], cfg["end_ledger"] = "pubnet", 58752000, 58752002
			env, _, _ := testEnv(t)
			checkLedgers(t, ds, runBounded(t, newSource(t, "BufferedStorageSourceAdapter", cfg, env), 0),
				seqRange(58752000, 58752002))
		}
		// A range given by time, resolved on the bucket.
		closes := closeTimesOf(t, ds)
		now := closes[58752002].Add(time.Hour)
		env, _, _ := testEnv(t)
		env.Now = func() time.Time { return now }
		s := newSource(t, "GCSBufferedStorageSourceAdapter", map[string]any{"bucket_name": "ledgers/landing/pubnet",
			"network": "pubnet", "start_time_ago": ago(now, closes[58752001]), "end_time_ago": "1h"}, env)
		checkLedgers(t, ds, runBounded(t, s, 0), seqRange(58752001, 58752002))
	})
}
