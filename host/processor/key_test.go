package processor

import "testing"

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Key("pubnet", 58752000), "pubnet:58752000"},
		{Key("pubnet", 58752000, "abc"), "pubnet:58752000:abc"},
		{Key("testnet", 7, "abc", "3", "x"), "testnet:7:abc:3:x"},
	} {
		if tc.got != tc.want {
			t.Errorf("Key = %q, want %q", tc.got, tc.want)
		}
	}
}

// A key is built in one allocation (sinks build one per row they write).
func TestKeyAllocatesOnce(t *testing.T) {
	parts := []string{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "12"}
	if n := testing.AllocsPerRun(100, func() { _ = Key("pubnet", 4294967295, parts...) }); n != 1 {
		t.Errorf("Key allocates %v times, want 1", n)
	}
}
