package stream

import (
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// Upstream's example files write `endpoint`, which upstream reads nowhere: here it is another
// spelling of address.
func TestZeroMQEndpointSpelling(t *testing.T) {
	c, err := component.Construct(NewSaveToZeroMQ, map[string]any{"endpoint": "tcp://127.0.0.1:5557"}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*ZeroMQ).addr; got != "tcp://127.0.0.1:5557" {
		t.Errorf("address %q", got)
	}
	if _, err := component.Construct(NewSaveToZeroMQ, map[string]any{"endpoint": "tcp://127.0.0.1:1", "address": "tcp://127.0.0.1:2"}, component.Env{}); err == nil {
		t.Error("two different endpoints accepted")
	}
}
