package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/consumer"
)

func newTestParquet(t *testing.T, dir string, cfg map[string]any) *Parquet {
	t.Helper()
	return newTestParquetAt(t, map[string]any{"local_path": dir}, cfg)
}

// newTestParquetAt starts a SaveToParquet with the storage keys of where and the keys of cfg
// (partition_by none unless cfg says otherwise).
func newTestParquetAt(t *testing.T, where, cfg map[string]any) *Parquet {
	t.Helper()
	full := map[string]any{"partition_by": "none"}
	for _, m := range []map[string]any{where, cfg} {
		for k, v := range m {
			full[k] = v
		}
	}
	p, err := component.Construct(NewParquet, full, component.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// readParquetDir reads every .parquet file under dir back into allTypes records (see
// readParquetObjects); a temporary file left behind is an error.
func readParquetDir(t *testing.T, dir string) (recs []allTypes, files []string) {
	t.Helper()
	objs := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			t.Errorf("temporary file left: %s", path)
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		objs[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return readParquetObjects(t, objs)
}

// readParquetObjects reads every .parquet object (by key) back into allTypes records, decoding
// the Parquet rows column by column with their levels, and returns them with the keys.
func readParquetObjects(t *testing.T, objs map[string][]byte) (recs []allTypes, files []string) {
	t.Helper()
	schema, err := consumer.SchemaOf(allTypes{})
	if err != nil {
		t.Fatal(err)
	}
	for key, b := range objs {
		if !strings.HasSuffix(key, ".parquet") {
			continue
		}
		files = append(files, key)
		pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var names []string
		for _, fld := range pf.Schema().Fields() {
			names = append(names, fld.Name())
		}
		var want []string
		for _, c := range schema.Columns {
			want = append(want, c.Name)
		}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("%s: columns %v, want %v", key, names, want)
		}
		r := parquet.NewReader(pf)
		rows := make([]parquet.Row, pf.NumRows())
		n, err := r.ReadRows(rows)
		_ = r.Close()
		if int64(n) != pf.NumRows() {
			t.Fatalf("%s: read %d of %d rows: %v", key, n, pf.NumRows(), err)
		}
		for _, row := range rows {
			recs = append(recs, decodeRow(t, schema, row))
		}
	}
	sort.Strings(files)
	return recs, files
}

func decodeRow(t *testing.T, s *consumer.Schema, row parquet.Row) allTypes {
	t.Helper()
	var out allTypes
	v := reflect.ValueOf(&out).Elem()
	row.Range(func(ci int, vals []parquet.Value) bool {
		c := s.Columns[ci]
		f := v.FieldByName(c.Field)
		if c.Type == consumer.ColStringList {
			switch {
			case len(vals) == 1 && vals[0].DefinitionLevel() == 0:
				// null list
			case len(vals) == 1 && vals[0].DefinitionLevel() == 1:
				f.Set(reflect.ValueOf([]string{}))
			default:
				var l []string
				for _, x := range vals {
					l = append(l, string(x.ByteArray()))
				}
				f.Set(reflect.ValueOf(l))
			}
			return true
		}
		x := vals[0]
		if x.IsNull() {
			if !c.Nullable {
				t.Errorf("column %s: null in a required column", c.Name)
			}
			return true
		}
		var g any
		switch c.Type {
		case consumer.ColString:
			g = string(x.ByteArray())
		case consumer.ColJSON:
			g = json.RawMessage(append([]byte(nil), x.ByteArray()...))
		case consumer.ColBool:
			g = x.Boolean()
		case consumer.ColInt32:
			g = x.Int32()
		case consumer.ColInt64:
			g = x.Int64()
		case consumer.ColUint32:
			g = x.Uint32()
		case consumer.ColUint64:
			g = x.Uint64()
		case consumer.ColFloat64:
			g = x.Double()
		case consumer.ColTime:
			g = time.UnixMicro(x.Int64()).UTC()
		}
		rv := reflect.ValueOf(g)
		if f.Kind() == reflect.Pointer {
			p := reflect.New(f.Type().Elem())
			p.Elem().Set(rv.Convert(f.Type().Elem()))
			f.Set(p)
		} else {
			f.Set(rv.Convert(f.Type()))
		}
		return true
	})
	return out
}

func TestParquetRoundTrip(t *testing.T) {
	for _, comp := range []string{"snappy", "zstd", "gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			p := newTestParquet(t, dir, map[string]any{"compression": comp, "buffer_size": "10"})
			want := consumeRange(t, p, 1, 12, 4)
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, files := readParquetDir(t, dir)
			sameRecords(t, got, want)
			// 4 records per ledger, every 5th ledger empty, a file once >= 10 records are
			// buffered: ledgers 1-3, 4-7 (5 is empty), 8-11 (10 is empty), 12 (flushed by Close).
			wantFiles := []string{
				"all_types/all_types_0000000001-0000000003.parquet",
				"all_types/all_types_0000000004-0000000007.parquet",
				"all_types/all_types_0000000008-0000000011.parquet",
				"all_types/all_types_0000000012-0000000012.parquet",
			}
			sort.Strings(files)
			if !reflect.DeepEqual(files, wantFiles) {
				t.Errorf("files = %v, want %v", files, wantFiles)
			}
			st := p.Stats()
			if st["files_written"] != 4 || st["records_written"] != float64(len(want)) || st["total_bytes"] <= 0 {
				t.Errorf("stats = %v", st)
			}
			if p.DurableLedger() != 12 {
				t.Errorf("DurableLedger = %d, want 12", p.DurableLedger())
			}
		})
	}
}

func TestParquetDurableLedger(t *testing.T) {
	dir := t.TempDir()
	p := newTestParquet(t, dir, map[string]any{"buffer_size": 100})
	ctx := context.Background()
	if err := p.Consume(ctx, testLedger(t, 7), nil); err != nil {
		t.Fatal(err)
	}
	if got := p.DurableLedger(); got != 7 {
		t.Errorf("after an empty ledger DurableLedger = %d, want 7", got)
	}
	if err := p.Consume(ctx, testLedger(t, 8), makeRecords(8, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Consume(ctx, testLedger(t, 9), nil); err != nil {
		t.Fatal(err)
	}
	if got := p.DurableLedger(); got != 7 {
		t.Errorf("with ledger 8 buffered DurableLedger = %d, want 7", got)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.DurableLedger(); got != 9 {
		t.Errorf("after Flush DurableLedger = %d, want 9", got)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestParquetReplayAfterCrash: a consumer writes files and "crashes" (its buffer is lost,
// Close never runs) while the checkpoint lags behind its files; a new consumer replays from
// the checkpoint with other window boundaries. Every record must be in the directory once.
func TestParquetReplayAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name       string
		checkpoint uint32 // the replay starts after it
		buf1, buf2 int
		partition  string
	}{
		{"resume at a file boundary", 8, 10, 7, "none"},
		{"resume inside a file", 10, 10, 7, "none"},
		{"resume inside a file, bigger windows", 5, 6, 40, "none"},
		{"resume at the start", 0, 10, 3, "none"},
		{"ledger_range partitions", 9, 10, 7, "ledger_range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := map[string]any{"buffer_size": tc.buf1, "partition_by": tc.partition, "ledgers_per_file": 5}
			a := newTestParquet(t, dir, cfg)
			want := consumeRange(t, a, 1, 30, 3)
			if a.DurableLedger() < tc.checkpoint {
				t.Fatalf("DurableLedger %d below the test's checkpoint %d", a.DurableLedger(), tc.checkpoint)
			}
			// crash: a is dropped without Close; its buffered ledgers are lost.
			cfg["buffer_size"] = tc.buf2
			b := newTestParquet(t, dir, cfg)
			consumeRange(t, b, tc.checkpoint+1, 30, 3)
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, files := readParquetDir(t, dir)
			sameRecords(t, got, want)
			checkDisjoint(t, files)
			if tc.partition == "ledger_range" {
				for _, f := range files {
					var a0, a1, f0, f1 uint32
					if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(f)), "%d-%d", &a0, &a1); err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					fmt.Sscanf(strings.TrimPrefix(filepath.Base(f), "all_types_"), "%d-%d.parquet", &f0, &f1)
					if f0 < a0 || f1 > a1 {
						t.Errorf("%s crosses its partition", f)
					}
				}
			}
		})
	}
}

// checkDisjoint asserts that no two files of one kind cover a common ledger.
func checkDisjoint(t *testing.T, files []string) {
	t.Helper()
	type rng struct {
		a, b uint32
		f    string
	}
	var rs []rng
	for _, f := range files {
		m := fileNameRE.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			t.Errorf("unexpected file name %s", f)
			continue
		}
		a, _ := strconv.ParseUint(m[2], 10, 32)
		b, _ := strconv.ParseUint(m[3], 10, 32)
		r := rng{uint32(a), uint32(b), f}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].a < rs[j].a })
	for i := 1; i < len(rs); i++ {
		if rs[i].a <= rs[i-1].b {
			t.Errorf("files overlap: %s and %s", rs[i-1].f, rs[i].f)
		}
	}
}

// TestParquetStartRepairsOverlap: a crash in the middle of cutting leaves an old file next to
// the new one that covers its ledgers; Start removes the overlap.
func TestParquetStartRepairsOverlap(t *testing.T) {
	dir := t.TempDir()
	a := newTestParquet(t, dir, map[string]any{"buffer_size": 10})
	want := consumeRange(t, a, 1, 12, 3)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, files := readParquetDir(t, dir)
	saved := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = b
	}
	// Rewrite everything as one file, then put the old files back as if the cut never ran.
	b := newTestParquet(t, dir, map[string]any{"buffer_size": 1000})
	consumeRange(t, b, 1, 12, 3)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for f, data := range saved {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Temporary files of interrupted writes: as internal/atomicfile names them, and as earlier
	// versions did.
	for _, tmp := range []string{".all_types_0000000001-0000000012.parquet5577006791947779410", ".all_types_x.parquet.123.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, "all_types", tmp), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestParquet(t, dir, nil)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, files := readParquetDir(t, dir)
	sameRecords(t, got, want)
	checkDisjoint(t, files)
}

func TestParquetPartitions(t *testing.T) {
	dir := t.TempDir()
	p := newTestParquet(t, dir, map[string]any{"partition_by": "ledger_day", "path_prefix": "events"})
	// testLedger closes ledger n at 2025-07-01T00:00:00Z + 5n s: ledger 17279 is the last of
	// July 1st, 17280 the first of July 2nd.
	want := consumeRange(t, p, 17278, 17281, 2)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, files := readParquetDir(t, dir)
	sameRecords(t, got, want)
	sort.Strings(files)
	wantFiles := []string{
		"events/all_types/year=2025/month=07/day=01/all_types_0000017278-0000017279.parquet",
		"events/all_types/year=2025/month=07/day=02/all_types_0000017281-0000017281.parquet",
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("files = %v, want %v", files, wantFiles)
	}
}

func TestParquetConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "local_path is required"},
		{map[string]any{"local_path": "x", "storage_type": "GCS", "bucket_name": "b"}, "local_path is for storage_type FS"},
		{map[string]any{"storage_type": "S3"}, "bucket_name is required for storage_type S3"},
		{map[string]any{"bucket_name": "b"}, "storage_type is required"},
		{map[string]any{"storage_type": "GCS", "bucket_name": "b/p"}, "path_prefix"},
		{map[string]any{"storage_type": "GCS", "bucket_name": "b", "region": "eu-west-1"}, "for storage_type S3"},
		{map[string]any{"storage_type": "S3", "bucket_name": "b", "endpoint": "http://user:secret@127.0.0.1:9000"}, "must not carry credentials"},
		{map[string]any{"storage_type": "S3", "bucket_name": "b", "gcs_options": map[string]any{"chunk_size": 1}}, "gcs_options are for storage_type GCS"},
		{map[string]any{"storage_type": "NFS", "bucket_name": "b"}, "unknown storage_type"},
		{map[string]any{"local_path": "x", "flush_interval": "100us"}, "flush_interval must be at least 1ms"},
		{map[string]any{"local_path": "x", "compression": "lzma"}, "unknown compression"},
		{map[string]any{"local_path": "x", "partition_by": "week"}, "unknown partition_by"},
		{map[string]any{"local_path": "x", "buffer_size": 0}, "must be positive"},
		{map[string]any{"local_path": "x", "bogus": 1}, "bogus"},
		{map[string]any{"local_path": "x", "path_prefix": "../up"}, "relative path"},
	} {
		_, err := component.Construct(NewParquet, tc.cfg, component.Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	// An upstream CDP config loads (numbers as strings, as ${VAR} expansion yields them).
	_, err := component.Construct(NewParquet, map[string]any{"storage_type": "FS", "local_path": "/tmp/x", "path_prefix": "contract_events",
		"compression": "zstd", "buffer_size": "10000", "max_file_size_mb": 128, "rotation_interval_minutes": 60,
		"partition_by": "ledger_range", "ledgers_per_file": 10000, "schema_evolution": true, "include_metadata": true}, component.Env{})
	if err != nil {
		t.Errorf("upstream config: %v", err)
	}
	// The consumers of upstream's parquet-archival-s3.yaml and contract_data_gcs_production.yaml.
	for _, cfg := range []map[string]any{
		{"storage_type": "S3", "bucket_name": "stellar-blockchain-archive", "path_prefix": "events/soroban", "region": "us-west-2",
			"compression": "snappy", "buffer_size": 50000, "max_file_size_mb": 512, "rotation_interval_minutes": 120,
			"partition_by": "hour", "include_metadata": false},
		{"storage_type": "GCS", "bucket_name": "stellar-archive-prod", "path_prefix": "mainnet/contract_data/v2", "compression": "zstd",
			"buffer_size": 50000, "max_file_size_mb": 512, "rotation_interval_minutes": 60, "partition_by": "ledger_day",
			"ledgers_per_file": 50000, "schema_evolution": true, "include_metadata": true, "debug": false,
			"gcs_options": map[string]any{"chunk_size": 16777216, "retry_backoff_multiplier": 2.0, "retry_backoff_max": 120}},
	} {
		if _, err := component.Construct(NewParquet, cfg, component.Env{}); err != nil {
			t.Errorf("upstream %s config: %v", cfg["storage_type"], err)
		}
	}
}

// SaveToParquet is a component.TimedFlusher: flush_interval (5s by default) is how long the
// host lets a ledger's rows wait in the buffer; Flush writes them (TestParquetDurableLedger).
func TestParquetFlushInterval(t *testing.T) {
	var tf component.TimedFlusher = newTestParquet(t, t.TempDir(), nil)
	if tf.FlushInterval() != DefaultFlushInterval || DefaultFlushInterval != 5*time.Second {
		t.Errorf("default FlushInterval %s", tf.FlushInterval())
	}
	tf = newTestParquet(t, t.TempDir(), map[string]any{"flush_interval": "250ms"})
	if tf.FlushInterval() != 250*time.Millisecond {
		t.Errorf("FlushInterval %s, want 250ms", tf.FlushInterval())
	}
}
