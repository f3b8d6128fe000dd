package control

import (
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// heartbeatCodec is gRPC's proto codec, except that it writes HeartbeatRequest
// itself. protobuf-go marshals a map<string, string> through reflection, with
// four allocations per entry (sizing and writing); a heartbeat carries a few
// dozen entries and a daemon sends hundreds of heartbeats a second. The bytes
// are the ones protobuf-go writes (field order, both key and value in every map
// entry); requests it would reject (invalid UTF-8) or that carry unknown fields
// go to the proto codec, which fails or writes them as before. It is used per
// call (grpc.ForceCodecV2), under the proto codec's name.
type heartbeatCodec struct{ proto encoding.CodecV2 }

func newHeartbeatCodec() heartbeatCodec {
	return heartbeatCodec{proto: encoding.GetCodecV2(protocodec.Name)}
}

func (heartbeatCodec) Name() string { return protocodec.Name }

func (c heartbeatCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

func (c heartbeatCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*flowctlv1.HeartbeatRequest)
	if !ok || len(req.ProtoReflect().GetUnknown()) != 0 {
		return c.proto.Marshal(v)
	}
	size, ok := heartbeatSize(req)
	if !ok {
		return c.proto.Marshal(v)
	}
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(appendHeartbeat(make([]byte, 0, size), req))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = appendHeartbeat((*buf)[:0], req)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Field numbers of flowctl.v1.HeartbeatRequest and of a map entry.
const (
	hbServiceID = 1
	hbStatus    = 2
	hbMetrics   = 3
	entryKey    = 1
	entryValue  = 2
)

// heartbeatSize is req's encoded size; ok is false when a string is not valid
// UTF-8 (protobuf-go refuses to marshal it).
func heartbeatSize(req *flowctlv1.HeartbeatRequest) (size int, ok bool) {
	if id := req.GetServiceId(); id != "" {
		if !utf8.ValidString(id) {
			return 0, false
		}
		size += protowire.SizeTag(hbServiceID) + protowire.SizeBytes(len(id))
	}
	if st := req.GetStatus(); st != 0 {
		size += protowire.SizeTag(hbStatus) + protowire.SizeVarint(uint64(st))
	}
	for k, v := range req.GetMetrics() {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, false
		}
		size += protowire.SizeTag(hbMetrics) + protowire.SizeBytes(entrySize(k, v))
	}
	return size, true
}

func entrySize(k, v string) int {
	return protowire.SizeTag(entryKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(entryValue) + protowire.SizeBytes(len(v))
}

func appendHeartbeat(b []byte, req *flowctlv1.HeartbeatRequest) []byte {
	if id := req.GetServiceId(); id != "" {
		b = protowire.AppendTag(b, hbServiceID, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	if st := req.GetStatus(); st != 0 {
		b = protowire.AppendTag(b, hbStatus, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(st))
	}
	for k, v := range req.GetMetrics() {
		b = protowire.AppendTag(b, hbMetrics, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = protowire.AppendTag(b, entryKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, entryValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}
