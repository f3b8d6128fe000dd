package alert

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Op is a comparison operator of a condition.
type Op string

// The comparison operators. Status conditions accept only OpEq and OpNe.
const (
	OpEq Op = "=="
	OpNe Op = "!="
	OpGt Op = ">"
	OpGe Op = ">="
	OpLt Op = "<"
	OpLe Op = "<="
)

// operators in the order the parser tries them at one position: two-character operators
// first, so ">=" is not read as ">" followed by "=".
var operators = []Op{OpGe, OpLe, OpEq, OpNe, OpGt, OpLt}

// statusNames maps the lower-case names a condition may use to health statuses.
var statusNames = map[string]flowctlv1.HealthStatus{
	contract.StateUnknown:   flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN,
	contract.StateStarting:  flowctlv1.HealthStatus_HEALTH_STATUS_STARTING,
	contract.StateHealthy:   flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY,
	contract.StateDegraded:  flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED,
	contract.StateUnhealthy: flowctlv1.HealthStatus_HEALTH_STATUS_UNHEALTHY,
	contract.StateStopping:  flowctlv1.HealthStatus_HEALTH_STATUS_STOPPING,
}

const statusList = "healthy, unhealthy, degraded, starting, stopping, unknown"

// conditionHelp is appended to errors about the shape of a condition.
const conditionHelp = `want "status != healthy", "status == unhealthy" or "metric:<name> > <value>" (operators == != > >= < <=)`

// Condition is a parsed alert condition: either a comparison of a service's health status
// ("status != healthy") or of one of its heartbeat metrics with a number
// ("metric:processor.ContractEvent.events_found < 1").
type Condition struct {
	// Metric is the metric name of a metric condition; empty for a status condition.
	Metric string
	Op     Op
	// Status is the compared status of a status condition.
	Status flowctlv1.HealthStatus
	// Threshold is the compared value of a metric condition.
	Threshold float64
}

// ParseCondition parses a condition. Accepted forms:
//
//	status == <status>      status != <status>     (healthy, unhealthy, degraded, starting, stopping, unknown)
//	metric:<name> <op> <number>                    (op one of == != > >= < <=)
//
// Spaces around the operator are optional; status names are case-insensitive and may carry
// the HEALTH_STATUS_ prefix.
func ParseCondition(s string) (Condition, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Condition{}, errors.New("empty condition: " + conditionHelp)
	}
	pos, op := findOperator(text)
	if op == "" {
		if strings.Contains(text, "=") {
			return Condition{}, fmt.Errorf("condition %q: %q is not an operator, did you mean %q? %s", s, "=", "==", conditionHelp)
		}
		return Condition{}, fmt.Errorf("condition %q has no comparison operator: %s", s, conditionHelp)
	}
	subject := strings.TrimSpace(text[:pos])
	value := strings.TrimSpace(text[pos+len(op):])
	if subject == "" {
		return Condition{}, fmt.Errorf("condition %q has nothing left of %q: %s", s, op, conditionHelp)
	}
	if value == "" {
		return Condition{}, fmt.Errorf("condition %q has no value right of %q: %s", s, op, conditionHelp)
	}
	switch {
	case strings.EqualFold(subject, "status"):
		if op != OpEq && op != OpNe {
			return Condition{}, fmt.Errorf("condition %q: a status can only be compared with == or !=, not %s", s, op)
		}
		name := strings.ToLower(strings.TrimPrefix(strings.ToUpper(value), "HEALTH_STATUS_"))
		st, ok := statusNames[name]
		if !ok {
			return Condition{}, fmt.Errorf("condition %q: unknown status %q: want one of %s", s, value, statusList)
		}
		return Condition{Op: op, Status: st}, nil
	case strings.HasPrefix(strings.ToLower(subject), "metric:"):
		name := strings.TrimSpace(subject[len("metric:"):])
		if name == "" {
			return Condition{}, fmt.Errorf("condition %q: the metric name after %q is empty", s, "metric:")
		}
		if strings.ContainsAny(name, " \t") {
			return Condition{}, fmt.Errorf("condition %q: metric name %q contains a space", s, name)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Condition{}, fmt.Errorf("condition %q: threshold %q is not a number", s, value)
		}
		return Condition{Metric: name, Op: op, Threshold: v}, nil
	default:
		return Condition{}, fmt.Errorf("condition %q: unknown subject %q: want \"status\" or \"metric:<name>\"", s, subject)
	}
}

// findOperator returns the position and the operator of the first comparison operator in s.
func findOperator(s string) (int, Op) {
	for i := 0; i < len(s); i++ {
		for _, op := range operators {
			if strings.HasPrefix(s[i:], string(op)) {
				return i, op
			}
		}
	}
	return -1, ""
}

// String is the canonical text of the condition; ParseCondition(c.String()) gives c back.
func (c Condition) String() string {
	if c.Metric == "" {
		return fmt.Sprintf("status %s %s", c.Op, contract.StatusName(c.Status))
	}
	return fmt.Sprintf("metric:%s %s %s", c.Metric, c.Op, strconv.FormatFloat(c.Threshold, 'f', -1, 64))
}

// Holds reports whether the condition holds for a service with the given status and metrics,
// and the observed value it compared (the status name, or the metric's text). A metric
// condition does not hold while the metric is missing or not a number.
func (c Condition) Holds(status flowctlv1.HealthStatus, metrics map[string]string) (bool, string) {
	if c.Metric == "" {
		eq := status == c.Status
		if c.Op == OpNe {
			return !eq, contract.StatusName(status)
		}
		return eq, contract.StatusName(status)
	}
	raw, ok := metrics[c.Metric]
	if !ok {
		return false, ""
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) {
		return false, raw
	}
	switch c.Op {
	case OpEq:
		return v == c.Threshold, raw
	case OpNe:
		return v != c.Threshold, raw
	case OpGt:
		return v > c.Threshold, raw
	case OpGe:
		return v >= c.Threshold, raw
	case OpLt:
		return v < c.Threshold, raw
	case OpLe:
		return v <= c.Threshold, raw
	}
	return false, raw
}
