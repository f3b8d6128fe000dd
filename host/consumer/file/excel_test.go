package file

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func newTestExcel(t *testing.T, ctor func(*ExcelConfig, component.Env) (component.Consumer, error), cfg map[string]any) *Excel {
	t.Helper()
	c, err := component.Construct(ctor, cfg, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(component.Starter).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.(*Excel)
}

// readWorkbook reads a sheet back with excelize (formatted cell text) and the cursor property.
func readWorkbook(t *testing.T, path, sheet string) (rows [][]string, last string) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err = f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	props, err := f.GetCustomProps()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range props {
		if p.Name == propLastLedger {
			last = fmt.Sprint(p.Value)
		}
	}
	return rows, last
}

// keysOf returns "<ledger>-<index>" of every data row (columns ledger_sequence and index),
// failing on a row seen twice.
func keysOf(t *testing.T, rows [][]string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, r := range rows[1:] {
		k := r[1] + "-" + r[2]
		if keys[k] {
			t.Errorf("row %s written twice", k)
		}
		keys[k] = true
	}
	return keys
}

func TestExcelRecordsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "records.xlsx")
	e := newTestExcel(t, NewSaveToExcel, map[string]any{"file_path": path, "buffer_size": 10})
	want := consumeRange(t, e, 1, 12, 3)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, last := readWorkbook(t, path, "all_types")
	s, _ := consumer.SchemaOf(allTypes{})
	var header []string
	for _, c := range s.Columns {
		header = append(header, c.Name)
	}
	if !reflect.DeepEqual(rows[0], header) {
		t.Errorf("header %v, want %v", rows[0], header)
	}
	if len(rows)-1 != len(want) || last != "12" {
		t.Fatalf("%d rows, cursor %s; want %d rows, cursor 12", len(rows)-1, last, len(want))
	}
	// The first record: ledger 1, index 0.
	r0 := want[0].(allTypes)
	got := map[string]string{}
	for i, h := range rows[0] {
		if i < len(rows[1]) {
			got[h] = rows[1][i]
		}
	}
	topics, _ := json.Marshal(r0.Topics)
	for col, w := range map[string]string{
		"network": "testnet", "ledger_sequence": "1", "index": "0", "ok": "TRUE",
		"huge":      strconv.FormatUint(r0.Huge, 10), // beyond 2^53: text, exact
		"closed_at": r0.ClosedAt.Format("2006-01-02T15:04:05.999999999Z07:00"),
		"topics":    string(topics), "data": string(r0.Data), "opt_string": *r0.OptString,
	} {
		if got[col] != w {
			t.Errorf("column %s = %q, want %q", col, got[col], w)
		}
	}
	// The second record (index 1) has every nullable field null: empty cells.
	for i, h := range rows[0] {
		if strings.HasPrefix(h, "opt_") && i < len(rows[2]) && rows[2][i] != "" {
			t.Errorf("row 2 column %s = %q, want an empty cell", h, rows[2][i])
		}
	}
	if st := e.Stats(); st["rows_written"] != float64(len(want)) || st["workbook_writes"] < 2 {
		t.Errorf("stats %v", st)
	}
}

// A crash leaves the last whole workbook; the replay skips what it holds: every row once.
func TestExcelReplayAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.xlsx")
	a := newTestExcel(t, NewSaveToExcel, map[string]any{"file_path": path, "buffer_size": 10})
	want := consumeRange(t, a, 1, 18, 3)
	d := a.DurableLedger()
	if d == 0 || d >= 18 {
		t.Fatalf("DurableLedger %d: the test needs rows pending", d)
	}
	// A temporary file of an interrupted write, as the crash would leave it.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), ".records.xlsx123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, cursor := readWorkbook(t, path, "all_types")
	if c, _ := strconv.Atoi(cursor); c == 0 || uint32(c) > d {
		t.Fatalf("the workbook's cursor %s, DurableLedger %d", cursor, d)
	}
	b := newTestExcel(t, NewSaveToExcel, map[string]any{"file_path": path, "buffer_size": 7})
	if fmt.Sprint(b.DurableLedger()) != cursor {
		t.Errorf("after Start DurableLedger %d, want the workbook's %s", b.DurableLedger(), cursor)
	}
	consumeRange(t, b, 1, 18, 3)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, last := readWorkbook(t, path, "all_types")
	if keys := keysOf(t, rows); len(keys) != len(want) || last != "18" {
		t.Errorf("%d rows, cursor %s; want %d, 18", len(keys), last, len(want))
	}
	if fmt.Sprint(b.Stats()["ledgers_skipped"]) != cursor {
		t.Errorf("ledgers_skipped %v, want %s", b.Stats()["ledgers_skipped"], cursor)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), ".records.xlsx123")); !os.IsNotExist(err) {
		t.Errorf("the temporary file is still there: %v", err)
	}
}

// A sheet keeps the newest max_rows rows, across restarts; a cell longer than Excel allows is
// cut.
func TestExcelBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.xlsx")
	a := newTestExcel(t, NewSaveToExcel, map[string]any{"file_path": path, "max_rows": 5})
	consumeRange(t, a, 1, 3, 3) // 9 rows
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Stats()["rows_dropped"] != 4 {
		t.Errorf("rows_dropped %v, want 4", a.Stats()["rows_dropped"])
	}
	b := newTestExcel(t, NewSaveToExcel, map[string]any{"file_path": path, "max_rows": 5})
	big := makeRecords(4, 1)
	r := big[0].(allTypes)
	r.Data = json.RawMessage(`"` + strings.Repeat("x", 40000) + `"`)
	if err := b.Consume(context.Background(), testLedger(t, 4), []component.Record{r}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := readWorkbook(t, path, "all_types")
	var got []string
	for _, row := range rows[1:] {
		got = append(got, row[1]+"-"+row[2])
	}
	if want := []string{"2-2", "3-0", "3-1", "3-2", "4-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want the newest %v", got, want)
	}
	if b.Stats()["cells_truncated"] != 1 {
		t.Errorf("cells_truncated %v, want 1", b.Stats()["cells_truncated"])
	}
}

// SaveLatestLedgerToExcel on the real pubnet ledgers after LatestLedger: upstream's sheet and
// columns; the header fields checked against the SDK's full decode of the ledger.
func TestLatestLedgerToExcel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledgers.xlsx")
	e := newTestExcel(t, NewSaveLatestLedgerToExcel, map[string]any{"file_path": path, "flush_interval": "2s"})
	if e.FlushInterval().Seconds() != 2 {
		t.Errorf("FlushInterval %s", e.FlushInterval())
	}
	p, err := component.Construct(raw.NewLatestLedger, map[string]any{"network": "pubnet"}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	real := proctest.RealLedgers(t)
	for _, rl := range []proctest.RealLedger{real[1], real[0]} { // ascending
		l, err := ledger.New(rl.Raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := p.Process(context.Background(), l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Consume(context.Background(), l, recs); err != nil {
			t.Fatal(err)
		}
	}
	if e.DurableLedger() != 0 {
		t.Errorf("before the flush DurableLedger %d, want 0 (both rows pending)", e.DurableLedger())
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.DurableLedger() != fixture.Ledger58752000 {
		t.Errorf("after the flush DurableLedger %d", e.DurableLedger())
	}
	rows, _ := readWorkbook(t, path, "Ledgers")
	if !reflect.DeepEqual(rows[0], ledgerHeaders) || len(rows) != 3 {
		t.Fatalf("sheet Ledgers: %v", rows)
	}
	for i, rl := range []proctest.RealLedger{real[1], real[0]} {
		l, _ := ledger.New(rl.Raw, nil)
		d, err := l.Decoded()
		if err != nil {
			t.Fatal(err)
		}
		h := d.LedgerHeaderHistoryEntry().Header
		row := rows[i+1]
		want := []string{strconv.Itoa(int(h.LedgerSeq)), "", "", "", fmt.Sprintf("%d.%07d", h.TotalCoins/1e7, h.TotalCoins%1e7),
			"", strconv.Itoa(int(h.BaseFee)), strconv.Itoa(int(h.BaseReserve)), strconv.Itoa(int(h.MaxTxSetSize)), strconv.Itoa(d.CountTransactions())}
		for c, w := range want {
			if w != "" && row[c] != w {
				t.Errorf("ledger %d column %s = %q, want %q", rl.Seq, ledgerHeaders[c], row[c], w)
			}
		}
	}
	// Without LatestLedger before it, a ledger is an error naming the processor.
	err = e.Consume(context.Background(), testLedger(t, fixture.Ledger58752000+1), nil)
	if err == nil || !strings.Contains(err.Error(), "LatestLedger") {
		t.Errorf("a ledger without its summary: %v", err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestExcelConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "file_path is required"},
		{map[string]any{"file_path": "x.csv"}, ".xlsx"},
		{map[string]any{"file_path": "x.xlsx", "max_rows": 2000000}, "max_rows"},
		{map[string]any{"file_path": "x.xlsx", "flush_interval": "0s"}, "flush_interval"},
	} {
		if _, err := component.Construct(NewSaveToExcel, tc.cfg, component.Env{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
}
