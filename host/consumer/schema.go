package consumer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// ColumnType is the type of one column of a record schema.
type ColumnType uint8

// Column types, one per supported Go field type (component.Record documents them).
const (
	ColString     ColumnType = iota + 1 // string
	ColBool                             // bool
	ColInt32                            // int32
	ColInt64                            // int, int64
	ColUint32                           // uint32
	ColUint64                           // uint64
	ColFloat64                          // float64
	ColTime                             // time.Time
	ColStringList                       // []string
	ColJSON                             // json.RawMessage
)

func (t ColumnType) String() string {
	switch t {
	case ColString:
		return "string"
	case ColBool:
		return "bool"
	case ColInt32:
		return "int32"
	case ColInt64:
		return "int64"
	case ColUint32:
		return "uint32"
	case ColUint64:
		return "uint64"
	case ColFloat64:
		return "float64"
	case ColTime:
		return "time"
	case ColStringList:
		return "[]string"
	case ColJSON:
		return "json"
	}
	return fmt.Sprintf("ColumnType(%d)", t)
}

// Column is one column of a record schema: a field of the record struct.
type Column struct {
	Name     string     // the json tag name (or the Go field name without a tag)
	Field    string     // the Go field name
	Type     ColumnType // the value type
	Nullable bool       // pointer fields, []string and json.RawMessage (nil = NULL)

	index []int // reflect field index path
	ptr   bool  // the field is a pointer
}

// Schema is the table shape of one record type, shared by the Parquet and PostgreSQL sinks.
type Schema struct {
	Kind    string       // RecordKind of the type
	GoType  reflect.Type // the struct type (not a pointer)
	Columns []Column     // in field order
}

var schemaCache sync.Map // reflect.Type (struct) -> *Schema or error

// SchemaOf returns the schema of a record's type (a struct or a pointer to one), built by
// reflection once per type and cached. Unsupported field types are errors naming the field.
func SchemaOf(r component.Record) (*Schema, error) {
	t := reflect.TypeOf(r)
	if t == nil {
		return nil, fmt.Errorf("record schema: nil record")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v, ok := schemaCache.Load(t); ok {
		if err, bad := v.(error); bad {
			return nil, err
		}
		return v.(*Schema), nil
	}
	s, err := buildSchema(t, r.RecordKind())
	if err != nil {
		schemaCache.Store(t, err)
		return nil, err
	}
	v, _ := schemaCache.LoadOrStore(t, s)
	return v.(*Schema), nil
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
	strsType    = reflect.TypeFor[[]string]()
)

func buildSchema(t reflect.Type, kind string) (*Schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("record schema of %s (kind %q): a record must be a struct or a pointer to one", t, kind)
	}
	s := &Schema{Kind: kind, GoType: t}
	seen := map[string]string{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || (f.Anonymous && f.Type.Kind() == reflect.Struct) {
			continue // embedded structs contribute their promoted fields
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			n, _, _ := strings.Cut(tag, ",")
			if n == "-" && !strings.HasPrefix(tag, "-,") {
				continue
			}
			if n != "" {
				name = n
			}
		}
		c := Column{Name: name, Field: f.Name, index: f.Index}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			c.ptr, c.Nullable = true, true
			ft = ft.Elem()
		}
		switch {
		case ft == timeType:
			c.Type = ColTime
		case ft == rawJSONType:
			c.Type, c.Nullable = ColJSON, true
		case ft == strsType:
			c.Type, c.Nullable = ColStringList, true
		default:
			switch ft.Kind() {
			case reflect.String:
				c.Type = ColString
			case reflect.Bool:
				c.Type = ColBool
			case reflect.Int32:
				c.Type = ColInt32
			case reflect.Int, reflect.Int64:
				c.Type = ColInt64
			case reflect.Uint32:
				c.Type = ColUint32
			case reflect.Uint64:
				c.Type = ColUint64
			case reflect.Float64:
				c.Type = ColFloat64
			}
		}
		if c.Type == 0 {
			return nil, fmt.Errorf("record schema of %s (kind %q): field %s has unsupported type %s", t, kind, f.Name, f.Type)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("record schema of %s (kind %q): fields %s and %s both map to column %q", t, kind, prev, f.Name, name)
		}
		seen[name] = f.Name
		s.Columns = append(s.Columns, c)
	}
	if len(s.Columns) == 0 {
		return nil, fmt.Errorf("record schema of %s (kind %q): no exported fields", t, kind)
	}
	return s, nil
}

// Values appends the column values of r (which must be of the schema's type) to dst in column
// order, as the canonical Go types string, bool, int32, int64, uint32, uint64, float64,
// time.Time, []string and json.RawMessage; a NULL is a nil interface.
func (s *Schema) Values(r component.Record, dst []any) ([]any, error) {
	v := reflect.ValueOf(r)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return dst, fmt.Errorf("%s record: nil pointer", s.Kind)
		}
		v = v.Elem()
	}
	if v.Type() != s.GoType {
		return dst, fmt.Errorf("%s record: type %s, the schema is of %s (every record of one kind must have one Go type)", s.Kind, v.Type(), s.GoType)
	}
	for i := range s.Columns {
		c := &s.Columns[i]
		f := v.FieldByIndex(c.index)
		if c.ptr {
			if f.IsNil() {
				dst = append(dst, nil)
				continue
			}
			f = f.Elem()
		}
		var x any
		switch c.Type {
		case ColString:
			x = f.String()
		case ColBool:
			x = f.Bool()
		case ColInt32:
			x = int32(f.Int())
		case ColInt64:
			x = f.Int()
		case ColUint32:
			x = uint32(f.Uint())
		case ColUint64:
			x = f.Uint()
		case ColFloat64:
			x = f.Float()
		case ColTime:
			x = f.Interface() // a time.Time (the schema checked the type)
		case ColStringList:
			if f.IsNil() {
				x = nil
			} else {
				x = f.Interface().([]string)
			}
		case ColJSON:
			if f.IsNil() {
				x = nil
			} else {
				x = f.Interface().(json.RawMessage)
			}
		}
		dst = append(dst, x)
	}
	return dst, nil
}
