package stream

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/withobsrvr/cdpd/host/component"
)

// encode is a record's JSON (what every stream consumer sends unless its wire says otherwise).
func encode(r component.Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding %s record %q as JSON: %w", r.RecordKind(), r.NaturalKey(), err)
	}
	return b, nil
}

// fields decodes a record's JSON object into its top-level fields (for filters and rules).
func fields(raw []byte) map[string]any {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // numbers keep their digits (amounts beyond 2^53)
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

// text is a field's value as text: strings as they are, numbers (with all their digits) and
// booleans in JSON form, ""
// for a missing or null field.
func text(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
