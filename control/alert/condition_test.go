package alert

import (
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form; empty when an error is expected
		wantErr string // substring of the error
	}{
		{in: "status != healthy", want: "status != healthy"},
		{in: "status == unhealthy", want: "status == unhealthy"},
		{in: "  STATUS==Degraded ", want: "status == degraded"},
		{in: "status != HEALTH_STATUS_HEALTHY", want: "status != healthy"},
		{in: "metric:pipeline.uptime_seconds > 60", want: "metric:pipeline.uptime_seconds > 60"},
		{in: "metric:processor.ContractEvent.events_found>=1.5", want: "metric:processor.ContractEvent.events_found >= 1.5"},
		{in: "metric:x < -3", want: "metric:x < -3"},
		{in: "metric:x <= 1e3", want: "metric:x <= 1000"},
		{in: "metric:x == 0", want: "metric:x == 0"},
		{in: "metric:x != 0", want: "metric:x != 0"},

		{in: "", wantErr: "empty condition"},
		{in: "   ", wantErr: "empty condition"},
		{in: "status healthy", wantErr: "has no comparison operator"},
		{in: "status = healthy", wantErr: `"=" is not an operator, did you mean "=="?`},
		{in: "status >", wantErr: `has no value right of ">"`},
		{in: "> 3", wantErr: `has nothing left of ">"`},
		{in: "status > healthy", wantErr: "a status can only be compared with == or !=, not >"},
		{in: "status != fine", wantErr: `unknown status "fine": want one of healthy, unhealthy, degraded`},
		{in: "metric: > 3", wantErr: `the metric name after "metric:" is empty`},
		{in: "metric:a b > 3", wantErr: `metric name "a b" contains a space`},
		{in: "metric:x > lots", wantErr: `threshold "lots" is not a number`},
		{in: "metric:x > NaN", wantErr: `threshold "NaN" is not a number`},
		{in: "metric:x > 3 4", wantErr: `threshold "3 4" is not a number`},
		{in: "uptime > 3", wantErr: `unknown subject "uptime": want "status" or "metric:<name>"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := ParseCondition(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseCondition(%q) = %v, want an error containing %q", tt.in, c, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCondition(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCondition(%q): %v", tt.in, err)
			}
			if got := c.String(); got != tt.want {
				t.Fatalf("ParseCondition(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := ParseCondition(c.String())
			if err != nil || again != c {
				t.Fatalf("round trip of %q: %v, %v", c.String(), again, err)
			}
		})
	}
}

func TestConditionHolds(t *testing.T) {
	const (
		healthy   = flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
		unhealthy = flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
	)
	metrics := map[string]string{"n": "5", "text": "abc"}
	tests := []struct {
		cond      string
		status    flowctlv1.HealthStatus
		want      bool
		wantValue string
	}{
		{"status != healthy", healthy, false, "healthy"},
		{"status != healthy", unhealthy, true, "unhealthy"},
		{"status == unhealthy", unhealthy, true, "unhealthy"},
		{"status == unhealthy", healthy, false, "healthy"},
		{"metric:n > 4", healthy, true, "5"},
		{"metric:n > 5", healthy, false, "5"},
		{"metric:n >= 5", healthy, true, "5"},
		{"metric:n < 5", healthy, false, "5"},
		{"metric:n <= 5", healthy, true, "5"},
		{"metric:n == 5", healthy, true, "5"},
		{"metric:n != 5", healthy, false, "5"},
		{"metric:missing < 1", healthy, false, ""},  // a missing metric never fires
		{"metric:text != 1", healthy, false, "abc"}, // nor does a non-number
	}
	for _, tt := range tests {
		c, err := ParseCondition(tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		got, value := c.Holds(tt.status, metrics)
		if got != tt.want || value != tt.wantValue {
			t.Errorf("%q with status %s: Holds = %v, %q; want %v, %q", tt.cond, contract.StatusName(tt.status), got, value, tt.want, tt.wantValue)
		}
	}
}
