package consumer

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// allTypes is a record with every supported field type, plain and nullable.
type allTypes struct {
	Network   string           `json:"network"`
	Ledger    uint32           `json:"ledger_sequence"`
	Index     int              `json:"index"`
	Small     int32            `json:"small"`
	Big       int64            `json:"big"`
	Huge      uint64           `json:"huge"`
	Ratio     float64          `json:"ratio"`
	OK        bool             `json:"ok"`
	ClosedAt  time.Time        `json:"closed_at"`
	Topics    []string         `json:"topics"`
	Data      json.RawMessage  `json:"data"`
	OptString *string          `json:"opt_string"`
	OptBool   *bool            `json:"opt_bool"`
	OptInt    *int             `json:"opt_int"`
	OptInt32  *int32           `json:"opt_int32"`
	OptInt64  *int64           `json:"opt_int64"`
	OptUint32 *uint32          `json:"opt_uint32"`
	OptUint64 *uint64          `json:"opt_uint64"`
	OptFloat  *float64         `json:"opt_float"`
	OptTime   *time.Time       `json:"opt_time"`
	OptJSON   *json.RawMessage `json:"opt_json"`
	Ignored   string           `json:"-"`
	//lint:ignore U1000 never read on purpose: SchemaOf must skip unexported fields
	unexported int
}

func (r allTypes) RecordKind() string { return "all_types" }
func (r allTypes) NaturalKey() string {
	return fmt.Sprintf("%s-%d-%d", r.Network, r.Ledger, r.Index)
}

func ptr[T any](v T) *T { return &v }

// makeRecords returns n records for ledger seq; odd indexes have every nullable field nil.
func makeRecords(seq uint32, n int) []component.Record {
	var out []component.Record
	for i := 0; i < n; i++ {
		r := allTypes{
			Network:  "testnet",
			Ledger:   seq,
			Index:    i,
			Small:    int32(-i),
			Big:      int64(seq)*1000 + int64(i),
			Huge:     uint64(1)<<63 + uint64(i),
			Ratio:    float64(i) / 3,
			OK:       i%3 == 0,
			ClosedAt: time.Date(2025, 7, 1, 0, 0, int(seq%60), i*1000, time.UTC),
			Topics:   []string{"transfer", fmt.Sprintf("t%d", i)},
			Data:     json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			Ignored:  "never stored",
		}
		if i%2 == 0 {
			r.OptString = ptr(fmt.Sprintf("s%d", i))
			r.OptBool = ptr(true)
			r.OptInt = ptr(-i)
			r.OptInt32 = ptr(int32(i))
			r.OptInt64 = ptr(int64(-i) * 1e12)
			r.OptUint32 = ptr(uint32(i))
			r.OptUint64 = ptr(uint64(i) << 40)
			r.OptFloat = ptr(1.5 * float64(i))
			r.OptTime = ptr(time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC))
			r.OptJSON = ptr(json.RawMessage(`["a",1]`))
		}
		switch i % 4 {
		case 1:
			r.Topics = nil
		case 3:
			r.Topics = []string{}
		}
		out = append(out, r)
	}
	return out
}
