package file

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/processor/proctest"
	"github.com/withobsrvr/cdpd/host/processor/raw"
)

func newLedgerParquet(t *testing.T, cfg map[string]any) *Parquet {
	t.Helper()
	c, err := component.Construct(NewSaveToLedgerParquet, cfg, component.Env{Pipeline: "ledger-parquet"})
	if err != nil {
		t.Fatal(err)
	}
	p := c.(*Parquet)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// readLedgerParquet reads every row of every file under dir, with the files' base names.
func readLedgerParquet(t *testing.T, dir string) (rows []ledgerParquetRow, files []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, d.Name())
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r := parquet.NewGenericReader[ledgerParquetRow](f)
		defer r.Close()
		buf := make([]ledgerParquetRow, r.NumRows())
		n, err := r.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		rows = append(rows, buf[:n]...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return rows, files
}

// SaveToLedgerParquet on LedgerToJSON's documents of the two real pubnet ledgers: one row per
// ledger in a file named by the ledger range, whose hash, close time, successful count and
// nested transactions (hashes in order, operations of each) are the SDK transaction reader's; a replay of the later ledger after a
// restart replaces its row (the file is cut: the earlier part keeps the ledgers before it), never doubles it; another record kind is an
// error.
func TestSaveToLedgerParquetRealLedgers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledgers := proctest.RealLedgers(t)
	slices.SortFunc(ledgers, func(a, b proctest.RealLedger) int { return int(a.Seq) - int(b.Seq) })
	type want struct {
		hash       string
		closed     time.Time
		successful int32
		txs        []string
		ops        []int
	}
	wants := map[uint32]want{}
	recs := map[uint32][]component.Record{}
	for _, rl := range ledgers {
		lcm, txs := proctest.RefTxs(t, rl.Raw)
		w := want{hash: lcm.LedgerHash().HexString(), closed: time.Unix(int64(lcm.LedgerHeaderHistoryEntry().Header.ScpValue.CloseTime), 0)}
		for _, tx := range txs {
			w.txs = append(w.txs, tx.Result.TransactionHash.HexString())
			w.ops = append(w.ops, len(tx.Envelope.Operations()))
			if tx.Result.Successful() {
				w.successful++
			}
		}
		wants[rl.Seq] = w
		recs[rl.Seq] = proctest.Run(t, raw.NewLedgerToJSON, map[string]any{"network": "pubnet"}, rl.Raw, nil)
	}
	consume := func(p *Parquet, rl proctest.RealLedger) {
		t.Helper()
		l, _ := proctest.Wrap(t, rl.Raw)
		if err := p.Consume(ctx, l, recs[rl.Seq]); err != nil {
			t.Fatal(err)
		}
	}

	p := newLedgerParquet(t, map[string]any{"output_path": dir})
	for _, rl := range ledgers {
		consume(p, rl)
	}
	if p.DurableLedger() != 0 {
		t.Errorf("DurableLedger %d before a flush (buffer_size is 100 ledgers)", p.DurableLedger())
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	first, last := ledgers[0], ledgers[len(ledgers)-1]
	if _, files := readLedgerParquet(t, dir); !slices.Equal(files, []string{fileName("ledger_json", first.Seq, last.Seq)}) {
		t.Fatalf("files %v, want one named by the ledger range", files)
	}

	p = newLedgerParquet(t, map[string]any{"output_path": dir})
	consume(p, last)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows, files := readLedgerParquet(t, dir)
	if !slices.Equal(files, []string{fileName("ledger_json", first.Seq, last.Seq-1), fileName("ledger_json", last.Seq, last.Seq)}) {
		t.Errorf("files after the replay: %v", files)
	}
	if len(rows) != len(ledgers) {
		t.Fatalf("%d rows for %d ledgers", len(rows), len(ledgers))
	}
	for _, r := range rows {
		w := wants[uint32(r.Sequence)]
		var got []string
		var ops []int
		for _, tx := range r.Transactions {
			got = append(got, tx.TransactionHash)
			ops = append(ops, len(tx.Operations))
		}
		if r.LedgerHash != w.hash || !r.ClosedAt.Equal(w.closed) || r.SuccessfulTransactionCount != w.successful ||
			!slices.Equal(got, w.txs) || !slices.Equal(ops, w.ops) {
			t.Errorf("ledger %d: hash %s closed %s successful %d, %d transactions; SDK: %s, %s, %d, %d", r.Sequence,
				r.LedgerHash, r.ClosedAt, r.SuccessfulTransactionCount, len(got), w.hash, w.closed, w.successful, len(w.txs))
		}
	}

	p = newLedgerParquet(t, map[string]any{"output_path": t.TempDir()})
	defer p.Close(ctx)
	err := p.Consume(ctx, testLedger(t, 1), makeRecords(1, 1))
	if err == nil || !strings.Contains(err.Error(), "SaveToLedgerParquet") || !strings.Contains(err.Error(), "ledger_json") {
		t.Errorf("a record of another kind: %v", err)
	}
}

func TestSaveToLedgerParquetConfig(t *testing.T) {
	c, err := component.Construct(NewSaveToLedgerParquet, map[string]any{"output_path": "x"}, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	p := c.(*Parquet)
	if p.cfg.LocalPath != "x" || p.cfg.BufferSize != 100 || p.cfg.MaxFileSizeMB != 1024 || p.cfg.PartitionBy != "none" || p.codec != &parquet.Zstd {
		t.Errorf("defaults: %+v", p.cfg)
	}
	c, err = component.Construct(NewSaveToLedgerParquet, map[string]any{}, component.Env{})
	if err != nil || c.(*Parquet).cfg.LocalPath != defaultLedgerParquetDir {
		t.Errorf("no output_path: %v", err)
	}
	for cfg, want := range map[string]map[string]any{
		"set one":             {"output_path": "x", "local_path": "y"},
		"unknown compression": {"compression": "brotli"},
	} {
		if _, err := component.Construct(NewSaveToLedgerParquet, want, component.Env{}); err == nil || !strings.Contains(err.Error(), cfg) ||
			!strings.HasPrefix(err.Error(), "SaveToLedgerParquet: ") {
			t.Errorf("%v: %v, want an error saying %q", want, err, cfg)
		}
	}
	if c, err := component.Construct(NewSaveToLedgerParquet, map[string]any{"compression": "lz4"}, component.Env{}); err != nil || c.(*Parquet).codec != &parquet.Lz4Raw {
		t.Errorf("lz4: %v", err)
	}
}
