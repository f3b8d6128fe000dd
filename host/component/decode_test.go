package component

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeNumbersMustFit: weak typing converts strings, but a number that does not fit its
// field is an error instead of a silently wrapped or truncated value.
func TestDecodeNumbersMustFit(t *testing.T) {
	type cfg struct {
		Start  uint32        `mapstructure:"start"`
		Size   int32         `mapstructure:"size"`
		Limit  *uint32       `mapstructure:"limit"`
		Wait   time.Duration `mapstructure:"wait"`
		Factor float64       `mapstructure:"factor"`
	}
	for _, tc := range []struct {
		in      map[string]any
		wantErr string
		want    cfg
	}{
		{in: map[string]any{"start": 58752000, "size": -5, "factor": -1.5}, want: cfg{Start: 58752000, Size: -5, Factor: -1.5}},
		{in: map[string]any{"start": "58752000", "wait": "30s", "size": uint64(7)}, want: cfg{Start: 58752000, Wait: 30 * time.Second, Size: 7}},
		// A duration as a bare number is seconds (upstream files write retry_wait: 5).
		{in: map[string]any{"wait": 5}, want: cfg{Wait: 5 * time.Second}},
		{in: map[string]any{"wait": "2.5"}, want: cfg{Wait: 2500 * time.Millisecond}},
		{in: map[string]any{"wait": 0.5}, want: cfg{Wait: 500 * time.Millisecond}},
		// A time.Duration (a config built in Go) stays what it is.
		{in: map[string]any{"wait": 2 * time.Second}, want: cfg{Wait: 2 * time.Second}},
		{in: map[string]any{"start": 4294967295.0}, want: cfg{Start: 4294967295}},
		{in: map[string]any{"start": -58752000}, wantErr: "start"},
		{in: map[string]any{"start": 4294967296}, wantErr: "start"},
		{in: map[string]any{"start": uint64(1 << 40)}, wantErr: "start"},
		{in: map[string]any{"start": 1.5}, wantErr: "start"},
		{in: map[string]any{"start": -1.0}, wantErr: "start"},
		{in: map[string]any{"size": 1 << 31}, wantErr: "size"},
		{in: map[string]any{"size": uint64(1 << 63)}, wantErr: "size"},
		{in: map[string]any{"limit": -1}, wantErr: "limit"},
		{in: map[string]any{"start": "-1"}, wantErr: "start"},
	} {
		var got cfg
		err := Decode(tc.in, &got)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Decode(%v): error %v, want one naming %s (decoded %+v)", tc.in, err, tc.wantErr, got)
		case tc.wantErr == "" && err != nil:
			t.Errorf("Decode(%v): %v", tc.in, err)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("Decode(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
