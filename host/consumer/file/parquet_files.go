package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// repair makes the files of one kind disjoint: sorted by first ledger (longest first), every
// file overlapping the file kept before it is cut down to its ledgers after that file.
func (p *Parquet) repair(ctx context.Context, kind string) error {
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
		if f.key == k.key {
			continue // a part rewritten under the name of a file already listed
		}
		p.log.Warn("cutting a file that overlaps another (left by an interrupted write)", "file", f.key, "kept", k.key)
		rem, err := p.cut(ctx, f, k.first, k.last)
		if err != nil {
			return err
		}
		list = append(list, rem...)
		sortRanges(list[i+1:])
	}
	p.files[kind] = kept
	return nil
}

// dedupeRanges sorts files and drops repeated keys (a part rewritten under an existing name).
func dedupeRanges(fs []fileRange) []fileRange {
	sortRanges(fs)
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.key] {
			seen[f.key] = true
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
func (p *Parquet) writeKind(ctx context.Context, kind string, b *kindBuffer) error {
	key := path.Join(kind, p.win.part, fileName(kind, p.win.first, p.win.last))
	size, err := p.writeFile(ctx, key, b.pq, p.win.first, p.win.last, b.counts, func(w parquet.RowWriter) error {
		_, err := w.WriteRows(b.rows)
		return err
	})
	if err != nil {
		return err
	}
	p.written.Add(1)
	p.bytes.Add(size)
	p.m.Bytes.Add(float64(size))
	nf := fileRange{first: p.win.first, last: p.win.last, key: key}
	var keep []fileRange
	for _, f := range p.files[kind] {
		if f.last < nf.first || f.first > nf.last {
			keep = append(keep, f)
			continue
		}
		if f.key == key { // replaced by the write
			continue
		}
		rem, err := p.cut(ctx, f, nf.first, nf.last)
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

// fileName is the base name of a kind's file of ledgers first..last.
func fileName(kind string, first, last uint32) string {
	return fmt.Sprintf("%s_%010d-%010d.parquet", kind, first, last)
}

// writeFile writes a Parquet file atomically through the store: nothing shows at key until
// the whole file is written (and, on FS, fsynced and durably renamed). The failpoints around
// the store's commit: ParquetBeforeRename when the whole file is written to the store's
// temporary file (or upload buffer), ParquetAfterRename once it is in place.
func (p *Parquet) writeFile(ctx context.Context, key string, schema *parquet.Schema, first, last uint32, counts []ledgerCount, write func(parquet.RowWriter) error) (int64, error) {
	var rows strings.Builder
	for i, c := range counts {
		if i > 0 {
			rows.WriteByte(',')
		}
		fmt.Fprintf(&rows, "%d:%d", c.seq, c.n)
	}
	n, err := p.store.Put(ctx, key, func(f io.Writer) error {
		w := parquet.NewGenericWriter[any](f, schema, parquet.Compression(p.codec),
			parquet.KeyValueMetadata(metaFirst, strconv.FormatUint(uint64(first), 10)),
			parquet.KeyValueMetadata(metaLast, strconv.FormatUint(uint64(last), 10)),
			parquet.KeyValueMetadata(metaLedgerRows, rows.String()),
			parquet.CreatedBy("cdpd", "", ""))
		if err := write(w); err != nil {
			return fmt.Errorf("writing rows: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("finishing parquet file: %w", err)
		}
		failpoint.Inject(failpoint.ParquetBeforeRename)
		return nil
	})
	if err == nil {
		failpoint.Inject(failpoint.ParquetAfterRename)
	}
	return n, err
}

// cut removes ledgers a..b from file f: its rows of ledgers before a and after b are written
// to files of their own (beside f), then f is removed. It returns the new files.
func (p *Parquet) cut(ctx context.Context, f fileRange, a, b uint32) ([]fileRange, error) {
	in, err := p.store.Open(ctx, f.key)
	if err != nil {
		return nil, fmt.Errorf("opening %s to cut ledgers %d-%d out: %w", f.key, a, b, err)
	}
	defer in.Close()
	pf, err := parquet.OpenFile(in, in.Size())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.key, err)
	}
	meta, ok := pf.Lookup(metaLedgerRows)
	if !ok {
		return nil, fmt.Errorf("%s overlaps ledgers %d-%d and has no %s metadata (not written by cdpd?): move it away", f.key, a, b, metaLedgerRows)
	}
	counts, err := parseLedgerRows(meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.key, err)
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
		return nil, fmt.Errorf("%s: metadata counts %d rows, the file holds %d", f.key, total, pf.NumRows())
	}
	kind := fileNameRE.FindStringSubmatch(path.Base(f.key))[1]
	var out []fileRange
	part := func(first, last uint32, cs []ledgerCount, from, to int64) error {
		if from == to {
			return nil
		}
		key := path.Join(path.Dir(f.key), fileName(kind, first, last))
		size, err := p.writeFile(ctx, key, pf.Schema(), first, last, cs, func(w parquet.RowWriter) error {
			return copyRows(w, pf, from, to)
		})
		if err != nil {
			return fmt.Errorf("writing the part %d-%d of %s: %w", first, last, f.key, err)
		}
		p.m.Bytes.Add(float64(size))
		out = append(out, fileRange{first: first, last: last, key: key})
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
	if err := p.store.Delete(ctx, f.key); err != nil {
		return nil, fmt.Errorf("removing %s after cutting it: %w", f.key, err)
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
