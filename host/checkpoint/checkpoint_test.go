package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if _, ok, err := s.Load("p"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range []uint32{58752000, 58752001, 7} {
		if err := s.Save(Checkpoint{Pipeline: "p", Ledger: n, ConfigHash: "abc", UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		c, ok, err := s.Load("p")
		if err != nil || !ok || c.Ledger != n || c.ConfigHash != "abc" || !c.UpdatedAt.Equal(at) {
			t.Fatalf("after saving %d: %+v %v %v", n, c, ok, err)
		}
	}
	// Only the checkpoint file is left: no temporary files.
	ents, err := os.ReadDir(filepath.Join(dir, "p"))
	if err != nil || len(ents) != 1 || ents[0].Name() != FileName {
		t.Fatalf("directory holds %v (%v)", ents, err)
	}
	if _, ok, _ := s.Load("other"); ok {
		t.Error("another pipeline sees p's checkpoint")
	}
}

func TestCorruptCheckpointIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if err := os.MkdirAll(s.Dir("p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir("p"), FileName), []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Load("p")
	if err == nil || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("corrupt checkpoint: %v", err)
	}
}

func TestSafeName(t *testing.T) {
	seen := map[string]string{}
	for _, tc := range []struct {
		name string
		same bool
	}{
		{"ContractEvents", true}, {"cdp-contract_events.v2", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a_b", true}, {"a b", false}, {"ü", false},
	} {
		got := SafeName(tc.name)
		if (got == tc.name) != tc.same {
			t.Errorf("SafeName(%q) = %q", tc.name, got)
		}
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, `/\ `) {
			t.Errorf("SafeName(%q) = %q is not one safe path element", tc.name, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q share %q", prev, tc.name, got)
		}
		seen[got] = tc.name
	}
}
