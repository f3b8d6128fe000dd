package sql

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/withobsrvr/cdpd/host/component"
)

// txState is a SQL writer's transaction in the making and what it reports: the pending batch
// of whole ledgers, the last ledger in it, the time of the last commit, and the durable ledger
// and counts. The writer's mu guards all but the atomics.
type txState struct {
	pending *batch
	last    uint32    // last ledger consumed
	commit  time.Time // time of the last commit
	open    bool      // ledgers pending

	durable atomic.Uint32
	records atomic.Int64
	batches atomic.Int64
}

// add puts a ledger's records in the pending batch (typ names the consumer in errors).
func (t *txState) add(typ string, seq uint32, recs []component.Record) error {
	for _, r := range recs {
		if err := t.pending.add(r); err != nil {
			return fmt.Errorf("%s: ledger %d: %w", typ, seq, err)
		}
	}
	t.open, t.last = true, seq
	return nil
}

// due says whether the pending batch is to be committed now: batchSize records pending, or the
// last commit every old.
func (t *txState) due(batchSize int, every time.Duration, now time.Time) bool {
	return t.pending.records >= batchSize || now.Sub(t.commit) >= every
}

// sealed is a batch taken for its commit, with the last ledger in it.
type sealed struct {
	*batch
	last uint32
}

// seal takes the pending batch for its commit at now and starts an empty one.
func (t *txState) seal(now time.Time) sealed {
	s := sealed{batch: t.pending, last: t.last}
	t.pending = t.pending.fresh()
	t.open = false
	t.commit = now
	return s
}

// committed records that s is in the database, with its cursor. It touches only the atomics:
// a background commit calls it while the next batch fills.
func (t *txState) committed(s sealed) {
	t.records.Add(int64(s.records))
	t.batches.Add(1)
	t.durable.Store(s.last)
}

// batch is the records a SQL writer has accepted since its last commit, grouped by table in
// order of first arrival, one row per natural key (a later record of the same key replaces
// the earlier one, but for the table's Keep columns: one statement must not write a row twice).
type batch struct {
	layout    *Layout
	tableName string             // the consumer's table_name key
	value     func(any) any      // converts a consumer.Schema value for the driver
	targets   map[string]*target // by record kind
	tables    map[string]*tableBatch
	order     []*tableBatch
	records   int // distinct rows pending
}

// tableBatch is the pending rows of one table.
type tableBatch struct {
	*target
	index map[string]int
	rows  [][]any // natural key, then the column values
	slab  []any   // where the next rows are cut from (one allocation for many rows)
}

// slabRows is how many rows a tableBatch allocates at once.
const slabRows = 256

// newRow is an empty row of capacity n (the table's columns) cut from the slab.
func (tb *tableBatch) newRow(n int) []any {
	if len(tb.slab) < n {
		tb.slab = make([]any, n*slabRows)
	}
	row := tb.slab[:0:n]
	tb.slab = tb.slab[n:]
	return row
}

func newBatch(layout *Layout, tableName string, value func(any) any) *batch {
	return &batch{layout: layout, tableName: tableName, value: value, targets: map[string]*target{},
		tables: map[string]*tableBatch{}}
}

// add puts one record in its table's batch.
func (b *batch) add(r component.Record) error {
	t, err := b.target(r)
	if err != nil {
		return err
	}
	if t.json {
		if r, err = wrap(r); err != nil {
			return err
		}
	}
	tb := b.tables[t.table]
	if tb == nil {
		tb = &tableBatch{target: t, index: map[string]int{}}
		b.tables[t.table] = tb
		b.order = append(b.order, tb)
	} else if tb.schema != t.schema {
		return fmt.Errorf("records of kinds %q and %q both go to table %s (give each kind its own table)", tb.schema.Kind, t.schema.Kind, t.table)
	}
	key := r.NaturalKey()
	row := append(tb.newRow(len(tb.cols)), key)
	if row, err = t.schema.Values(r, row); err != nil {
		return err
	}
	for i, v := range row {
		row[i] = b.value(v)
	}
	if i, dup := tb.index[key]; dup {
		for c := range tb.keep {
			row[c] = tb.rows[i][c]
		}
		tb.rows[i] = row
		return nil
	}
	tb.index[key] = len(tb.rows)
	tb.rows = append(tb.rows, row)
	b.records++
	return nil
}

// target resolves (once per kind) where a record goes.
func (b *batch) target(r component.Record) (*target, error) {
	kind := r.RecordKind()
	if t, ok := b.targets[kind]; ok {
		return t, nil
	}
	t, err := b.layout.resolve(r, b.tableName)
	if err != nil {
		return nil, err
	}
	if b.tableName != "" && b.layout.Others == OthersOwnTable && len(b.layout.Tables) == 0 {
		for k := range b.targets {
			return nil, fmt.Errorf("table_name %q is set but records of kinds %q and %q arrived (leave table_name unset to get one table per kind)", b.tableName, k, kind)
		}
	}
	b.targets[kind] = t
	return t, nil
}

// fresh is an empty batch of b's layout (the kinds b resolved stay resolved).
func (b *batch) fresh() *batch {
	return &batch{layout: b.layout, tableName: b.tableName, value: b.value, targets: b.targets,
		tables: map[string]*tableBatch{}}
}
