package bytesize

import (
	"flag"
	"testing"
)

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"256MiB": 256 << 20, "4 MiB": 4 << 20, "1048576": 1 << 20, "2MB": 2e6, "1GiB": 1 << 30} {
		var s Size
		if err := s.Set(in); err != nil || s != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "99999999EiB"} {
		var s Size
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %d", in, s)
		}
	}
	s := Size(256 << 20)
	if got := s.String(); got != "256 MiB" {
		t.Errorf("String() = %q", got)
	}
	var _ flag.Value = &s
}
