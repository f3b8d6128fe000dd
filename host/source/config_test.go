package source

import (
	"strings"
	"testing"
	"time"

	"github.com/stellar/go-stellar-sdk/network"

	"github.com/withobsrvr/cdpd/host/component"
)

func TestConfig(t *testing.T) {
	type want struct {
		err        string // substring; "" = valid
		kind       string
		passphrase string
		retryWait  time.Duration
		retryLimit uint32
		params     map[string]string
	}
	fs := func(extra map[string]any) map[string]any {
		m := map[string]any{"path": "/data/ledgers", "network": "pubnet", "start_ledger": 58752000}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name     string
		typeName string
		cfg      map[string]any
		want     want
	}{
		{"fs defaults", "FSBufferedStorageSourceAdapter", fs(nil), want{kind: StorageFS,
			passphrase: network.PublicNetworkPassphrase, retryWait: time.Second, retryLimit: 5,
			params: map[string]string{"destination_path": "/data/ledgers"}}},
		{"fs base_path (upstream spelling), strings from env expansion", "FSBufferedStorageSourceAdapter",
			map[string]any{"base_path": "/d", "network": "testnet", "start_ledger": "100", "end_ledger": "200",
				"retry_wait": "2", "retry_limit": "0"},
			want{kind: StorageFS, passphrase: network.TestNetworkPassphrase, retryWait: 2 * time.Second,
				params: map[string]string{"destination_path": "/d"}}},
		{"retry_wait as a duration", "FSBufferedStorageSourceAdapter", fs(map[string]any{"retry_wait": "250ms"}),
			want{kind: StorageFS, passphrase: network.PublicNetworkPassphrase, retryWait: 250 * time.Millisecond, retryLimit: 5,
				params: map[string]string{"destination_path": "/data/ledgers"}}},
		{"mainnet and passphrase override", "GCSBufferedStorageSourceAdapter",
			map[string]any{"bucket_name": "bucket/prefix/", "network": "mainnet", "network_passphrase": "Custom ; 2024",
				"start_ledger": 2, "retry_wait": 7},
			want{kind: StorageGCS, passphrase: "Custom ; 2024", retryWait: 7 * time.Second, retryLimit: 5,
				params: map[string]string{"destination_bucket_path": "bucket/prefix"}}},
		{"generic adapter defaults to GCS", "BufferedStorageSourceAdapter",
			map[string]any{"bucket_name": "b", "network": "futurenet", "start_ledger": 2},
			want{kind: StorageGCS, passphrase: network.FutureNetworkPassphrase, retryWait: 5 * time.Second, retryLimit: 5,
				params: map[string]string{"destination_bucket_path": "b"}}},
		{"generic adapter, S3 with endpoint", "BufferedStorageSourceAdapter",
			map[string]any{"storage_type": "S3", "bucket_name": "b/p", "endpoint": "http://127.0.0.1:9000",
				"network": "pubnet", "start_ledger": 2, "force_path_style": true},
			want{kind: StorageS3, passphrase: network.PublicNetworkPassphrase, retryWait: 5 * time.Second, retryLimit: 5,
				params: map[string]string{"destination_bucket_path": "b/p", "region": "us-east-1",
					"endpoint_url": "http://127.0.0.1:9000"}}},
		{"generic adapter, fs", "BufferedStorageSourceAdapter",
			map[string]any{"storage_type": "fs", "path": "/x", "network": "pubnet", "start_ledger": 2},
			want{kind: StorageFS, passphrase: network.PublicNetworkPassphrase, retryWait: time.Second, retryLimit: 5,
				params: map[string]string{"destination_path": "/x"}}},
		{"s3 region", "S3BufferedStorageSourceAdapter",
			map[string]any{"bucket_name": "b", "region": "eu-west-1", "network": "pubnet", "start_ledger": 2},
			want{kind: StorageS3, passphrase: network.PublicNetworkPassphrase, retryWait: 5 * time.Second, retryLimit: 5,
				params: map[string]string{"destination_bucket_path": "b", "region": "eu-west-1"}}},

		{"unknown key", "FSBufferedStorageSourceAdapter", fs(map[string]any{"bucket": "x"}), want{err: "bucket"}},
		{"bucket_name on FS type", "FSBufferedStorageSourceAdapter", fs(map[string]any{"bucket_name": "x"}), want{err: "bucket_name"}},
		{"unknown network", "FSBufferedStorageSourceAdapter", fs(map[string]any{"network": "devnet"}), want{err: "unknown network"}},
		{"no network", "FSBufferedStorageSourceAdapter", map[string]any{"path": "/x", "start_ledger": 2}, want{err: "network is required"}},
		{"no start", "FSBufferedStorageSourceAdapter", map[string]any{"path": "/x", "network": "pubnet"}, want{err: "start_ledger"}},
		{"end before start", "FSBufferedStorageSourceAdapter", fs(map[string]any{"end_ledger": 5}), want{err: "end_ledger"}},
		{"no path", "FSBufferedStorageSourceAdapter", map[string]any{"network": "pubnet", "start_ledger": 2}, want{err: "path is required"}},
		{"bad retry_wait", "FSBufferedStorageSourceAdapter", fs(map[string]any{"retry_wait": "soon"}), want{err: "retry_wait"}},
		{"workers above buffer", "FSBufferedStorageSourceAdapter", fs(map[string]any{"num_workers": 5, "buffer_size": 2}), want{err: "num_workers"}},
		{"no bucket", "GCSBufferedStorageSourceAdapter", map[string]any{"network": "pubnet", "start_ledger": 2}, want{err: "bucket_name is required"}},
		{"s3 without region or endpoint", "S3BufferedStorageSourceAdapter",
			map[string]any{"bucket_name": "b", "network": "pubnet", "start_ledger": 2}, want{err: "region is required"}},
		{"bad storage_type", "BufferedStorageSourceAdapter",
			map[string]any{"storage_type": "azure", "bucket_name": "b", "network": "pubnet", "start_ledger": 2}, want{err: "storage_type"}},
		{"path with GCS storage", "BufferedStorageSourceAdapter",
			map[string]any{"bucket_name": "b", "path": "/x", "network": "pubnet", "start_ledger": 2}, want{err: "path is not used"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testEnv(t)
			src, err := sourceCtors[tc.typeName](tc.cfg, env)
			if tc.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := src.(*storageSource)
			if s.kind != tc.want.kind || s.passphrase != tc.want.passphrase || s.retryWait != tc.want.retryWait ||
				s.retryLimit != tc.want.retryLimit {
				t.Fatalf("got kind %s passphrase %q retry_wait %v retry_limit %d; want %+v",
					s.kind, s.passphrase, s.retryWait, s.retryLimit, tc.want)
			}
			if len(s.params) != len(tc.want.params) {
				t.Fatalf("params %v, want %v", s.params, tc.want.params)
			}
			for k, v := range tc.want.params {
				if s.params[k] != v {
					t.Fatalf("params %v, want %v", s.params, tc.want.params)
				}
			}
		})
	}
}

func TestRPCConfig(t *testing.T) {
	env, _, _ := testEnv(t)
	ok := map[string]any{"rpc_endpoint": "http://127.0.0.1:8000", "start_ledger": 100, "end_ledger": 110,
		"network": "testnet", "api_key": "k", "poll_interval": 2, "format": "base64"}
	s, err := component.Construct(NewRPC, ok, env)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.(*rpcSource); r.set.bufferSize != defaultRPCBufferSize || r.set.start != 100 || r.set.end != 110 ||
		r.set.method != rpcMethodLedgers || r.set.authHeader != "Api-Key k" {
		t.Fatalf("got %+v", r)
	}
	for name, c := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"no endpoint":   {map[string]any{"start_ledger": 2}, "rpc_url (or rpc_endpoint) is required"},
		"not a URL":     {map[string]any{"rpc_endpoint": "localhost:8000", "start_ledger": 2}, "http(s) URL"},
		"json format":   {map[string]any{"rpc_endpoint": "http://h", "start_ledger": 2, "format": "json"}, "format"},
		"bad network":   {map[string]any{"rpc_endpoint": "http://h", "start_ledger": 2, "network": "x"}, "unknown network"},
		"unknown key":   {map[string]any{"rpc_endpoint": "http://h", "start_ledger": 2, "rpc_uri": "http://h"}, "rpc_uri"},
		"bad range":     {map[string]any{"rpc_endpoint": "http://h", "start_ledger": 10, "end_ledger": 9}, "end_ledger"},
		"secret in url": {map[string]any{"rpc_endpoint": "ftp://user:s3cret@h", "start_ledger": 2}, "http(s) URL"},
	} {
		_, err := component.Construct(NewRPC, c.cfg, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows a config value: %v", name, err)
		}
	}
}
