package kv

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// go-redis's own lines (a dial error names the host, which may be a secret) go to the logger of
// the sink whose call made them, which the host redacts, and never to the process's default
// logger, which nobody redacts (issue 17 item 1).
func TestClientLogGoesToTheSinksLogger(t *testing.T) {
	var def, own bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	log := slog.New(slog.NewTextHandler(&own, &slog.HandlerOptions{Level: slog.LevelDebug}))

	clientLog{}.Printf(withClientLog(context.Background(), log), "redis: dial tcp: lookup %s: no such host", "h0st-secret.invalid")
	clientLog{}.Printf(context.Background(), "redis: dial tcp: lookup %s: no such host", "other-secret.invalid")
	if !strings.Contains(own.String(), "h0st-secret.invalid") {
		t.Errorf("the sink's logger did not get go-redis's line: %q", own.String())
	}
	if def.Len() != 0 {
		t.Errorf("the default logger got go-redis's lines: %q", def.String())
	}
	if strings.Contains(own.String(), "other-secret") {
		t.Errorf("a line of no sink reached a sink's logger: %q", own.String())
	}
}
