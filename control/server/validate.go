package server

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

// Input limits; anything beyond them is rejected with codes.InvalidArgument.
const (
	MaxIDLen          = 256      // service and component ids
	MaxKeyLen         = 256      // metric and metadata keys, event type names
	MaxValueLen       = 4096     // metric and metadata values, names, descriptions, endpoints
	MaxMetricEntries  = 1000     // entries of one heartbeat's metrics and of the merged map
	MaxMetricBytes    = 64 << 10 // bytes of keys+values of one heartbeat's metrics and of the merged map
	MaxMetadata       = 256      // registration metadata entries
	MaxEventTypes     = 256      // input or output event types of a registration
	maxMetadataBytes  = 64 << 10
	maxRecvMsgSize    = 1 << 20 // largest request Serve accepts; every valid request fits
	maxHistoryKeys    = 4 * MaxMetricEntries
	statusUnknown     = flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN
	statusHealthy     = flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY
	componentTypeNone = flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func checkString(what, s string, max int) error {
	if len(s) > max {
		return invalid("%s is %d bytes long, the limit is %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	return nil
}

func checkServiceID(id string) error {
	if id == "" {
		return invalid("service_id is required")
	}
	return checkString("service_id", id, MaxIDLen)
}

// checkMap validates a string map against entry and byte limits and returns its byte size.
func checkMap(what string, m map[string]string, maxEntries, maxBytes int) (int, error) {
	if len(m) > maxEntries {
		return 0, invalid("%s has %d entries, the limit is %d", what, len(m), maxEntries)
	}
	total := 0
	for k, v := range m {
		// Fast path without formatting; the messages are built only for bad input.
		if k == "" {
			return 0, invalid("%s has an empty key", what)
		}
		if len(k) > MaxKeyLen || !utf8.ValidString(k) {
			return 0, checkString(fmt.Sprintf("%s key %.40q", what, k), k, MaxKeyLen)
		}
		if len(v) > MaxValueLen || !utf8.ValidString(v) {
			return 0, checkString(fmt.Sprintf("%s value of %.40q", what, k), v, MaxValueLen)
		}
		total += len(k) + len(v)
	}
	if total > maxBytes {
		return 0, invalid("%s is %d bytes, the limit is %d", what, total, maxBytes)
	}
	return total, nil
}

func checkStatus(st flowctlv1.HealthStatus) error {
	if _, ok := flowctlv1.HealthStatus_name[int32(st)]; !ok {
		return invalid("unknown health status %d", int32(st))
	}
	return nil
}

func checkType(what string, t flowctlv1.ComponentType) error {
	if _, ok := flowctlv1.ComponentType_name[int32(t)]; !ok {
		return invalid("%s: unknown component type %d", what, int32(t))
	}
	return nil
}

func checkRegister(req *flowctlv1.RegisterRequest) error {
	c := req.GetComponent()
	if c == nil {
		return invalid("component is required")
	}
	if err := checkString("component_id", req.GetComponentId(), MaxIDLen); err != nil {
		return err
	}
	if err := checkString("component.id", c.GetId(), MaxIDLen); err != nil {
		return err
	}
	for what, v := range map[string]string{
		"component.name": c.GetName(), "component.description": c.GetDescription(),
		"component.version": c.GetVersion(), "component.endpoint": c.GetEndpoint(),
	} {
		if err := checkString(what, v, MaxValueLen); err != nil {
			return err
		}
	}
	if err := checkType("component.type", c.GetType()); err != nil {
		return err
	}
	for what, list := range map[string][]string{
		"component.input_event_types": c.GetInputEventTypes(), "component.output_event_types": c.GetOutputEventTypes(),
	} {
		if len(list) > MaxEventTypes {
			return invalid("%s has %d entries, the limit is %d", what, len(list), MaxEventTypes)
		}
		for _, et := range list {
			if err := checkString(what+" entry", et, MaxKeyLen); err != nil {
				return err
			}
		}
	}
	_, err := checkMap("component.metadata", c.GetMetadata(), MaxMetadata, maxMetadataBytes)
	return err
}
