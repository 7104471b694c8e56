package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/plenum-voice/plenum/internal/fulldisk"
)

// TestFullDisk fills the file system under the database: writes fail with
// ErrFull and store nothing, reads go on, and once there is space again
// writes work and the database is intact.
func TestFullDisk(t *testing.T) {
	dir := fulldisk.Mount(t, 1<<20)
	s, err := Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.iterations = 1000
	cert := func(i int) string { return fmt.Sprintf("%040x", i) }
	before, err := s.Register("before", cert(1))
	if err != nil {
		t.Fatal(err)
	}

	free := fulldisk.Fill(t, dir)
	// The WAL may still have room from earlier writes; keep writing until
	// it needs to grow.
	var full error
	var stored []string
	for i := 0; i < 2000 && full == nil; i++ {
		name := fmt.Sprintf("user%d", i)
		if _, err := s.Register(name, cert(100+i)); err != nil {
			full = err
		} else {
			stored = append(stored, name)
		}
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("writing to a full disk: %v, want ErrFull", full)
	}
	t.Logf("%d registrations fitted before the disk was full: %v", len(stored), full)
	if u, err := s.UserByID(before.ID); err != nil || u.Name != "before" {
		t.Errorf("reading on a full disk: %+v, %v", u, err)
	}
	if err := s.SetComment(before.ID, "a comment that does not fit"); err != nil && !errors.Is(err, ErrFull) {
		t.Errorf("SetComment on a full disk: %v, want nil or ErrFull", err)
	}

	free()
	if _, err := s.Register("after", cert(99)); err != nil {
		t.Fatalf("writing after space was freed: %v", err)
	}
	var check string
	if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	for _, name := range append(stored, "before", "after") {
		if _, err := s.UserByName(name); err != nil {
			t.Errorf("user %s lost: %v", name, err)
		}
	}
}
