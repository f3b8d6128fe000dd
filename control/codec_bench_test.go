package control_test

import (
	"testing"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/withobsrvr/cdpd/control"
)

// BenchmarkHeartbeatMarshal marshals one realistic heartbeat (an idle pipeline's 45 metrics
// and details, as hbCache builds it) the two ways gRPC could: the client's codec (vtprotobuf's
// generated code into pooled buffers) and gRPC's proto codec (protobuf-go). ns/op is CPU per
// heartbeat (one goroutine, no I/O). BENCHMARKS.md has the figures, and those of the
// hand-written codec this replaced.
func BenchmarkHeartbeatMarshal(b *testing.B) {
	req := (&control.HeartbeatCache{}).Build("cdp-idle-000", realisticPipeline())
	run := func(b *testing.B, marshal func() (mem.BufferSlice, error)) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := marshal()
			if err != nil || data.Len() == 0 {
				b.Fatal(err)
			}
			data.Free()
		}
	}
	b.Run("client-codec", func(b *testing.B) {
		c := control.HeartbeatCodec()
		run(b, func() (mem.BufferSlice, error) { return c.Marshal(req) })
	})
	b.Run("protobuf-go", func(b *testing.B) {
		c := encoding.GetCodecV2(protocodec.Name)
		run(b, func() (mem.BufferSlice, error) { return c.Marshal(req) })
	})
}
