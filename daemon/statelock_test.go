package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second cdpd on the same state directory refuses to start and names the first (pid, host,
// start time); once the first has stopped it starts. A lock file left behind by a killed
// process (no lock held) does not stop a start.
func TestSecondDaemonOnOneStateDirRefused(t *testing.T) {
	state, conf := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(state, LockFile), []byte("pid 1 on host gone, started long ago\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stop := runDaemon(t, Config{ConfigDir: conf, StateDir: state})
	second := Config{ConfigDir: conf, StateDir: state, HTTPAddr: "127.0.0.1:0", HeartbeatInterval: time.Second,
		DrainTimeout: time.Second, StuckAfter: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := fmt.Sprintf("pid %d on host %s, started ", os.Getpid(), hostname())
	if err == nil || !strings.Contains(err.Error(), "in use by another cdpd") || !strings.Contains(err.Error(), want) {
		t.Fatalf("a second cdpd on the same state directory: %v; want a refusal naming %q", err, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, stop = runDaemon(t, Config{ConfigDir: conf, StateDir: state})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
