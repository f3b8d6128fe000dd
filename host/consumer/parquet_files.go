package consumer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/internal/atomicfile"
	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// repair makes the files of one kind disjoint: sorted by first ledger (longest first), every
// file overlapping the file kept before it is cut down to its ledgers after that file.
func (p *Parquet) repair(kind string) error {
	list := p.files[kind]
	sortRanges(list)
	var kept []fileRange
	for i := 0; i < len(list); i++ {
		f := list[i]
		if len(kept) == 0 || f.first > kept[len(kept)-1].last {
			kept = append(kept, f)
			continue
		}
		k := kept[len(kept)-1]
		if f.path == k.path {
			continue // a part rewritten under the name of a file already listed
		}
		p.log.Warn("cutting a file that overlaps another (left by an interrupted write)", "file", p.rel(f.path), "kept", p.rel(k.path))
		rem, err := p.cut(f, k.first, k.last)
		if err != nil {
			return err
		}
		list = append(list, rem...)
		sortRanges(list[i+1:])
	}
	p.files[kind] = kept
	return nil
}

// dedupeRanges sorts files and drops repeated paths (a part rewritten under an existing name).
func dedupeRanges(fs []fileRange) []fileRange {
	sortRanges(fs)
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.path] {
			seen[f.path] = true
			out = append(out, f)
		}
	}
	return out
}

func sortRanges(fs []fileRange) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].first != fs[j].first {
			return fs[i].first < fs[j].first
		}
		return fs[i].last > fs[j].last
	})
}

// writeKind writes one kind's buffer as the file of the current window and cuts the files it
// overlaps.
func (p *Parquet) writeKind(kind string, b *kindBuffer) error {
	dir := filepath.Join(p.root, kind, filepath.FromSlash(p.win.part))
	path := filepath.Join(dir, fmt.Sprintf("%s_%010d-%010d.parquet", kind, p.win.first, p.win.last))
	size, err := p.writeFile(path, parquetSchema(b.schema), p.win.first, p.win.last, b.counts, func(w parquet.RowWriter) error {
		_, err := w.WriteRows(b.rows)
		return err
	})
	if err != nil {
		return err
	}
	p.written.Add(1)
	p.bytes.Add(size)
	nf := fileRange{first: p.win.first, last: p.win.last, path: path}
	var keep []fileRange
	for _, f := range p.files[kind] {
		if f.last < nf.first || f.first > nf.last {
			keep = append(keep, f)
			continue
		}
		if f.path == path { // replaced by the rename
			continue
		}
		rem, err := p.cut(f, nf.first, nf.last)
		if err != nil {
			return err
		}
		keep = append(keep, rem...)
	}
	keep = append(keep, nf)
	p.files[kind] = dedupeRanges(keep)
	p.log.Debug("wrote parquet file", "kind", kind, "first_ledger", nf.first, "last_ledger", nf.last, "rows", len(b.rows), "bytes", size)
	return nil
}

// writeFile writes a Parquet file atomically (internal/atomicfile): nothing shows at path until
// the whole file is written and fsynced, and the rename is durable.
func (p *Parquet) writeFile(path string, schema *parquet.Schema, first, last uint32, counts []ledgerCount, write func(parquet.RowWriter) error) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("creating directory: %w", err)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Discard()
	var rows strings.Builder
	for i, c := range counts {
		if i > 0 {
			rows.WriteByte(',')
		}
		fmt.Fprintf(&rows, "%d:%d", c.seq, c.n)
	}
	w := parquet.NewGenericWriter[any](f, schema, parquet.Compression(p.codec),
		parquet.KeyValueMetadata(metaFirst, strconv.FormatUint(uint64(first), 10)),
		parquet.KeyValueMetadata(metaLast, strconv.FormatUint(uint64(last), 10)),
		parquet.KeyValueMetadata(metaLedgerRows, rows.String()),
		parquet.CreatedBy("cdpd", "", ""))
	if err := write(w); err != nil {
		return 0, fmt.Errorf("writing rows: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("finishing parquet file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat of written file: %w", err)
	}
	failpoint.Inject(failpoint.ParquetBeforeRename)
	if err := f.Commit(); err != nil {
		return 0, err
	}
	failpoint.Inject(failpoint.ParquetAfterRename)
	return st.Size(), nil
}

// cut removes ledgers a..b from file f: its rows of ledgers before a and after b are written
// to files of their own (in f's directory), then f is removed. It returns the new files.
func (p *Parquet) cut(f fileRange, a, b uint32) ([]fileRange, error) {
	in, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("opening %s to cut ledgers %d-%d out: %w", f.path, a, b, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat of %s: %w", f.path, err)
	}
	pf, err := parquet.OpenFile(in, st.Size())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.path, err)
	}
	meta, ok := pf.Lookup(metaLedgerRows)
	if !ok {
		return nil, fmt.Errorf("%s overlaps ledgers %d-%d and has no %s metadata (not written by cdpd?): move it away", f.path, a, b, metaLedgerRows)
	}
	counts, err := parseLedgerRows(meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	// Rows are in ledger order: [0, before) precede a; [after, total) follow b.
	var before, after, total int64
	var left, right []ledgerCount
	for _, c := range counts {
		switch {
		case c.seq < a:
			before += int64(c.n)
			left = append(left, c)
		case c.seq <= b:
		default:
			right = append(right, c)
		}
	}
	for _, c := range counts {
		total += int64(c.n)
	}
	after = total - sumCounts(right)
	if total != pf.NumRows() {
		return nil, fmt.Errorf("%s: metadata counts %d rows, the file holds %d", f.path, total, pf.NumRows())
	}
	kind := fileNameRE.FindStringSubmatch(filepath.Base(f.path))[1]
	var out []fileRange
	part := func(first, last uint32, cs []ledgerCount, from, to int64) error {
		if from == to {
			return nil
		}
		path := filepath.Join(filepath.Dir(f.path), fmt.Sprintf("%s_%010d-%010d.parquet", kind, first, last))
		_, err := p.writeFile(path, pf.Schema(), first, last, cs, func(w parquet.RowWriter) error {
			return copyRows(w, pf, from, to)
		})
		if err != nil {
			return fmt.Errorf("writing the part %d-%d of %s: %w", first, last, f.path, err)
		}
		out = append(out, fileRange{first: first, last: last, path: path})
		return nil
	}
	if f.first < a {
		if err := part(f.first, a-1, left, 0, before); err != nil {
			return nil, err
		}
	}
	if f.last > b {
		if err := part(b+1, f.last, right, after, total); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(f.path); err != nil {
		return nil, fmt.Errorf("removing %s after cutting it: %w", f.path, err)
	}
	return out, nil
}

func sumCounts(cs []ledgerCount) (n int64) {
	for _, c := range cs {
		n += int64(c.n)
	}
	return n
}

func parseLedgerRows(s string) ([]ledgerCount, error) {
	var out []ledgerCount
	if s == "" {
		return nil, nil
	}
	for _, e := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(e, ":")
		seq, err1 := strconv.ParseUint(a, 10, 32)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 0 {
			return nil, fmt.Errorf("bad %s metadata entry %q", metaLedgerRows, e)
		}
		out = append(out, ledgerCount{seq: uint32(seq), n: n})
	}
	return out, nil
}

// copyRows copies rows [from, to) of pf to w.
func copyRows(w parquet.RowWriter, pf *parquet.File, from, to int64) error {
	r := parquet.NewReader(pf)
	defer r.Close()
	if err := r.SeekToRow(from); err != nil {
		return fmt.Errorf("seeking to row %d: %w", from, err)
	}
	buf := make([]parquet.Row, 256)
	for n := to - from; n > 0; {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		k, err := r.ReadRows(chunk)
		if k > 0 {
			if _, werr := w.WriteRows(chunk[:k]); werr != nil {
				return fmt.Errorf("writing rows: %w", werr)
			}
			n -= int64(k)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && n == 0 {
				break
			}
			return fmt.Errorf("reading rows: %w", err)
		}
	}
	return nil
}
