package source

import (
	"context"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
	"github.com/withobsrvr/cdpd/test/fixture/s3emu"
)

// The object stores run in-process on 127.0.0.1 with the fixture datastore uploaded under a
// path prefix, and the SDK's own GCS / S3 datastores read them.

func TestGCSBucket(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 3, LedgersPerFile: 2})
	gcsemu.Serve(t, ds, "ledgers", "pubnet")

	for _, typeName := range []string{"GCSBufferedStorageSourceAdapter", "BufferedStorageSourceAdapter"} {
		env, _, decodes := testEnv(t)
		s := newSource(t, typeName, map[string]any{"bucket_name": "ledgers/pubnet", "network": "pubnet",
			"start_ledger": 58752000, "end_ledger": 58752003}, env)
		got := runBounded(t, s, 0)
		checkLedgers(t, ds, got, seqRange(58752000, 58752003))
		if decodes.Load() != 0 {
			t.Fatal("the source decoded ledgers")
		}
	}
	// The real ledger in its own file, alone.
	env, _, _ := testEnv(t)
	s := newSource(t, "GCSBufferedStorageSourceAdapter", map[string]any{"bucket_name": "ledgers/pubnet",
		"network": "pubnet", "start_ledger": 53312000, "end_ledger": 53312001}, env)
	checkLedgers(t, ds, runBounded(t, s, 0), []uint32{53312000, 53312001})

	// A bucket that does not exist fails in Start.
	env, _, _ = testEnv(t)
	s = newSource(t, "GCSBufferedStorageSourceAdapter", map[string]any{"bucket_name": "nope",
		"network": "pubnet", "start_ledger": 2}, env)
	if err := s.(component.Starter).Start(context.Background()); err == nil {
		t.Fatal("Start on a missing bucket succeeded")
	}
	_ = s.Close()
}

func TestS3Bucket(t *testing.T) {
	ds := buildFixture(t, fixture.Options{Count: 4})
	objs, err := ds.Objects()
	if err != nil {
		t.Fatal(err)
	}
	srv := s3emu.Start(t, "ledgers")
	for key, b := range objs {
		srv.Put(t, "ledgers", "pubnet/"+key, b)
	}

	cases := []struct {
		typeName string
		cfg      map[string]any
	}{
		{"S3BufferedStorageSourceAdapter", map[string]any{"bucket_name": "ledgers/pubnet", "region": "us-east-1",
			"endpoint": srv.URL, "network": "pubnet", "start_ledger": 58752000, "end_ledger": 58752003}},
		{"BufferedStorageSourceAdapter", map[string]any{"storage_type": "S3", "bucket_name": "ledgers/pubnet",
			"endpoint": srv.URL, "network": "pubnet", "start_ledger": 58752000, "end_ledger": 58752003}},
		// upstream's path_prefix, and a url_template locating the same datastore.
		{"S3BufferedStorageSourceAdapter", map[string]any{"bucket_name": "ledgers", "path_prefix": "pubnet", "region": "us-east-1",
			"endpoint": srv.URL, "network": "pubnet", "start_ledger": 58752000, "end_ledger": 58752003}},
		{"BufferedStorageSourceAdapter", map[string]any{"url_template": "s3://ledgers/pubnet/{0}.xdr.zst",
			"endpoint": srv.URL, "network": "pubnet", "start_ledger": 58752000, "end_ledger": 58752003}},
	}
	for _, c := range cases {
		env, _, _ := testEnv(t)
		got := runBounded(t, newSource(t, c.typeName, c.cfg, env), 0)
		checkLedgers(t, ds, got, seqRange(58752000, 58752003))
	}
}
