package control

import (
	"google.golang.org/grpc/encoding"

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

// Exchanging reports whether an exchange (registration or heartbeat) of the pipeline is in
// flight, for tests that need one running.
func (c *Client) Exchanging(serviceID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[serviceID]
	return e != nil && e.running
}

// HeartbeatCodec is the client's heartbeat codec, for the marshalling benchmark.
func HeartbeatCodec() encoding.CodecV2 { return newHeartbeatCodec() }
