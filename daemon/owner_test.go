package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// The owner token is created once, private to the owner, and read back by the next run.
func TestOwnerTokenKeptInStateDir(t *testing.T) {
	dir := t.TempDir()
	a, err := ownerToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 32 {
		t.Fatalf("token %d bytes long", len(a))
	}
	fi, err := os.Stat(filepath.Join(dir, OwnerTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := ownerToken(dir)
	if err != nil || b != a {
		t.Fatalf("second run: %q, %v; want the same token", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, OwnerTokenFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ownerToken(dir); err == nil {
		t.Fatal("an empty token file was accepted")
	}
}
