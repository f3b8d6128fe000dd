package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.json")
	for _, content := range []string{"one\n", "two\n"} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v), want only the file", entries, err)
	}
}

// An abandoned write leaves the destination as it was and a temporary file that TempOf
// recognises; Discard removes it.
func TestDiscardAndTempOf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k_0000000001-0000000002.parquet")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Base(f.Name())
	if dest, ok := TempOf(tmp); !ok || dest != filepath.Base(path) {
		t.Errorf("TempOf(%q) = %q, %v; want %q", tmp, dest, ok, filepath.Base(path))
	}
	if filepath.Dir(f.Name()) != dir {
		t.Errorf("temporary file %s is not beside its destination", f.Name())
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("destination changed before Commit: %q", got)
	}
	f.Discard()
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("temporary file left after Discard: %v", err)
	}
	for _, name := range []string{"k.parquet", ".k.parquet", ".123", "."} {
		if dest, ok := TempOf(name); ok {
			t.Errorf("TempOf(%q) = %q, true; want false", name, dest)
		}
	}
}
