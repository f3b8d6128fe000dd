package control

import (
	"log/slog"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// HeartbeatCache is one pipeline's heartbeat builder, for the benchmarks of
// package control_test.
type HeartbeatCache = hbCache

// Build builds a heartbeat as the client does.
func (hc *HeartbeatCache) Build(id string, p Pipeline) *flowctlv1.HeartbeatRequest {
	return hc.build(id, p, slog.New(slog.DiscardHandler), id)
}
