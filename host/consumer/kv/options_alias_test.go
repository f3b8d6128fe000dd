package kv

import (
	"strings"
	"testing"
)

// Upstream's example files write `address`, which upstream reads nowhere: here it is another
// spelling of redis_address; two different values are an error.
func TestAddressSpellings(t *testing.T) {
	c := ConnConfig{Addr: "127.0.0.1:6379"}
	c.setDefaults()
	o, err := c.options("SaveToRedis")
	if err != nil || o.Addr != "127.0.0.1:6379" {
		t.Fatalf("address: options %+v, err %v", o, err)
	}
	c = ConnConfig{Addr: "127.0.0.1:6379", Address: "127.0.0.1:6380"}
	c.setDefaults()
	if _, err := c.options("SaveToRedis"); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("two different addresses: %v", err)
	}
}
