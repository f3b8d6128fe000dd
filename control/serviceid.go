package control

import (
	"strings"
	"unicode"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// ServiceID maps a pipeline name (and an optional cdpd instance name) to the
// stable flowctl service id: "cdp-<name>", or "<instance>-cdp-<name>" when an
// instance is given. Both parts are sanitised by sanitizeID: CamelCase is split
// into words, letters are lower-cased and each run of characters outside
// [a-z0-9] becomes one "-", trimmed at both ends. A name with nothing left
// after sanitising yields "cdp-pipeline".
//
// Distinct names may map to one id ("My_Pipe" and "my-pipe"); callers that
// host several pipelines must reject such collisions (Attach of an id that is
// already attached replaces the earlier pipeline).
func ServiceID(instance, pipelineName string) string {
	name := sanitizeID(pipelineName)
	if name == "" {
		name = "pipeline"
	}
	id := "cdp-" + name
	if inst := sanitizeID(instance); inst != "" {
		id = inst + "-" + id
	}
	return id
}

// sanitizeID lower-cases s, splitting CamelCase words with "-" ("HTTPServer2Go"
// -> "http-server2-go"), and replaces every run of other characters with "-".
func sanitizeID(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 4)
	dash := false // last written byte is '-'
	put := func(c rune) {
		if c == '-' {
			if b.Len() == 0 || dash {
				return
			}
			dash = true
		} else {
			dash = false
		}
		b.WriteRune(c)
	}
	for i, r := range rs {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			put(r)
		case r >= 'A' && r <= 'Z':
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') ||
					(prev >= 'A' && prev <= 'Z' && nextLower) {
					put('-')
				}
			}
			put(unicode.ToLower(r))
		default:
			put('-')
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// HealthStatusOf maps a pipeline's health to the wire HealthStatus: the
// StatusProvider state if h implements it and reports a known state
// (contract.ParseState), else IsHealthy -> HEALTHY / UNHEALTHY.
func HealthStatusOf(h HealthChecker) flowctlv1.HealthStatus {
	if sp, ok := h.(StatusProvider); ok {
		if st, ok := contract.ParseState(sp.HealthState()); ok {
			return st
		}
	}
	if h.IsHealthy() {
		return flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	}
	return flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY
}
