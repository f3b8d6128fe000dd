package source

import (
	"strings"
	"testing"
	"time"
)

func TestParseAgo(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"now": 0, "NOW": 0, "0": 0, "3600": time.Hour, "90.5": 90*time.Second + 500*time.Millisecond,
		"1h": time.Hour, "30d": 30 * day, "60d": 60 * day, "2w": 14 * day, "6mo": 180 * day, "1y": 365 * day,
		"5m": 5 * time.Minute, "10 min": 10 * time.Minute, "3 days": 3 * day, "1h30m": 90 * time.Minute,
		"45s": 45 * time.Second, "2 Weeks": 14 * day,
	} {
		got, err := parseAgo("start_time_ago", in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1h", "-5", "3 fortnights", "1e12", "99999999999y", "1h-"} {
		if d, err := parseAgo("start_time_ago", in); err == nil {
			t.Errorf("%q accepted as %v", in, d)
		} else if !strings.Contains(err.Error(), "start_time_ago") {
			t.Errorf("%q: error %v does not name the key", in, err)
		}
	}
}

// The time keys with the ledger keys: upstream's combinations are accepted, contradictions
// are errors naming the keys (at construction, before any datastore is opened).
func TestTimeRangeKeys(t *testing.T) {
	ok := []map[string]any{
		{"start_ledger": 100, "end_ledger": 200},
		{"start_time_ago": "60d", "end_time_ago": "30d"},
		{"start_time_ago": "1h", "continuous_mode": true},
		{"start_ledger": 100, "continuous_mode": true},
		{"start_ledger": 100, "end_time_ago": "1d"},
		{"start_time": "2025-01-01T00:00:00Z", "end_time": "2025-01-02"},
		{"start_time_ago": "1h", "end_time_ago": "now", "continuous_mode": true},
		{"start_time_ago": 7200, "end_time_ago": 0},
		{"start_time_ago": "1h", "continuous_mode": "false"},
	}
	for _, cfg := range ok {
		cfg["path"], cfg["network"] = "/d", "pubnet"
		env, _, _ := testEnv(t)
		s, err := sourceCtors["FSBufferedStorageSourceAdapter"](cfg, env)
		if err != nil {
			t.Errorf("%v: %v", cfg, err)
			continue
		}
		if st := s.(*storageSource); st.times.resolves() != (cfg["start_ledger"] == nil || cfg["end_time_ago"] != nil) {
			t.Errorf("%v: resolves in Start = %v", cfg, st.times.resolves())
		}
	}
	for name, c := range map[string]struct {
		cfg  map[string]any
		want string
	}{
		"no start":                       {map[string]any{"end_time_ago": "1d"}, "start_ledger is required"},
		"ledger and time start":          {map[string]any{"start_ledger": 5, "start_time_ago": "1h"}, "not both"},
		"ago and time start":             {map[string]any{"start_time_ago": "1h", "start_time": "2025-01-01"}, "not both"},
		"ledger and time end":            {map[string]any{"start_ledger": 5, "end_ledger": 9, "end_time_ago": "1h"}, "not both"},
		"continuous with end_ledger":     {map[string]any{"start_ledger": 5, "end_ledger": 9, "continuous_mode": true}, "continuous_mode"},
		"continuous with end_time_ago":   {map[string]any{"start_time_ago": "2d", "end_time_ago": "1d", "continuous_mode": true}, "continuous_mode"},
		"start after end":                {map[string]any{"start_time_ago": "1d", "end_time_ago": "2d"}, "after the end"},
		"start after end (times)":        {map[string]any{"start_time": "2025-02-01", "end_time": "2025-01-01"}, "after the end"},
		"start now":                      {map[string]any{"start_time_ago": "now"}, "before now"},
		"bad duration":                   {map[string]any{"start_time_ago": "yesterday"}, "start_time_ago"},
		"bad time":                       {map[string]any{"start_time": "01/02/2025"}, "start_time"},
		"start_ledger 1 with time end":   {map[string]any{"start_ledger": 1, "end_time_ago": "1h"}, ">= 2"},
		"end_ledger before start_ledger": {map[string]any{"start_ledger": 10, "end_ledger": 9}, "end_ledger"},
	} {
		c.cfg["path"], c.cfg["network"] = "/d", "pubnet"
		env, _, _ := testEnv(t)
		_, err := sourceCtors["FSBufferedStorageSourceAdapter"](c.cfg, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}
