package control_test

import (
	"testing"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/withobsrvr/cdpd/control"
)

// BenchmarkHeartbeatMarshal marshals one realistic heartbeat (an idle pipeline's 45 metrics
// and details, as hbCache builds it) the ways gRPC could: the client's codec, gRPC's proto
// codec (protobuf-go), and, where the generated code exists, vtprotobuf's MarshalVT. ns/op is
// CPU per heartbeat (one goroutine, no I/O).
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
	b.Run("codec", func(b *testing.B) {
		c := control.HeartbeatCodec()
		run(b, func() (mem.BufferSlice, error) { return c.Marshal(req) })
	})
	b.Run("protobuf-go", func(b *testing.B) {
		c := encoding.GetCodecV2(protocodec.Name)
		run(b, func() (mem.BufferSlice, error) { return c.Marshal(req) })
	})
	vt, ok := any(req).(interface {
		SizeVT() int
		MarshalToSizedBufferVT([]byte) (int, error)
	})
	b.Run("vtproto", func(b *testing.B) {
		if !ok {
			b.Skip("no vtprotobuf code generated for HeartbeatRequest")
		}
		pool := mem.DefaultBufferPool()
		run(b, func() (mem.BufferSlice, error) {
			size := vt.SizeVT()
			buf := pool.Get(size)
			if _, err := vt.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
				return nil, err
			}
			return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
		})
	})
}
