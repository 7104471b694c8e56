package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cert returns a distinct valid certificate hash for n.
func cert(n int) string { return fmt.Sprintf("%040x", n+1) }

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plenum.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenPragmasAndSuperUser(t *testing.T) {
	s, _ := openTemp(t)
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "secure_delete": "1"} {
		var got string
		if err := s.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
	su, err := s.UserByID(SuperUserID)
	if err != nil {
		t.Fatal(err)
	}
	if su.Name != "SuperUser" || su.CertHash != "" {
		t.Errorf("SuperUser row = %+v", su)
	}
	if has, err := s.HasPassword(0); err != nil || has {
		t.Errorf("HasPassword(0) = %v, %v; want false on a new database", has, err)
	}
	if err := s.Delete(0); !errors.Is(err, ErrSuperUser) {
		t.Errorf("Delete(0) = %v, want ErrSuperUser", err)
	}
	if err := s.Rename(0, "Admin"); !errors.Is(err, ErrSuperUser) {
		t.Errorf("Rename(0) = %v, want ErrSuperUser", err)
	}
	if _, err := s.Register("superUSER", cert(1)); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Register(superUSER) = %v, want ErrNameTaken", err)
	}
	if _, err := s.UserByCert(""); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByCert(\"\") = %v, want ErrNotFound", err)
	}
}

// TestNameKey: two names share a key exactly when they are equal
// ignoring case, as logins compare them.
func TestNameKey(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"chair-anna", "Chair-Anna", true},
		{"kelvin", "\u212Aelvin", true}, // KELVIN SIGN folds to k
		{"straße", "STRASSE", false},    // not a simple fold
		{"anna", "anna ", false},
	} {
		if got := NameKey(c.a) == NameKey(c.b); got != c.same || strings.EqualFold(c.a, c.b) != c.same {
			t.Errorf("NameKey(%q) == NameKey(%q) is %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func TestRegisterLookupRenameDelete(t *testing.T) {
	s, _ := openTemp(t)
	alice, err := s.Register("Alice", strings.ToUpper(cert(1)))
	if err != nil {
		t.Fatal(err)
	}
	if alice.ID != 1 || alice.CertHash != cert(1) {
		t.Fatalf("first user = %+v, want id 1 and a lowercased hash", alice)
	}
	bob, err := s.Register("Bob", cert(2))
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID != 2 {
		t.Errorf("second id = %d", bob.ID)
	}

	for _, tc := range []struct {
		name, cert string
		want       error
	}{
		{"alice", cert(3), ErrNameTaken},
		{"ALICE", cert(3), ErrNameTaken},
		{"Carol", cert(1), ErrCertTaken},
		{"Carol", strings.ToUpper(cert(2)), ErrCertTaken},
		{"", cert(3), ErrInvalid},
		{"Carol", "", ErrInvalid},
		{"Carol", "xyz", ErrInvalid},
		{strings.Repeat("a", MaxNameLength+1), cert(3), ErrInvalid},
	} {
		if _, err := s.Register(tc.name, tc.cert); !errors.Is(err, tc.want) {
			t.Errorf("Register(%q, %q) = %v, want %v", tc.name, tc.cert, err, tc.want)
		}
	}
	// Case folding beyond ASCII.
	if _, err := s.Register("Ärger", cert(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register("äRGER", cert(11)); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Register(äRGER) = %v, want ErrNameTaken", err)
	}
	if _, err := s.Register("Kai", cert(12)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register("\u212Aai", cert(13)); !errors.Is(err, ErrNameTaken) { // Kelvin sign
		t.Errorf("Register(Kelvin-sign Kai) = %v, want ErrNameTaken", err)
	}

	for _, name := range []string{"alice", "ALICE", "Alice"} {
		u, err := s.UserByName(name)
		if err != nil || u.ID != alice.ID || u.Name != "Alice" {
			t.Errorf("UserByName(%q) = %+v, %v", name, u, err)
		}
	}
	if u, err := s.UserByCert(strings.ToUpper(cert(2))); err != nil || u.ID != bob.ID {
		t.Errorf("UserByCert = %+v, %v", u, err)
	}
	if _, err := s.UserByName("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByName(nobody) = %v", err)
	}
	if _, err := s.UserByID(99); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByID(99) = %v", err)
	}

	// Rename: conflicts ignore case, own case change is fine.
	if err := s.Rename(bob.ID, "aLiCe"); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Rename to aLiCe = %v, want ErrNameTaken", err)
	}
	if err := s.Rename(bob.ID, "BOB"); err != nil {
		t.Errorf("Rename to own name in other case: %v", err)
	}
	if err := s.Rename(bob.ID, "Robert"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByName("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old name still found: %v", err)
	}
	if u, err := s.UserByName("robert"); err != nil || u.ID != bob.ID {
		t.Errorf("UserByName(robert) = %+v, %v", u, err)
	}
	if err := s.Rename(99, "Ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rename(99) = %v", err)
	}

	// Users: all, filtered, ordered by id.
	all, err := s.Users("")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, u := range all {
		ids = append(ids, u.ID)
	}
	if !slices.Equal(ids, []int64{0, 1, 2, 3, 4}) {
		t.Errorf("Users() ids = %v", ids)
	}
	some, err := s.Users("ER")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range some {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"SuperUser", "Robert", "Ärger"}) {
		t.Errorf("Users(ER) = %v", names)
	}
	if some, _ := s.Users("ÄR"); len(some) != 1 {
		t.Errorf("Users(ÄR) found %d users, want 1", len(some))
	}

	// Delete frees the name and the cert, and the id is not reused.
	if err := s.SetListeners(alice.ID, []uint32{5}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(alice.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v", err)
	}
	if _, err := s.UserByID(alice.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user found: %v", err)
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM listeners WHERE user_id = ?`, alice.ID).Scan(&n)
	if n != 0 {
		t.Errorf("deleted user's listeners remain: %d", n)
	}
	again, err := s.Register("alice", cert(1))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID <= 4 {
		t.Errorf("re-registration got id %d, want a new id", again.ID)
	}
}

func TestUserData(t *testing.T) {
	s, _ := openTemp(t)
	u, err := s.Register("Dana", cert(1))
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))
	if err := s.SetComment(u.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTexture(u.ID, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastSeen(u.ID, seen, 42); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByID(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Comment != "hello" || !bytes.Equal(got.Texture, []byte{1, 2, 3}) || got.LastChannel != 42 ||
		!got.LastSeen.Equal(seen.Truncate(time.Second)) || got.LastSeen.Location() != time.UTC {
		t.Errorf("user data = %+v", got)
	}
	if err := s.SetTexture(u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(u.ID); got.Texture != nil {
		t.Errorf("texture not cleared: %v", got.Texture)
	}
	for _, err := range []error{
		s.SetComment(99, "x"), s.SetTexture(99, []byte{1}), s.SetLastSeen(99, seen, 1),
		s.SetListeners(99, []uint32{1}), s.SetPassword(99, "x"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("write to missing user = %v, want ErrNotFound", err)
		}
	}

	// Listeners.
	if err := s.SetListeners(u.ID, []uint32{7, 3, 7, 4294967295}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Listeners(u.ID); err != nil || !slices.Equal(l, []uint32{3, 7, 4294967295}) {
		t.Errorf("Listeners = %v, %v", l, err)
	}
	if err := s.SetListeners(u.ID, []uint32{9}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Listeners(u.ID); !slices.Equal(l, []uint32{9}) {
		t.Errorf("Listeners after replace = %v", l)
	}
	if _, err := s.Listeners(99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Listeners(99) = %v", err)
	}
	// Removing channel 9 (also the last channel after this) forgets it.
	if err := s.SetLastSeen(u.ID, seen, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetChannel(9); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Listeners(u.ID); len(l) != 0 {
		t.Errorf("Listeners after ForgetChannel = %v", l)
	}
	if got, _ := s.UserByID(u.ID); got.LastChannel != 0 {
		t.Errorf("LastChannel after ForgetChannel = %d", got.LastChannel)
	}
}

func TestPasswords(t *testing.T) {
	s, path := openTemp(t)
	a, _ := s.Register("Erin", cert(1))
	b, _ := s.Register("Finn", cert(2))
	const pw = "correct-horse-battery-staple"

	if ok, err := s.CheckPassword(a.ID, pw); err != nil || ok {
		t.Errorf("CheckPassword without password = %v, %v", ok, err)
	}
	if ok, err := s.CheckPassword(a.ID, ""); err != nil || ok {
		t.Errorf("CheckPassword(\"\") without password = %v, %v", ok, err)
	}
	for _, id := range []int64{0, a.ID, b.ID} {
		if err := s.SetPassword(id, pw); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{0, a.ID, b.ID} {
		if has, err := s.HasPassword(id); err != nil || !has {
			t.Errorf("HasPassword(%d) = %v, %v", id, has, err)
		}
		if ok, err := s.CheckPassword(id, pw); err != nil || !ok {
			t.Errorf("CheckPassword(%d, right) = %v, %v", id, ok, err)
		}
		for _, wrong := range []string{"", "correct-horse-battery-stapl", pw + " ", strings.ToUpper(pw)} {
			if ok, err := s.CheckPassword(id, wrong); err != nil || ok {
				t.Errorf("CheckPassword(%d, %q) = %v, %v", id, wrong, ok, err)
			}
		}
	}
	if _, err := s.CheckPassword(99, pw); !errors.Is(err, ErrNotFound) {
		t.Errorf("CheckPassword(99) = %v", err)
	}

	// The raw rows: sizes, iteration count, distinct salts and hashes,
	// and no trace of the password.
	type raw struct {
		hash, salt []byte
		iter       int
	}
	rows := map[int64]raw{}
	for _, id := range []int64{a.ID, b.ID} {
		var r raw
		var text string
		err := s.db.QueryRow(`SELECT pw_hash, pw_salt, pw_iterations,
			name || coalesce(cert_hash,'') || comment || hex(pw_hash) || hex(pw_salt) || CAST(pw_hash AS TEXT) || CAST(pw_salt AS TEXT)
			FROM users WHERE id = ?`, id).Scan(&r.hash, &r.salt, &r.iter, &text)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.hash) != keyLength || len(r.salt) < 8 || r.iter != DefaultIterations {
			t.Errorf("user %d: hash %d bytes, salt %d bytes, %d iterations", id, len(r.hash), len(r.salt), r.iter)
		}
		if strings.Contains(strings.ToLower(text), strings.ToLower(pw)) {
			t.Errorf("user %d: password appears in the row", id)
		}
		rows[id] = r
	}
	if bytes.Equal(rows[a.ID].hash, rows[b.ID].hash) || bytes.Equal(rows[a.ID].salt, rows[b.ID].salt) {
		t.Error("two users with the same password share a hash or salt")
	}
	for _, f := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(pw)) {
			t.Errorf("password in clear in %s", filepath.Base(f))
		}
	}

	// Changing and removing.
	if err := s.SetPassword(a.ID, "new"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.CheckPassword(a.ID, pw); ok {
		t.Error("old password still accepted")
	}
	if ok, _ := s.CheckPassword(a.ID, "new"); !ok {
		t.Error("new password rejected")
	}
	if err := s.SetPassword(a.ID, ""); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.HasPassword(a.ID); has {
		t.Error("password not removed")
	}
	if ok, _ := s.CheckPassword(a.ID, "new"); ok {
		t.Error("removed password accepted")
	}
}

func TestPasswordUpgrade(t *testing.T) {
	s, _ := openTemp(t)
	s.iterations = 1000
	if err := s.SetPassword(0, "pw"); err != nil {
		t.Fatal(err)
	}
	s.iterations = 3000
	if ok, _ := s.CheckPassword(0, "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	var iter int
	s.db.QueryRow(`SELECT pw_iterations FROM users WHERE id = 0`).Scan(&iter)
	if iter != 1000 {
		t.Errorf("a failed login changed the hash (%d iterations)", iter)
	}
	if ok, err := s.CheckPassword(0, "pw"); err != nil || !ok {
		t.Fatalf("CheckPassword = %v, %v", ok, err)
	}
	s.db.QueryRow(`SELECT pw_iterations FROM users WHERE id = 0`).Scan(&iter)
	if iter != 3000 {
		t.Errorf("after login the hash has %d iterations, want 3000", iter)
	}
	if ok, _ := s.CheckPassword(0, "pw"); !ok {
		t.Error("upgraded hash rejects the password")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plenum.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.Register("Gina", cert(1))
	seen := time.Unix(1700000000, 0).UTC()
	must(t, s.SetComment(u.ID, "c"))
	must(t, s.SetTexture(u.ID, []byte("tex")))
	must(t, s.SetLastSeen(u.ID, seen, 3))
	must(t, s.SetListeners(u.ID, []uint32{1, 2}))
	must(t, s.SetPassword(0, "su"))
	ban := mustBan(t, ipBan("192.0.2.0/24", cert(5)))
	must(t, s.AddBan(ban))
	must(t, s.Close())

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.UserByName("gina")
	if err != nil {
		t.Fatal(err)
	}
	want := User{ID: u.ID, Name: "Gina", CertHash: cert(1), Comment: "c", Texture: []byte("tex"), LastSeen: seen, LastChannel: 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after reopen: %+v, want %+v", got, want)
	}
	if l, _ := s.Listeners(u.ID); !slices.Equal(l, []uint32{1, 2}) {
		t.Errorf("listeners after reopen = %v", l)
	}
	if ok, _ := s.CheckPassword(0, "su"); !ok {
		t.Error("SuperUser password lost")
	}
	bans, _ := s.Bans()
	if len(bans) != 1 || bans[0] != ban {
		t.Errorf("bans after reopen = %+v, want %+v", bans, ban)
	}
	// The next id continues after reopening.
	if v, _ := s.Register("Hal", cert(2)); v.ID != u.ID+1 {
		t.Errorf("next id = %d", v.ID)
	}
}

func TestSchemaVersion(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("schema_version = %d, %v", v, err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = ?`, schemaVersion+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(path); !errors.Is(err, ErrNewerSchema) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a newer schema = %v, want ErrNewerSchema", err)
	}

	// A SQLite file that is not ours is refused, and left alone.
	other := filepath.Join(t.TempDir(), "murmur.sqlite")
	db, _ = sql.Open("sqlite", other)
	if _, err := db.Exec(`CREATE TABLE users (server_id INTEGER, user_id INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(other); !errors.Is(err, ErrForeign) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a foreign database = %v, want ErrForeign", err)
	}
}

func TestOpenPathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#y", "plenum.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at the given path: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, _ := openTemp(t)
	s.iterations = 100
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i
				u, err := s.Register(fmt.Sprintf("user%d", n), cert(n))
				if err != nil {
					errs <- err
					continue
				}
				if err := s.SetPassword(u.ID, "pw"); err != nil {
					errs <- err
				}
				if _, err := s.Users("user"); err != nil {
					errs <- err
				}
				// Everyone also races for the same name.
				if _, err := s.Register("Contested", cert(1000+n)); err != nil && !errors.Is(err, ErrNameTaken) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _ := s.Users("")
	if len(all) != 1+workers*each+1 {
		t.Errorf("%d users, want %d", len(all), 1+workers*each+1)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSetPassword(b *testing.B) {
	s, _ := openTemp(b)
	for b.Loop() {
		if err := s.SetPassword(0, "benchmark password"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	s, _ := openTemp(b)
	must(b, s.SetPassword(0, "benchmark password"))
	for b.Loop() {
		if ok, err := s.CheckPassword(0, "benchmark password"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkRegister(b *testing.B) {
	s, _ := openTemp(b)
	i := 0
	for b.Loop() {
		if _, err := s.Register(fmt.Sprintf("u%d", i), cert(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
