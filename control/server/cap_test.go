package server

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// TestRegistryCap: new ids beyond MaxServices are refused with ResourceExhausted; known ids
// re-register; unregistering makes room again.
func TestRegistryCap(t *testing.T) {
	r := start(t, Options{MaxServices: 3})
	ctx := context.Background()
	reg := func(id string) error {
		_, err := r.cp.RegisterComponent(ctx, &flowctlv1.RegisterRequest{ComponentId: id, Component: &flowctlv1.ComponentInfo{Name: id}})
		return err
	}
	for i := range 3 {
		if err := reg(fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg("s3"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 4th service: %v, want ResourceExhausted", err)
	}
	if err := reg("s1"); err != nil {
		t.Fatalf("re-registering a known id when full: %v", err)
	}
	if _, err := r.cp.UnregisterComponent(ctx, &flowctlv1.UnregisterRequest{ServiceId: "s0"}); err != nil {
		t.Fatal(err)
	}
	if err := reg("s3"); err != nil {
		t.Fatalf("registering after an unregistration: %v", err)
	}
	resp, err := r.cp.ListComponents(ctx, &flowctlv1.ListComponentsRequest{IncludeUnhealthy: true})
	if err != nil || len(resp.GetComponents()) != 3 {
		t.Fatalf("ListComponents: %d components, %v", len(resp.GetComponents()), err)
	}
}
