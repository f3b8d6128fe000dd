package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/xuri/excelize/v2"
)

// propLastLedger is the workbook's custom document property holding the last ledger whose rows
// it holds (the consumer's cursor, written in the same file as the rows).
const propLastLedger = "cdpd_last_ledger"

// maxExcelRows is Excel's limit of rows per sheet, the header included.
const maxExcelRows = 1048576

// book is a workbook kept in memory and rewritten whole on every flush: one sheet per table,
// each holding at most maxRows data rows (the newest; older rows are dropped and counted), and
// its cursor (the last ledger) in a custom document property. A flush writes a new workbook
// through the FS Store (temporary file, fsync, rename), so the file on disk is always a whole
// workbook whose rows and cursor agree.
type book struct {
	dir, name string
	maxRows   int
	sheets    []*sheet
	byName    map[string]*sheet
	last      uint32 // the cursor: the last ledger whose rows are held
	store     Store

	dropped   atomic.Int64
	truncated atomic.Int64
}

type sheet struct {
	name   string
	header []string
	rows   [][]any // a ring of at most maxRows rows; start is the oldest
	start  int
}

func newBook(path string, maxRows int) *book {
	return &book{dir: filepath.Dir(path), name: filepath.Base(path), maxRows: maxRows, byName: map[string]*sheet{}}
}

// sheet returns the sheet name (created with header when new).
func (b *book) sheet(name string, header []string) *sheet {
	s := b.byName[name]
	if s == nil {
		s = &sheet{name: name, header: header}
		b.byName[name] = s
		b.sheets = append(b.sheets, s)
	}
	return s
}

// add appends a row to s, dropping the oldest row when s is full.
func (b *book) add(s *sheet, row []any) {
	for i, v := range row {
		if str, ok := v.(string); ok && len(str) > excelize.TotalCellChars {
			row[i] = str[:excelize.TotalCellChars-1] + "…"
			b.truncated.Add(1)
		}
	}
	if len(s.rows) < b.maxRows {
		s.rows = append(s.rows, row)
		return
	}
	s.rows[s.start] = row
	s.start = (s.start + 1) % len(s.rows)
	b.dropped.Add(1)
}

// open reads the workbook at the path, if there is one: its cursor and the rows of every
// sheet (numbers and booleans keep their type, everything else is text).
func (b *book) open(ctx context.Context) error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("creating the directory of file_path: %w", err)
	}
	b.store = &fsStore{root: b.dir}
	if _, err := b.store.RemoveTemps(ctx, func(dest string) bool { return dest == b.name }); err != nil {
		return fmt.Errorf("removing temporary files of interrupted writes: %w", err)
	}
	f, err := excelize.OpenFile(filepath.Join(b.dir, b.name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the workbook: %w", err)
	}
	defer f.Close()
	props, err := f.GetCustomProps()
	if err != nil {
		return fmt.Errorf("reading the workbook's properties: %w", err)
	}
	for _, p := range props {
		if p.Name == propLastLedger {
			n, err := strconv.ParseUint(fmt.Sprint(p.Value), 10, 32)
			if err != nil {
				return fmt.Errorf("the workbook's %s property is not a ledger", propLastLedger)
			}
			b.last = uint32(n)
		}
	}
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name, excelize.Options{RawCellValue: true})
		if err != nil {
			return fmt.Errorf("reading sheet %s: %w", name, err)
		}
		if len(rows) == 0 {
			continue
		}
		s := b.sheet(name, rows[0])
		for r, row := range rows[1:] {
			vals := make([]any, len(s.header))
			for c := range vals {
				if c >= len(row) || row[c] == "" {
					continue
				}
				vals[c] = row[c]
				cell, _ := excelize.CoordinatesToCellName(c+1, r+2)
				switch t, _ := f.GetCellType(name, cell); t {
				case excelize.CellTypeNumber, excelize.CellTypeUnset:
					if x, err := strconv.ParseFloat(row[c], 64); err == nil {
						vals[c] = x
					}
				case excelize.CellTypeBool:
					vals[c] = row[c] == "1" || row[c] == "TRUE"
				}
			}
			b.add(s, vals)
		}
	}
	return nil
}

// write replaces the workbook on disk with the sheets and the cursor last.
func (b *book) write(ctx context.Context, last uint32) error {
	f := excelize.NewFile()
	defer f.Close()
	for i, s := range b.sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", s.name); err != nil {
				return fmt.Errorf("naming sheet %s: %w", s.name, err)
			}
		} else if _, err := f.NewSheet(s.name); err != nil {
			return fmt.Errorf("adding sheet %s: %w", s.name, err)
		}
		sw, err := f.NewStreamWriter(s.name)
		if err != nil {
			return fmt.Errorf("writing sheet %s: %w", s.name, err)
		}
		header := make([]any, len(s.header))
		for i, h := range s.header {
			header[i] = h
		}
		if err := sw.SetRow("A1", header); err != nil {
			return fmt.Errorf("writing the header of sheet %s: %w", s.name, err)
		}
		for i := range s.rows {
			cell, _ := excelize.CoordinatesToCellName(1, i+2)
			if err := sw.SetRow(cell, s.rows[(s.start+i)%len(s.rows)]); err != nil {
				return fmt.Errorf("writing sheet %s: %w", s.name, err)
			}
		}
		if err := sw.Flush(); err != nil {
			return fmt.Errorf("writing sheet %s: %w", s.name, err)
		}
	}
	if err := f.SetCustomProps(excelize.CustomProperty{Name: propLastLedger, Value: strconv.FormatUint(uint64(last), 10)}); err != nil {
		return fmt.Errorf("setting the workbook's cursor: %w", err)
	}
	_, err := b.store.Put(ctx, b.name, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the workbook: %w", err)
	}
	b.last = last
	return nil
}
