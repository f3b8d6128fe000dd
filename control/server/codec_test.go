package server

import (
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// rawCodec sends and receives the bytes it is given: requests no protobuf library would build.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// stringField is the wire encoding of string field num holding s (any bytes).
func stringField(num protowire.Number, s string) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// TestMalformedRequestsAreInvalidArgument (issue 17 item 6): a request whose string field is not
// valid UTF-8 was answered Internal (gRPC's answer to any decoding error), where the package doc
// promises InvalidArgument for bad input; so was malformed wire data. Raw bytes on the wire, to
// a unary method of each service and to the health service's stream.
func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	r := start(t, Options{})
	register(t, r, "svc", flowctlv1.ComponentType_COMPONENT_TYPE_SOURCE, nil)
	badUTF8 := "svc\xff\xfe"
	heartbeat := func(svcID string) []byte {
		// HeartbeatRequest: 1 service_id, 2 status (HEALTHY = 2).
		b := stringField(1, svcID)
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		return protowire.AppendVarint(b, 2)
	}
	// RegisterRequest: 1 component {2 name}, 2 component_id.
	register := append(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), stringField(2, "n\xc3")),
		stringField(2, "ok-id")...)
	for _, tc := range []struct {
		name, method string
		req          []byte
		want         codes.Code
	}{
		{"valid heartbeat", "/flowctl.v1.ControlPlaneService/Heartbeat", heartbeat("svc"), codes.OK},
		{"heartbeat id not UTF-8", "/flowctl.v1.ControlPlaneService/Heartbeat", heartbeat(badUTF8), codes.InvalidArgument},
		{"registration name not UTF-8", "/flowctl.v1.ControlPlaneService/RegisterComponent", register, codes.InvalidArgument},
		{"history id not UTF-8", "/cdpd.v1.HistoryService/GetHistory", stringField(1, badUTF8), codes.InvalidArgument},
		{"truncated field", "/flowctl.v1.ControlPlaneService/GetComponentStatus", heartbeat("svc")[:4], codes.InvalidArgument},
		{"health check service not UTF-8", "/grpc.health.v1.Health/Check", stringField(1, badUTF8), codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp []byte
			err := r.conn.Invoke(ctxT(t), tc.method, &tc.req, &resp, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != tc.want {
				t.Fatalf("%s: %v, want %s", tc.method, err, tc.want)
			}
		})
	}
	if s := getStatus(t, r, "svc"); s.GetStatus() != flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("the valid heartbeat did not arrive: %v", s)
	}
	if _, err := r.cp.GetComponentStatus(ctxT(t), &flowctlv1.ComponentStatusRequest{ServiceId: "ok-id"}); status.Code(err) != codes.NotFound {
		t.Errorf("the malformed registration registered something: %v", err)
	}

	t.Run("health watch stream", func(t *testing.T) {
		desc := &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}
		st, err := r.conn.NewStream(ctxT(t), desc, "/grpc.health.v1.Health/Watch", grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		req := stringField(1, badUTF8)
		if err := st.SendMsg(&req); err != nil {
			t.Fatal(err)
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var resp []byte
		if err := st.RecvMsg(&resp); status.Code(err) != codes.InvalidArgument || err == io.EOF {
			t.Fatalf("Watch: %v, want InvalidArgument", err)
		}
	})
}
