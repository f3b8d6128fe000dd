package daemon

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/control/server"
)

// cdpd --embedded-control-plane --heartbeat-interval 40s: the embedded plane judges silence by
// the TTL of a 40 s interval (2 min), not the 30 s default under which every pipeline flapped
// (control/plane's TestSlowHeartbeatsStayHealthy runs the two minutes).
func TestEmbeddedPlaneTakesTheHeartbeatInterval(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: t.TempDir(), HeartbeatInterval: 40 * time.Second}
	var g run.Group
	cp, err := plane.Add(&g, embeddedPlane(cfg, lis, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got, want := cp.HeartbeatTTL(), server.HeartbeatTTLFor(40*time.Second); got != want || got < 2*cfg.HeartbeatInterval {
		t.Fatalf("embedded plane TTL %v with --heartbeat-interval %v, want %v", got, cfg.HeartbeatInterval, want)
	}
}
