package sql

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
)

// Layout is the shape a SQL consumer writes: the table each record kind goes to and the names
// of its columns there. The writers (PostgreSQL, DuckDB) are one each; a typed consumer of
// upstream CDP (SaveContractEventsToPostgreSQL, SaveAccountDataToDuckDB, ...) is a writer with
// upstream's type name and a Layout that names upstream's tables and columns.
//
// Every table has natural_key text PRIMARY KEY as its first column (the record's NaturalKey,
// the key of the upsert), then the record's columns (consumer.Schema) in field order, renamed
// where the Table says so. A table holds the records of one Go type.
type Layout struct {
	Tables map[string]Table // by record kind
	// Others is what happens to records of a kind without an entry in Tables.
	Others Others
	// JSONTable is the table of OthersJSON: natural_key, kind text, data jsonb (the record's
	// JSON); the natural key is prefixed with the kind.
	JSONTable string
}

// Table is where one record kind goes.
type Table struct {
	Name    string            // may be schema-qualified ("stellar.accounts"); the schema is created
	Columns map[string]string // record column -> table column, for the columns named otherwise
	// Keep are table columns an upsert never overwrites: a row keeps the value it was first
	// written with (in the table, and within a batch the first record of the key wins for
	// them); the other columns take the latest record's values. SaveAssetToPostgreSQL's
	// first_seen_ledger.
	Keep []string
}

// Others says what a Layout does with records of kinds it has no table for.
type Others uint8

const (
	// OthersOwnTable: a table named after the record kind (or table_name, for a single kind).
	OthersOwnTable Others = iota
	// OthersError: the record is an error naming the kinds the consumer takes.
	OthersError
	// OthersJSON: a row (natural_key, kind, data) of JSONTable.
	OthersJSON
)

// target is where the records of one kind go, resolved once per kind.
type target struct {
	table  string           // as configured, unquoted
	schema *consumer.Schema // of the stored record (jsonRecord for OthersJSON)
	cols   []string         // natural_key, then the schema's columns under their table names
	json   bool             // records are wrapped as jsonRecord
	keep   map[int]bool     // indexes in cols of the Table's Keep columns
}

// jsonRecord is a record stored as JSON in the table of OthersJSON.
type jsonRecord struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`

	key string
}

func (jsonRecord) RecordKind() string   { return "json" }
func (r jsonRecord) NaturalKey() string { return r.key }

// wrap turns a record into its jsonRecord.
func wrap(r component.Record) (component.Record, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding a %s record as JSON: %w", r.RecordKind(), err)
	}
	return jsonRecord{Kind: r.RecordKind(), Data: b, key: r.RecordKind() + ":" + r.NaturalKey()}, nil
}

var jsonSchema = func() *consumer.Schema {
	s, err := consumer.SchemaOf(jsonRecord{})
	if err != nil {
		panic(err)
	}
	return s
}()

// resolve finds the target of a record's kind. tableName is the consumer's table_name key:
// with OthersOwnTable it names the table of every record (of one kind); in a Layout of one
// table it renames that table.
func (l *Layout) resolve(r component.Record, tableName string) (*target, error) {
	kind := r.RecordKind()
	t, mapped := l.Tables[kind]
	switch {
	case mapped:
		if tableName != "" && len(l.Tables) == 1 {
			t.Name = tableName
		}
	case l.Others == OthersJSON:
		return &target{table: l.JSONTable, schema: jsonSchema, cols: columnNames(jsonSchema, nil), json: true}, nil
	case l.Others == OthersError:
		return nil, fmt.Errorf("records of kind %q are not written by this consumer (it takes %s)", kind, strings.Join(l.kinds(), ", "))
	default:
		t = Table{Name: kind}
		if tableName != "" {
			t.Name = tableName
		}
	}
	s, err := consumer.SchemaOf(r)
	if err != nil {
		return nil, err
	}
	cols := columnNames(s, t.Columns)
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[c] {
			return nil, permanent(fmt.Errorf("record kind %s: two columns are named %q in table %s (a field named natural_key, or a rename onto an existing column)", kind, c, t.Name))
		}
		seen[c] = true
	}
	var keep map[int]bool
	for _, k := range t.Keep {
		i := slices.Index(cols, k)
		if i < 1 {
			return nil, permanent(fmt.Errorf("record kind %s: table %s keeps column %q, which it does not have", kind, t.Name, k))
		}
		if keep == nil {
			keep = map[int]bool{}
		}
		keep[i] = true
	}
	return &target{table: t.Name, schema: s, cols: cols, keep: keep}, nil
}

// columnNames is natural_key, then the schema's columns renamed by rename.
func columnNames(s *consumer.Schema, rename map[string]string) []string {
	cols := []string{"natural_key"}
	for _, c := range s.Columns {
		n := c.Name
		if to, ok := rename[c.Name]; ok {
			n = to
		}
		cols = append(cols, n)
	}
	return cols
}

func (l *Layout) kinds() []string {
	var ks []string
	for k := range l.Tables {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// genericLayout is SaveToPostgreSQL's: every kind in its own table.
var genericLayout = &Layout{Others: OthersOwnTable}
