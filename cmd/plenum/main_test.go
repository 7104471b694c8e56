package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

func TestCheckPrintsTree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.toml")
	os.WriteFile(path, conf.DefaultTOML(), 0o644)
	var out bytes.Buffer
	if err := runCheck([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"valid", "[0] Root (root)", "[1] Lobby  (default channel)", "Plenary  (linked with Overflow)", "        [", "Room 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "note:") {
		t.Errorf("notes on the default configuration:\n%s", out.String())
	}
}

func TestCheckNotesWhatMurmurReadsOddly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.toml")
	os.WriteFile(path, []byte("[[acl]]\ngroup = \"sub,1,x\"\nallow = [\"Move\"]\n\n[[channel]]\nname = \"A\"\n[[channel.acl]]\n"+
		"group = \"!$0123456789ABCDEF0123456789ABCDEF01234567\"\nallow = [\"Kick\"]\n"), 0o644)
	var out bytes.Buffer
	if err := runCheck([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"note: " + path + `:2: acl[0].group: group "sub,1,x": "x" is not an integer (sub,a,b,c takes numbers); Murmur accepts it and reads it as 0`,
		"note: " + path + ":8: channel[0].acl[0].group: group \"!$0123456789ABCDEF0123456789ABCDEF01234567\": a certificate hash is 40 lowercase hex digits",
		"note: " + path + ":9: channel[0].acl[0].allow: Kick only takes effect in the root channel",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCheckPrintsTheServersIDs: with a data directory, check prints the
// ids recorded there (a channel inserted above keeps the others' ids),
// marks the ones a start would add, writes nothing, and says when it
// cannot know them.
func TestCheckPrintsTheServersIDs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "p.toml")
	os.WriteFile(path, conf.DefaultTOML(), 0o644)
	check := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runCheck(append(args, path), &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	wantIn := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	wantIn(check("-data", data), "no database at "+filepath.Join(data, "plenum.db"), "[1] Lobby  (default channel)", "[8] Room 4")

	// The server numbered the default file; then a channel is inserted
	// at the top.
	os.MkdirAll(data, 0o700)
	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AssignChannelIDs([]string{"Lobby", "Plenary", "Overflow", "Breakout rooms",
		"Breakout rooms/Room 1", "Breakout rooms/Room 2", "Breakout rooms/Room 3", "Breakout rooms/Room 4"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	os.WriteFile(path, append([]byte("[[channel]]\nname = \"Welcome\"\n\n"), conf.DefaultTOML()...), 0o644)
	wantIn(check("-data", data), "as recorded in", "[9] Welcome  (new id)", "[1] Lobby  (default channel)", "[2] Plenary", "[8] Room 4")
	st, err = store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := st.AssignChannelIDs(nil); ids.Paths["Welcome"] != 0 {
		t.Error("check recorded an id")
	}
	st.Close()

	// A database it cannot read: no ids, and why.
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "plenum.db"), []byte("not a database, not at all, but long enough to be read as one"), 0o600)
	wantIn(check("-data", bad), "channel ids: unknown (", "[?] Lobby")
}

// TestCheckNotesUnregisteredNames: check names the users the ACLs list
// who are not registered in the data directory.
func TestCheckNotesUnregisteredNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.toml")
	os.WriteFile(path, []byte("[groups.chairs]\nadd = [\"chair-anna\", \"chair-david\"]\n\n[[acl]]\ngroup = \"chairs\"\nallow = [\"MuteDeafen\"]\n\n"+
		"[[channel]]\nname = \"Hall\"\n[[channel.acl]]\nuser = \"Chair-Anna\"\nallow = [\"Move\"]\n[[channel.acl]]\nuser = \"mod-ben\"\nallow = [\"Move\"]\n"), 0o644)
	data := filepath.Join(dir, "data")
	check := func() string {
		t.Helper()
		var out bytes.Buffer
		if err := runCheck([]string{"-data", data, path}, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if out := check(); !strings.Contains(out, "note: no database at "+filepath.Join(data, "plenum.db")+" yet, so none of the 3 user names the ACLs list is registered") {
		t.Errorf("without a database:\n%s", out)
	}
	os.MkdirAll(data, 0o700)
	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Register("chair-anna", strings.Repeat("ab", 20)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := check()
	for _, want := range []string{
		`note: "chair-david" (in the ACL of the root channel) is not registered: the name matches nobody until someone registers under it`,
		`note: "mod-ben" (in the ACL of "Hall") is not registered`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"chair-anna" (in`) || strings.Contains(out, `"Chair-Anna" (in`) {
		t.Errorf("the registered chair-anna is noted:\n%s", out)
	}
}

func TestCheckReportsFileLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[server]\nmax_users = 0\n\n[[channel]]\nname = \"A\"\nlinks = [\"B\"]\n"), 0o644)
	err := runCheck([]string{path}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	for _, want := range []string{path + ":2: server.max_users", path + ":6: channel[0].links"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestSupwSetsSuperUserPassword(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runSupw([]string{"-data", dir, "s3cret"}, &out); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, err := st.CheckPassword(store.SuperUserID, "s3cret"); !ok || err != nil {
		t.Fatalf("password not set: %v, %v", ok, err)
	}
	if ok, _ := st.CheckPassword(store.SuperUserID, "other"); ok {
		t.Fatal("any password accepted")
	}
}
