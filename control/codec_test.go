package control

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// The heartbeat codec writes what protobuf-go writes: the same bytes for a
// request of at most one metric (map order is free otherwise) and a message
// equal to the original once read back.
func TestHeartbeatCodecMatchesProto(t *testing.T) {
	big := map[string]string{}
	for i := range 300 {
		big[fmt.Sprintf("source.FSBufferedStorageSourceAdapter.stat_%d", i)] = strings.Repeat("x", i)
	}
	tests := []struct {
		name string
		req  *flowctlv1.HeartbeatRequest
	}{
		{"empty", &flowctlv1.HeartbeatRequest{}},
		{"id only", &flowctlv1.HeartbeatRequest{ServiceId: "cdp-contract-events"}},
		{"status only", &flowctlv1.HeartbeatRequest{Status: flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED}},
		{"negative status", &flowctlv1.HeartbeatRequest{ServiceId: "x", Status: flowctlv1.HealthStatus(-3)}},
		{"one metric", &flowctlv1.HeartbeatRequest{ServiceId: "cdp-a", Status: 1, Metrics: map[string]string{"pipeline.restarts": "0"}}},
		{"empty key and value", &flowctlv1.HeartbeatRequest{ServiceId: "cdp-a", Metrics: map[string]string{"": ""}}},
		{"long value", &flowctlv1.HeartbeatRequest{ServiceId: "cdp-a", Metrics: map[string]string{"health.last_error": strings.Repeat("é", 600)}}},
		{"many metrics (pooled buffer)", &flowctlv1.HeartbeatRequest{ServiceId: "cdp-a", Status: 4, Metrics: big}},
	}
	codec := newHeartbeatCodec()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			data, err := codec.Marshal(tc.req)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got := data.Materialize()
			data.Free()
			if len(got) != len(want) {
				t.Fatalf("%d bytes, protobuf-go writes %d", len(got), len(want))
			}
			if len(tc.req.GetMetrics()) <= 1 && string(got) != string(want) {
				t.Fatalf("bytes differ:\n got %x\nwant %x", got, want)
			}
			var back flowctlv1.HeartbeatRequest
			if err := proto.Unmarshal(got, &back); err != nil {
				t.Fatalf("reading back: %v", err)
			}
			if !proto.Equal(&back, tc.req) {
				t.Fatalf("read back %v, want %v", &back, tc.req)
			}
		})
	}
}

// Messages without generated marshalling go to the proto codec; unknown fields are kept.
func TestHeartbeatCodecOtherMessages(t *testing.T) {
	codec := newHeartbeatCodec()
	other := &flowctlv1.UnregisterRequest{ServiceId: "cdp-a"}
	data, err := codec.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := proto.Marshal(other); string(data.Materialize()) != string(want) {
		t.Errorf("UnregisterRequest: %x, want %x", data.Materialize(), want)
	}
	withUnknown := &flowctlv1.HeartbeatRequest{ServiceId: "cdp-a"}
	withUnknown.ProtoReflect().SetUnknown([]byte{0xf8, 0x01, 0x07}) // field 31, varint 7
	data, err = codec.Marshal(withUnknown)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := proto.Marshal(withUnknown); string(data.Materialize()) != string(want) {
		t.Errorf("unknown fields: %x, want %x", data.Materialize(), want)
	}
	var back flowctlv1.HeartbeatRequest
	if err := codec.Unmarshal(data, &back); err != nil || !proto.Equal(&back, withUnknown) {
		t.Errorf("Unmarshal: %v, %v", err, &back)
	}
}
