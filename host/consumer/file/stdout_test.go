package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

func TestStdoutWritesOneJSONLinePerRecord(t *testing.T) {
	var buf bytes.Buffer
	s := NewStdout(&buf)
	ctx := context.Background()
	if err := s.Consume(ctx, testLedger(t, 10), nil); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a ledger without records wrote %q", buf.String())
	}
	recs := makeRecords(11, 3)
	if err := s.Consume(ctx, testLedger(t, 11), recs); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for sc.Scan() {
		want, _ := json.Marshal(recs[i])
		if !bytes.Equal(sc.Bytes(), want) {
			t.Errorf("line %d = %s, want %s", i, sc.Bytes(), want)
		}
		i++
	}
	if i != 3 {
		t.Fatalf("got %d lines, want 3", i)
	}
	st := s.Stats()
	if st["records_written"] != 3 || st["ledgers_consumed"] != 2 || st["last_ledger"] != 11 {
		t.Errorf("stats = %v", st)
	}
}

func TestStdoutConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	s := NewStdout(&buf)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint32(1); seq <= 20; seq++ {
				if err := s.Consume(context.Background(), testLedger(t, seq), makeRecords(seq, 5)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", n, err, sc.Bytes())
		}
		n++
	}
	if n != 8*20*5 {
		t.Fatalf("got %d lines, want %d", n, 8*20*5)
	}
}

// Constructing a consumer opens nothing: no directory is created.
func TestConstructorsOpenNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := component.Construct(NewSaveToParquet, map[string]any{"local_path": dir}, component.Env{}); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("constructing a SaveToParquet touched %s: %v", dir, err)
	}
	if _, err := component.Construct(NewStdoutConsumer, map[string]any{"bogus": 1}, component.Env{}); err == nil {
		t.Error("strict construction accepted an unknown key")
	}
}
