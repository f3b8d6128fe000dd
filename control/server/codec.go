package server

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// requestCodec is gRPC's proto codec, except that a request which does not decode (a string
// field that is not valid UTF-8, which protobuf-go refuses; malformed wire data) is answered
// InvalidArgument, as the package doc promises for bad input, instead of Internal: gRPC turns
// any error of a codec's Unmarshal into Internal ("failed to unmarshal the received message")
// before a handler or an interceptor could say otherwise. So Unmarshal records the error
// against the message, leaves the message empty and succeeds; the interceptors (unary and
// stream, installed with the codec by NewGRPCServer) take the record and answer
// InvalidArgument before the handler runs.
type requestCodec struct {
	proto encoding.CodecV2
	bad   sync.Map // message (pointer) -> its decode error, until an interceptor takes it
}

func newRequestCodec() *requestCodec {
	return &requestCodec{proto: encoding.GetCodecV2(protocodec.Name)}
}

func (*requestCodec) Name() string { return protocodec.Name }

func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.proto.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if m, ok := v.(proto.Message); ok {
		proto.Reset(m) // whatever runs with it sees no half-decoded request
	}
	c.bad.Store(v, err)
	return nil
}

// check answers InvalidArgument for a request that did not decode.
func (c *requestCodec) check(req any) error {
	if err, ok := c.bad.LoadAndDelete(req); ok {
		return status.Errorf(codes.InvalidArgument, "malformed request: %v", err)
	}
	return nil
}

func (c *requestCodec) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.check(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (c *requestCodec) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, checkedStream{ServerStream: ss, c: c})
}

// checkedStream checks every message a stream handler receives.
type checkedStream struct {
	grpc.ServerStream
	c *requestCodec
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.c.check(m)
}

// options are the server options that install the codec and its interceptors.
func (c *requestCodec) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(c),
		grpc.ChainUnaryInterceptor(c.unary),
		grpc.ChainStreamInterceptor(c.stream),
	}
}
