package readers

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stellar/go-stellar-sdk/support/datastore"
)

// A shared reader's lines (the SDK's warnings about its stream included) belong to no single
// pipeline, so the reader hides the secrets of its datastore's parameters itself.
func TestReaderLogHidesDatastoreSecrets(t *testing.T) {
	var out bytes.Buffer
	reg := New(Options{Logger: slog.New(slog.NewTextHandler(&out, nil))})
	defer reg.Close()
	const (
		user, pass, key = "reader-user", "reader-pass-1234", "reader-key-5678"
		endpoint        = "https://" + user + ":" + pass + "@s3.example.test/bucket?X-Amz-Credential=" + key
	)
	spec := Spec{Kind: "S3", DataStore: datastore.DataStoreConfig{Type: "S3", Params: map[string]string{
		"endpoint_url": endpoint, "destination_bucket_path": "bucket/ledgers"}}}
	log := reg.readerLogger(spec)
	log.Warn("cannot list objects", "err", "GET "+endpoint+": connection refused")
	SDKLogger(log).Errorf("stream of %s failed", endpoint)
	got := out.String()
	for _, secret := range []string{pass, key} {
		if strings.Contains(got, secret) {
			t.Errorf("a secret of the datastore (%q) is in the reader's log:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "stellar sdk: ") || !strings.Contains(got, "s3.example.test") {
		t.Errorf("the lines themselves are lost:\n%s", got)
	}
}
