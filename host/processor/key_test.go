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
