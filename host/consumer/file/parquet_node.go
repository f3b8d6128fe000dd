package file

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/withobsrvr/cdpd/host/consumer"
)

// orderedGroup is a parquet group node whose fields keep the record struct's field order
// (parquet.Group sorts its fields by name).
type orderedGroup []parquet.Field

type orderedField struct {
	parquet.Node
	name string
}

func (f *orderedField) Name() string { return f.name }

// Value is used only when parquet-go deconstructs Go values; the sink writes parquet.Rows.
func (f *orderedField) Value(base reflect.Value) reflect.Value {
	return parquet.Group{f.name: f.Node}.Fields()[0].Value(base)
}

func (g orderedGroup) asGroup() parquet.Group {
	m := parquet.Group{}
	for _, f := range g {
		m[f.Name()] = f
	}
	return m
}

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return g.asGroup().String() }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return g.asGroup().GoType() }

// parquetSchema is the Parquet schema of a record schema: one top-level column per field, in
// field order; nullable fields are optional columns; []string is a LIST of strings; time.Time
// is TIMESTAMP(MICROS, UTC); json.RawMessage is JSON; uint32/uint64 are unsigned INT logical
// types.
func parquetSchema(s *consumer.Schema) *parquet.Schema {
	g := make(orderedGroup, 0, len(s.Columns))
	for _, c := range s.Columns {
		var n parquet.Node
		switch c.Type {
		case consumer.ColString:
			n = parquet.String()
		case consumer.ColBool:
			n = parquet.Leaf(parquet.BooleanType)
		case consumer.ColInt32:
			n = parquet.Int(32)
		case consumer.ColInt64:
			n = parquet.Int(64)
		case consumer.ColUint32:
			n = parquet.Uint(32)
		case consumer.ColUint64:
			n = parquet.Uint(64)
		case consumer.ColFloat64:
			n = parquet.Leaf(parquet.DoubleType)
		case consumer.ColTime:
			n = parquet.Timestamp(parquet.Microsecond)
		case consumer.ColStringList:
			n = parquet.List(parquet.String())
		case consumer.ColJSON:
			n = parquet.JSON()
		}
		if c.Nullable {
			n = parquet.Optional(n)
		}
		g = append(g, &orderedField{Node: n, name: c.Name})
	}
	return parquet.NewSchema(s.Kind, g)
}

// appendParquetRow appends the Parquet row of one record's values (from Schema.Values) to
// row, and returns it with an estimate of its uncompressed size in bytes.
func appendParquetRow(row parquet.Row, s *consumer.Schema, vals []any) (parquet.Row, int) {
	size := 0
	for ci := range s.Columns {
		c := &s.Columns[ci]
		v := vals[ci]
		if c.Type == consumer.ColStringList {
			switch l, _ := v.([]string); {
			case v == nil:
				row = append(row, parquet.NullValue().Level(0, 0, ci))
			case len(l) == 0:
				row = append(row, parquet.NullValue().Level(0, 1, ci))
			default:
				for i, e := range l {
					rep := 0
					if i > 0 {
						rep = 1
					}
					row = append(row, parquet.ByteArrayValue([]byte(e)).Level(rep, 2, ci))
					size += len(e) + 4
				}
			}
			continue
		}
		def := 0
		if c.Nullable {
			if v == nil {
				row = append(row, parquet.NullValue().Level(0, 0, ci))
				size++
				continue
			}
			def = 1
		}
		var pv parquet.Value
		switch x := v.(type) {
		case string:
			pv = parquet.ByteArrayValue([]byte(x))
			size += len(x) + 4
		case json.RawMessage:
			pv = parquet.ByteArrayValue([]byte(x))
			size += len(x) + 4
		case bool:
			pv = parquet.BooleanValue(x)
			size++
		case int32:
			pv = parquet.Int32Value(x)
			size += 4
		case uint32:
			pv = parquet.Int32Value(int32(x))
			size += 4
		case int64:
			pv = parquet.Int64Value(x)
			size += 8
		case uint64:
			pv = parquet.Int64Value(int64(x))
			size += 8
		case float64:
			pv = parquet.DoubleValue(x)
			size += 8
		case time.Time:
			pv = parquet.Int64Value(x.UnixMicro())
			size += 8
		}
		row = append(row, pv.Level(0, def, ci))
	}
	return row, size
}
