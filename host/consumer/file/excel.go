package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

// ExcelConfig is the config of SaveToExcel and SaveLatestLedgerToExcel: upstream's file_path,
// and the bounds upstream did not have.
type ExcelConfig struct {
	// FilePath is the .xlsx workbook (required).
	FilePath string `mapstructure:"file_path"`
	// MaxRows is the most data rows a sheet keeps (default 10000, at most Excel's 1048575):
	// the newest; older rows are dropped (rows_dropped counts them).
	MaxRows int `mapstructure:"max_rows"`
	// BufferSize: the workbook is rewritten once this many rows are pending (default 1000).
	BufferSize int `mapstructure:"buffer_size"`
	// FlushInterval: the host rewrites the workbook this long after the first ledger accepted
	// since the last write (default 5s).
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// SetDefaults implements component.Defaulter.
func (c *ExcelConfig) SetDefaults() {
	*c = ExcelConfig{MaxRows: 10000, BufferSize: 1000, FlushInterval: DefaultFlushInterval}
}

// Excel writes rows to an .xlsx workbook: SaveToExcel (every record, one sheet per record
// kind, one column per field, in the record's field order) and SaveLatestLedgerToExcel (one
// row per ledger in upstream's "Ledgers" sheet and columns).
//
// Cells: numbers and booleans as such (integers beyond 2^53, which Excel cannot hold exactly,
// as text), times as RFC 3339 text in UTC, lists and JSON as JSON text, null as an empty cell;
// text longer than Excel's 32767 characters per cell is cut (cells_truncated counts it).
//
// Data safety: exactly-once in the workbook. An .xlsx cannot be appended to: the workbook is
// kept in memory and rewritten whole on every flush (when buffer_size rows are pending,
// flush_interval after the first pending ledger, and on Close), to a temporary file that is
// fsynced and renamed over file_path, with the last ledger it holds in a custom document
// property (cdpd_last_ledger). A kill -9 leaves the previous whole workbook (never a torn one)
// and loses only pending rows, of ledgers after DurableLedger, which the checkpoint has not
// passed; Start reads the workbook back, and a replayed ledger at or before its cursor is
// skipped, so no row is doubled. A sheet keeps the newest max_rows rows (memory and the file
// stay bounded; the rewrite costs O(rows) per flush). Edits made to the file while cdpd runs
// are overwritten by the next flush. Upstream re-read every row and saved the file on every
// message, in place, and doubled rows on a replay.
type Excel struct {
	typ string
	cfg ExcelConfig
	log *slog.Logger
	sinkState
	rows func(l *ledger.Ledger, recs []component.Record, add func(sheet string, header []string, row []any)) error

	mu       sync.Mutex
	started  bool
	book     *book
	pending  int    // rows not yet written
	lastSeen uint32 // the last ledger accepted

	writes  atomic.Int64
	written atomic.Int64
	skipped atomic.Int64
}

// NewSaveToExcel is SaveToExcel's constructor.
func NewSaveToExcel(c *ExcelConfig, env component.Env) (component.Consumer, error) {
	return newExcel("SaveToExcel", c, env, recordRows)
}

// NewSaveLatestLedgerToExcel is SaveLatestLedgerToExcel's constructor.
func NewSaveLatestLedgerToExcel(c *ExcelConfig, env component.Env) (component.Consumer, error) {
	return newExcel("SaveLatestLedgerToExcel", c, env, ledgerRows)
}

func newExcel(typ string, c *ExcelConfig, env component.Env, rows func(*ledger.Ledger, []component.Record, func(string, []string, []any)) error) (*Excel, error) {
	if c.FilePath == "" {
		return nil, fmt.Errorf("%s: file_path is required", typ)
	}
	if !strings.HasSuffix(strings.ToLower(c.FilePath), ".xlsx") {
		return nil, fmt.Errorf("%s: file_path must name an .xlsx file", typ)
	}
	if c.MaxRows <= 0 || c.MaxRows >= maxExcelRows || c.BufferSize <= 0 {
		return nil, fmt.Errorf("%s: max_rows must be between 1 and %d and buffer_size positive (got %d, %d)", typ, maxExcelRows-1, c.MaxRows, c.BufferSize)
	}
	if err := checkFlushInterval(c.FlushInterval); err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	e := &Excel{typ: typ, cfg: *c, log: env.Logger, sinkState: sinkState{m: consumer.NewMetrics(env.Metrics, env.Name)}, rows: rows}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Start reads the workbook back (its rows and its cursor), if it exists.
func (e *Excel) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := newBook(e.cfg.FilePath, e.cfg.MaxRows)
	if err := b.open(ctx); err != nil {
		return fmt.Errorf("%s: %w", e.typ, err)
	}
	e.book, e.started, e.lastSeen = b, true, b.last
	e.durable.Store(b.last)
	return nil
}

// Consume adds the ledger's rows; a ledger the workbook already holds is skipped.
func (e *Excel) Consume(ctx context.Context, l *ledger.Ledger, recs []component.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return fmt.Errorf("%s: Consume before Start", e.typ)
	}
	seq := l.Sequence()
	if seq <= e.lastSeen {
		if seq > e.book.last {
			return fmt.Errorf("%s: ledger %d arrived after ledger %d (ledgers must ascend)", e.typ, seq, e.lastSeen)
		}
		e.skipped.Add(1)
		return nil
	}
	n := 0
	err := e.rows(l, recs, func(name string, header []string, row []any) {
		e.book.add(e.book.sheet(name, header), row)
		n++
	})
	if err != nil {
		return fmt.Errorf("%s: ledger %d: %w", e.typ, seq, err)
	}
	e.lastSeen = seq
	e.pending += n
	if e.pending == 0 {
		e.durable.Store(seq)
		e.m.Ledgers.Inc()
		return nil
	}
	if e.pending >= e.cfg.BufferSize {
		return e.flushLocked(ctx)
	}
	return nil
}

func (e *Excel) flushLocked(ctx context.Context) error {
	if e.pending == 0 {
		return nil
	}
	err := e.book.write(ctx, e.lastSeen)
	e.wrote(err)
	if err != nil {
		return fmt.Errorf("%s: %w", e.typ, err)
	}
	e.writes.Add(1)
	e.written.Add(int64(e.pending))
	e.m.Records.Add(float64(e.pending))
	e.m.Ledgers.Inc()
	e.pending = 0
	e.durable.Store(e.lastSeen)
	return nil
}

// Flush rewrites the workbook if rows are pending.
func (e *Excel) Flush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return nil
	}
	return e.flushLocked(ctx)
}

// FlushInterval implements component.TimedFlusher (flush_interval).
func (e *Excel) FlushInterval() time.Duration { return e.cfg.FlushInterval }

// Close rewrites the workbook if rows are pending.
func (e *Excel) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return nil
	}
	e.started = false
	return e.flushLocked(ctx)
}

// Stats reports rows_written, workbook_writes, rows_dropped (the oldest rows of full sheets),
// cells_truncated, ledgers_skipped (replayed ledgers the workbook held) and last_ledger.
func (e *Excel) Stats() map[string]float64 {
	st := map[string]float64{
		"rows_written":    float64(e.written.Load()),
		"workbook_writes": float64(e.writes.Load()),
		"ledgers_skipped": float64(e.skipped.Load()),
		"last_ledger":     float64(e.durable.Load()),
	}
	e.mu.Lock()
	if e.book != nil {
		st["rows_dropped"] = float64(e.book.dropped.Load())
		st["cells_truncated"] = float64(e.book.truncated.Load())
	}
	e.mu.Unlock()
	return st
}

// sheetNames are upstream's sheet names of the record kinds it wrote.
var sheetNames = map[string]string{"app_payments": "Payments"}

// recordRows is SaveToExcel's shape: one row per record in the sheet of its kind.
func recordRows(_ *ledger.Ledger, recs []component.Record, add func(string, []string, []any)) error {
	for _, r := range recs {
		s, err := consumer.SchemaOf(r)
		if err != nil {
			return err
		}
		vals, err := s.Values(r, nil)
		if err != nil {
			return err
		}
		name := sheetNames[s.Kind]
		if name == "" {
			name = sheetName(s.Kind)
		}
		header := make([]string, len(s.Columns))
		for i, c := range s.Columns {
			header[i] = c.Name
			vals[i] = cellValue(vals[i])
		}
		add(name, header, vals)
	}
	return nil
}

// sheetName makes a record kind a valid sheet name (31 characters, none of []:*?/\).
func sheetName(kind string) string {
	name := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, kind)
	if r := []rune(name); len(r) > 31 {
		name = string(r[:31])
	}
	return name
}

// maxExactInt is the largest integer a spreadsheet number (a float64) holds exactly.
const maxExactInt = 1 << 53

// cellValue is the cell of one value from consumer.Schema.Values.
func cellValue(v any) any {
	switch x := v.(type) {
	case int64:
		if x > maxExactInt || x < -maxExactInt {
			return fmt.Sprint(x)
		}
	case uint64:
		if x > maxExactInt {
			return fmt.Sprint(x)
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []string:
		b, _ := json.Marshal(x)
		return string(b)
	case json.RawMessage:
		return string(x)
	}
	return v
}

// ledgerHeaders are upstream's columns of SaveLatestLedgerToExcel's "Ledgers" sheet.
var ledgerHeaders = []string{"Sequence", "Hash", "PreviousHash", "CloseTime", "TotalCoins", "FeePool",
	"BaseFee", "BaseReserve", "MaxTxSetSize", "TxCount", "OperationCount"}

// ledgerRows is SaveLatestLedgerToExcel's shape: one row per ledger from LatestLedger's
// summary record, plus the header fields the summary does not carry (total coins and fee pool
// in XLM, base reserve and max tx set size), read from the ledger's zero-copy view.
func ledgerRows(l *ledger.Ledger, recs []component.Record, add func(string, []string, []any)) error {
	var sum *raw.LedgerSummary
	for _, r := range recs {
		if s, ok := r.(raw.LedgerSummary); ok && s.Sequence == l.Sequence() {
			sum = &s
		}
	}
	if sum == nil {
		return errors.New("no latest_ledger record for it: SaveLatestLedgerToExcel writes the records of the LatestLedger processor, which must come before it")
	}
	hdr, err := l.View().LedgerHeader()
	if err != nil {
		return fmt.Errorf("reading the ledger header: %w", err)
	}
	h, err := hdr.Header()
	if err != nil {
		return fmt.Errorf("reading the ledger header: %w", err)
	}
	coins, err1 := h.TotalCoins()
	fees, err2 := h.FeePool()
	reserve, err3 := h.BaseReserve()
	maxTx, err4 := h.MaxTxSetSize()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("reading the ledger header: %w", err)
	}
	c, err1 := coins.Value()
	f, err2 := fees.Value()
	r, err3 := reserve.Value()
	m, err4 := maxTx.Value()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("reading the ledger header: %w", err)
	}
	add("Ledgers", ledgerHeaders, []any{sum.Sequence, sum.Hash, sum.PreviousHash, cellValue(sum.ClosedAt),
		amount.StringFromInt64(c), amount.StringFromInt64(f), sum.BaseFee, r, m, sum.TransactionCount, sum.OperationCount})
	return nil
}
