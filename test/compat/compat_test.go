// Package compat shows that pipeline files written for the upstream CDP pipeline run in cdpd
// unchanged (but for bucket and path values), and that their output equals what the
// go-stellar-sdk itself reports for the same real pubnet ledgers.
package compat

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/xdr"
	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/fixture/gcsemu"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// process-wide goroutines of the GCS client's dependencies, started once on first use
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// sdkEvents counts the contract events of each transaction of ledgers [from, to] the classic
// way (full decode, LedgerTransactionReader, GetTransactionEvents), keyed "ledger:txhash".
func sdkEvents(t *testing.T, ds *fixture.Datastore, from, to uint32) map[string]int {
	t.Helper()
	out := map[string]int{}
	for seq := from; seq <= to; seq++ {
		raw, err := ds.RawLedger(seq)
		if err != nil {
			t.Fatal(err)
		}
		var lcm xdr.LedgerCloseMeta
		if err := lcm.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		r, err := ingest.NewLedgerTransactionReaderFromLedgerCloseMeta(network.PublicNetworkPassphrase, lcm)
		if err != nil {
			t.Fatal(err)
		}
		for {
			tx, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			evs, err := tx.GetTransactionEvents()
			if err != nil {
				t.Fatal(err)
			}
			n := len(evs.TransactionEvents)
			for _, op := range evs.OperationEvents {
				n += len(op)
			}
			if n > 0 {
				out[fmt.Sprintf("%d:%s", seq, tx.Hash.HexString())] += n
			}
		}
		_ = r.Close()
	}
	return out
}

// parquetEvents reads every Parquet file under dir and counts rows per "ledger:txhash".
func parquetEvents(t *testing.T, dir string) (map[string]int, int) {
	t.Helper()
	out, files := map[string]int{}, 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		files++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		col := map[string]int{}
		for i, fld := range pf.Schema().Fields() {
			col[fld.Name()] = i
		}
		seqCol, ok1 := col["ledger_sequence"]
		hashCol, ok2 := col["transaction_hash"]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: columns %v lack ledger_sequence / transaction_hash", path, col)
		}
		rows := make([]parquet.Row, pf.NumRows())
		r := parquet.NewReader(pf)
		defer r.Close()
		if n, err := r.ReadRows(rows); int64(n) != pf.NumRows() {
			return fmt.Errorf("%s: read %d of %d rows: %v", path, n, pf.NumRows(), err)
		}
		for _, row := range rows {
			var seq int64
			var hash string
			row.Range(func(ci int, vals []parquet.Value) bool {
				switch ci {
				case seqCol:
					seq = vals[0].Int64()
				case hashCol:
					hash = string(vals[0].ByteArray())
				}
				return true
			})
			out[fmt.Sprintf("%d:%s", seq, hash)]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, files
}

func TestUpstreamConfigsRunUnchanged(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	gcsemu.Serve(t, ds, "ledgers", "pubnet")
	out := t.TempDir()
	env := map[string]string{"CDP_BUCKET": "ledgers/pubnet", "CDP_OUT": out}
	reg, err := builtin.Registry()
	if err != nil {
		t.Fatal(err)
	}
	opts := loader.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Check:     builtin.LoaderCheck(reg),
	}
	want := sdkEvents(t, ds, 58752000, 58752009)
	total := 0
	for _, n := range want {
		total += n
	}
	if total == 0 {
		t.Fatal("the SDK reports no contract events in the range: the comparison would prove nothing")
	}

	for _, tc := range []struct{ file, pipeline, outDir string }{
		{"upstream_pipelines_shape.yaml", "ContractEventsArchival", "pipelines-shape"},
		{"upstream_pipeline_shape.yaml", "ContractEventsSingle", "pipeline-shape"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pipelines, errs := loader.ParseFile(path, data, opts)
			if len(errs) > 0 {
				t.Fatalf("upstream file rejected: %v", errs)
			}
			if len(pipelines) != 1 || pipelines[0].Name != tc.pipeline {
				t.Fatalf("pipelines %v, want just %s", pipelines, tc.pipeline)
			}
			h := host.New(host.Options{Registry: reg, StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
			ctx := context.Background()
			if err := h.Apply(ctx, loader.Event{Kind: loader.Add, Pipeline: pipelines[0]}); err != nil {
				t.Fatal(err)
			}
			p, _ := h.Get(tc.pipeline)
			testutil.EventuallyWhy(t, 60*time.Second, "pipeline completed", func() (bool, string) {
				info := p.Info()
				return info.Status == host.StatusCompleted, fmt.Sprintf("%+v", info)
			})
			if m := p.GetMetrics(); m["pipeline.full_decodes"] != 0 {
				t.Errorf("the ContractEvent pipeline decoded %v ledgers in full", m["pipeline.full_decodes"])
			}
			if err := h.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got, files := parquetEvents(t, filepath.Join(out, tc.outDir))
			if files == 0 {
				t.Fatal("no Parquet file written")
			}
			if !sameCounts(got, want) {
				t.Errorf("events per transaction differ from the SDK's:\n got  %v\n want %v", sorted(got), sorted(want))
			}
		})
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
