package store

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestImportRegistrations(t *testing.T) {
	a, err := Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cert := repeat
	alice, _ := a.Register("alice", cert('a'))
	bob, _ := a.Register("bob", cert('b'))
	if err := a.SetPassword(alice.ID, "secret"); err != nil {
		t.Fatal(err)
	}
	// b registered someone else under bob's id, and has a comment for alice.
	b.Register("carol", cert('c'))
	b.Register("dave", cert('d'))
	regs, err := a.Registrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ImportRegistrations(regs); err != nil {
		t.Fatal(err)
	}
	got, err := b.Registrations()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, regs) {
		t.Fatalf("after import:\n%+v\nwant\n%+v", got, regs)
	}
	if ok, err := b.CheckPassword(alice.ID, "secret"); !ok || err != nil {
		t.Errorf("alice's password on b: %v %v", ok, err)
	}
	if u, err := b.UserByCert(cert('b')); err != nil || u.ID != bob.ID {
		t.Errorf("bob on b: %+v %v", u, err)
	}
	if _, err := b.UserByName("carol"); err == nil {
		t.Error("carol, whose id is bob's on a, is still registered on b")
	}
	// The next registration on b continues after the imported ids.
	eve, err := b.Register("eve", cert('e'))
	if err != nil || eve.ID <= bob.ID {
		t.Errorf("eve got id %d (%v), want one after %d", eve.ID, err, bob.ID)
	}
	// Swapped names import.
	a.Rename(alice.ID, "tmp")
	a.Rename(bob.ID, "alice")
	a.Rename(alice.ID, "bob")
	regs, _ = a.Registrations()
	if err := b.ImportRegistrations(regs); err != nil {
		t.Fatalf("swapped names: %v", err)
	}
	if u, _ := b.UserByName("bob"); u.ID != alice.ID {
		t.Errorf("bob is id %d on b, want %d", u.ID, alice.ID)
	}
}

func repeat(c byte) string {
	b := make([]byte, 40)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
