package source

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// timeBound is one end of a storage source's range given by time: relative to now
// (start_time_ago, end_time_ago) or absolute (start_time, end_time).
type timeBound struct {
	set      bool
	relative bool
	ago      time.Duration // relative: the bound is now - ago
	at       time.Time     // absolute
}

// when is the bound's time, given now.
func (b timeBound) when(now time.Time) time.Time {
	if b.relative {
		return now.Add(-b.ago)
	}
	return b.at
}

// timeRange is the time keys of a storage source, validated against its ledger keys.
type timeRange struct {
	start, end timeBound
	// endNow: end_time_ago is "now" (or 0): the range ends at the newest ledger the datastore
	// holds when it is resolved.
	endNow bool
	// spec is the keys as given, to recognise the same range on the next start (pin.go).
	spec string
}

// resolves reports whether Start has ledgers to find by time.
func (r timeRange) resolves() bool { return r.start.set || r.end.set || r.endNow }

// parseTimeRange validates the time keys with start_ledger and end_ledger (upstream CDP's
// combinations: ledgers, times, start_ledger + end time, and either start + continuous_mode).
func parseTimeRange(c commonConfig) (timeRange, error) {
	var r timeRange
	var err error
	var startNow bool
	if r.start, startNow, err = parseBound("start_time_ago", c.StartTimeAgo, "start_time", c.StartTime); err != nil {
		return r, err
	}
	if startNow {
		return r, errors.New("start_time_ago must be a duration before now (\"now\" or 0 would start at a ledger not closed yet: leave out the end to follow the tip)")
	}
	if r.end, r.endNow, err = parseBound("end_time_ago", c.EndTimeAgo, "end_time", c.EndTime); err != nil {
		return r, err
	}
	switch {
	case c.StartLedger != 0 && r.start.set:
		return r, errors.New("give start_ledger or start_time_ago/start_time, not both")
	case c.StartLedger == 0 && !r.start.set:
		return r, errors.New("start_ledger is required (or start_time_ago / start_time): a ledger >= 2")
	case c.StartLedger != 0:
		if err := validateRange(c.StartLedger, c.EndLedger); err != nil {
			return r, err
		}
	}
	if c.EndLedger != 0 && (r.end.set || r.endNow) {
		return r, errors.New("give end_ledger or end_time_ago/end_time, not both")
	}
	if c.ContinuousMode {
		if c.EndLedger != 0 || r.end.set {
			return r, errors.New("continuous_mode follows the tip without end: leave out end_ledger, end_time_ago and end_time")
		}
		r.endNow = false // upstream accepts end_time_ago "now" with continuous_mode: following
	}
	if r.start.set && r.end.set && r.start.relative == r.end.relative && r.start.when(time.Unix(0, 0)).After(r.end.when(time.Unix(0, 0))) {
		return r, errors.New("the start time is after the end time")
	}
	r.spec = fmt.Sprintf("start_ledger=%d end_ledger=%d start_time_ago=%q end_time_ago=%q start_time=%q end_time=%q continuous_mode=%v",
		c.StartLedger, c.EndLedger, strings.TrimSpace(c.StartTimeAgo), strings.TrimSpace(c.EndTimeAgo),
		strings.TrimSpace(c.StartTime), strings.TrimSpace(c.EndTime), c.ContinuousMode)
	return r, nil
}

// parseBound reads one bound given as a duration before now (agoKey) or a time (atKey).
// now reports a duration of 0 ("now").
func parseBound(agoKey, ago, atKey, at string) (b timeBound, now bool, err error) {
	ago, at = strings.TrimSpace(ago), strings.TrimSpace(at)
	switch {
	case ago != "" && at != "":
		return b, false, fmt.Errorf("give %s or %s, not both", agoKey, atKey)
	case ago != "":
		d, err := parseAgo(agoKey, ago)
		if err != nil {
			return b, false, err
		}
		if d == 0 {
			return b, true, nil
		}
		return timeBound{set: true, relative: true, ago: d}, false, nil
	case at != "":
		t, err := parseTime(atKey, at)
		if err != nil {
			return b, false, err
		}
		return timeBound{set: true, at: t}, false, nil
	}
	return b, false, nil
}

var agoRE = regexp.MustCompile(`^(\d+)\s*([A-Za-z]+)$`)

// agoUnits are the units of a duration before now, as upstream CDP files write them (a month
// is 30 days, a year 365).
var agoUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
	"mo": 30 * 24 * time.Hour, "month": 30 * 24 * time.Hour, "months": 30 * 24 * time.Hour,
	"y": 365 * 24 * time.Hour, "yr": 365 * 24 * time.Hour, "year": 365 * 24 * time.Hour, "years": 365 * 24 * time.Hour,
}

// parseAgo reads a duration before now: "now", seconds ("3600"), a count and a unit ("30d",
// "6mo", "1y", "2 weeks") or a Go duration ("1h30m").
func parseAgo(key, s string) (time.Duration, error) {
	if strings.EqualFold(s, "now") {
		return 0, nil
	}
	bad := fmt.Errorf("%s: %q is not a duration before now like \"1h\", \"30d\", \"6mo\", \"1y\" or \"now\"", key, s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > float64(200*365*24*3600) {
			return 0, bad
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if m := agoRE.FindStringSubmatch(s); m != nil {
		unit, ok := agoUnits[strings.ToLower(m[2])]
		n, err := strconv.ParseInt(m[1], 10, 64)
		if !ok || err != nil || n > int64(200*365*24*time.Hour/unit) {
			return 0, bad
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

// parseTime reads an RFC 3339 time ("2025-01-02T15:04:05Z") or a date ("2025-01-02", UTC
// midnight).
func parseTime(key, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time (2025-01-02T15:04:05Z) or a date (2025-01-02)", key, s)
}
