package atomicfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/internal/atomicfile"
)

// TestWriteReplacesWholeAndLeavesNoTemporary: Write creates the file with
// the given mode, replaces an existing one whole, and leaves no temporary
// file beside it.
func TestWriteReplacesWholeAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	for _, content := range []string{"a longer first content\n", "second\n"} {
		if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("after writing %q the file holds %q (%v)", content, got, err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the file: %v", len(entries), entries)
	}
}

// TestWriteFailureNamesThePath: a write that cannot happen says which
// file it was for and creates nothing.
func TestWriteFailureNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "token")
	err := atomicfile.Write(path, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Write into a missing directory: %v, want an error naming %s", err, path)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("the file exists after a failed write")
	}
}
