package source

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stellar/go-stellar-sdk/network"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// stellar-core is not installable here: these tests cover CaptiveCoreInboundAdapter's config
// path (upstream's files decode; the constructor checks and touches nothing), the start taken
// from the history archives, and the errors when the binary is missing or cannot run. No test
// streams ledgers from a real captive core.

func TestCaptiveCoreUpstreamConfigs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "stellar-core")
	for name, c := range map[string]struct {
		cfg        map[string]any
		passphrase string
		start      uint32
	}{
		"pipeline_config": {map[string]any{"network": "testnet",
			"history_archive_urls": []any{"https://history.stellar.org/prd/core-live/core_live_001"},
			"core_binary_path":     missing}, network.TestNetworkPassphrase, 0},
		"parquet-multi-consumer-pipeline": {map[string]any{"network": "mainnet",
			"history_archive_urls": []any{"https://history.stellar.org/prd/core-live/core_live_001", "https://history.stellar.org/prd/core-live/core_live_002"},
			"core_binary_path":     missing, "start_ledger": 50000000}, network.PublicNetworkPassphrase, 50000000},
		"cdpd keys": {map[string]any{"network_passphrase": "Private ; 2025", "history_archive_urls": "http://127.0.0.1:1/a",
			"core_binary_path": missing, "captive_core_toml_path": filepath.Join(t.TempDir(), "core.toml"),
			"storage_path": t.TempDir(), "start_ledger": "100", "end_ledger": "200"}, "Private ; 2025", 100},
	} {
		env, _, _ := testEnv(t)
		src, err := component.Construct(NewCaptiveCore, c.cfg, env)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s := src.(*captiveSource)
		if start, _ := s.Range(); s.passphrase != c.passphrase || start != c.start {
			t.Errorf("%s: passphrase %q start %d", name, s.passphrase, start)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("the constructor touched the filesystem: %v", err)
	}

	for name, c := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"no archives":        {map[string]any{"network": "testnet", "core_binary_path": missing}, "history_archive_urls is required"},
		"archive not a URL":  {map[string]any{"network": "testnet", "core_binary_path": missing, "history_archive_urls": []any{"core_live_001"}}, "history_archive_urls[0]"},
		"no binary":          {map[string]any{"network": "testnet", "history_archive_urls": []any{"https://h/a"}}, "core_binary_path is required"},
		"no network":         {map[string]any{"core_binary_path": missing, "history_archive_urls": []any{"https://h/a"}}, "network is required"},
		"custom net no toml": {map[string]any{"network_passphrase": "X", "core_binary_path": missing, "history_archive_urls": []any{"https://h/a"}}, "captive_core_toml_path"},
		"end without start":  {map[string]any{"network": "pubnet", "core_binary_path": missing, "history_archive_urls": []any{"https://h/a"}, "end_ledger": 9}, "needs a start_ledger"},
		"unknown key":        {map[string]any{"network": "pubnet", "core_binary_path": missing, "history_archive_urls": []any{"https://h/a"}, "core_path": "x"}, "core_path"},
	} {
		env, _, _ := testEnv(t)
		_, err := component.Construct(NewCaptiveCore, c.cfg, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

// A missing (or unusable) stellar-core binary fails Start, and Run, with an error naming the
// path and nothing else of the config.
func TestCaptiveCoreBinaryErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "stellar-core.txt")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	const archive = "https://archive.example.org/core?token=arch1vetoken"
	for path, want := range map[string]string{
		filepath.Join(dir, "bin", "stellar-core"): "does not exist",
		notExec: "not executable",
		dir:     "is a directory",
	} {
		env, _, _ := testEnv(t)
		s, err := component.Construct(NewCaptiveCore, map[string]any{"network": "testnet", "core_binary_path": path,
			"history_archive_urls": []any{archive}}, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []func() error{
			func() error { return s.(component.Starter).Start(context.Background()) },
			func() error { return s.Run(context.Background(), 0, func(*ledger.Ledger) error { return nil }) },
		} {
			err := call()
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("%s: %v, want an error naming the path and %q", path, err, want)
			}
			for _, v := range []string{"archive.example.org", "arch1vetoken", network.TestNetworkPassphrase} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("%s: the error shows a config value: %v", path, err)
				}
			}
		}
		t.Logf("%v", s.(component.Starter).Start(context.Background()))
	}
}

// fakeArchive serves a history archive's root state (.well-known/stellar-history.json) with
// the given current ledger.
func fakeArchive(t *testing.T, current *atomic.Uint32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/stellar-history.json" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"version": 1, "server": "fake", "currentLedger": current.Load(),
			"networkPassphrase": network.TestNetworkPassphrase, "currentBuckets": []any{}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Without start_ledger the source starts at the archives' latest checkpoint ledger (as
// upstream did), pinned in the state directory; Run with a binary that is not stellar-core
// fails cleanly.
func TestCaptiveCoreStartsAtTheArchiveCheckpoint(t *testing.T) {
	var current atomic.Uint32
	current.Store(1234567)
	archive := fakeArchive(t, &current)
	bin := filepath.Join(t.TempDir(), "stellar-core")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	start := func(stateDir string) (uint32, component.Source) {
		t.Helper()
		env, _, _ := testEnv(t)
		env.StateDir = stateDir
		s, err := component.Construct(NewCaptiveCore, map[string]any{"network": "testnet", "core_binary_path": bin,
			"history_archive_urls": []any{archive}}, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.(component.Starter).Start(context.Background()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		st, end := s.Range()
		if end != 0 {
			t.Fatalf("end %d", end)
		}
		return st, s
	}
	if got, _ := start(state); got != 1234567 {
		t.Fatalf("start %d, want the archive's 1234567", got)
	}
	current.Store(1234631)
	if got, _ := start(state); got != 1234567 {
		t.Fatalf("restart: start %d, want the pinned 1234567", got)
	}
	got, s := start("")
	if got != 1234631 {
		t.Fatalf("without a state directory: start %d, want the archive's new 1234631", got)
	}
	err := s.Run(context.Background(), 0, func(*ledger.Ledger) error { t.Error("a ledger from a fake core"); return nil })
	if err == nil || !strings.Contains(err.Error(), "CaptiveCoreInboundAdapter") {
		t.Fatalf("Run with a binary that is not stellar-core: %v", err)
	}
	t.Logf("Run: %v", err)
}
