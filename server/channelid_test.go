package server_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// A configuration a test edits between restarts: Hall has a subchannel,
// Side has the highest id.
const idsV1 = `[server]
default_channel = "Lobby"

[[channel]]
name = "Lobby"

[[channel]]
name = "Hall"

[[channel.channel]]
name = "Gallery"

[[channel]]
name = "Side"
`

func writeConfig(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// channelIDs maps the names of the channels p sees to their ids.
func channelIDs(p *peer) map[string]uint32 {
	out := map[string]uint32{}
	for id, ch := range p.Channels() {
		out[ch.GetName()] = id
	}
	return out
}

// nameOf is the name of the channel p sees with id, or "" if none.
func nameOf(p *peer, id uint32) string {
	if ch, ok := p.Channels()[id]; ok {
		return ch.GetName()
	}
	return ""
}

// listenedNames waits until p's own state shows n listened channels and
// returns their names, sorted.
func listenedNames(p *peer, n int) []string {
	p.t.Helper()
	p.waitFor("listened channels", func(c *client.Client) bool {
		return len(c.Users()[p.Session()].GetListeningChannelAdd()) == n
	})
	var names []string
	for _, id := range p.Users()[p.Session()].GetListeningChannelAdd() {
		names = append(names, nameOf(p, id))
	}
	slices.Sort(names)
	return names
}

func listenTo(p *peer, names ...string) {
	p.t.Helper()
	var ids []uint32
	for _, n := range names {
		ids = append(ids, p.channelID(n))
	}
	p.Send(&mumblepb.UserState{ListeningChannelAdd: ids})
	listenedNames(p, len(ids)) // stored before it is shown
}

func whereIs(p *peer) string {
	return nameOf(p, p.Users()[p.Session()].GetChannelId())
}

// TestChannelIdentitySurvivesAnInsertionAcrossRestart: channels inserted
// above others in the file while the server is stopped change no id, so a
// registered user returns to the channel they left and listens to the
// channels they listened to, by name.
func TestChannelIdentitySurvivesAnInsertionAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	certs := registerUsers(t, dataDir, "alice")
	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice := s.join(t, "alice", as(certs["alice"]))
	before := channelIDs(alice)
	alice.moveTo("Gallery")
	listenTo(alice, "Side", "Hall")
	s.stop()

	writeConfig(t, path, `[server]
default_channel = "Lobby"

[[channel]]
name = "Welcome"

[[channel]]
name = "Lobby"

[[channel]]
name = "Annex"

[[channel]]
name = "Hall"

[[channel.channel]]
name = "Intro"

[[channel.channel]]
name = "Gallery"

[[channel]]
name = "Side"
`)
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice = s.join(t, "alice", as(certs["alice"]))
	if got := whereIs(alice); got != "Gallery" {
		t.Errorf("alice returned to %q, want Gallery", got)
	}
	if got := listenedNames(alice, 2); !slices.Equal(got, []string{"Hall", "Side"}) {
		t.Errorf("alice listens to %q, want Hall and Side", got)
	}
	after := channelIDs(alice)
	for name, id := range before {
		if after[name] != id {
			t.Errorf("%s had id %d, now %d", name, id, after[name])
		}
	}
	old := map[uint32]bool{}
	for _, id := range before {
		old[id] = true
	}
	for _, name := range []string{"Welcome", "Annex", "Intro"} {
		if old[after[name]] {
			t.Errorf("new channel %s got id %d, which another channel had", name, after[name])
		}
	}
}

// TestRemovedChannelIDIsNeverReused: a channel removed from the file while
// the server is stopped takes its id with it; a channel added at the same
// time gets another, and a user whose last channel it was starts in the
// default channel, not in the newcomer.
func TestRemovedChannelIDIsNeverReused(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	certs := registerUsers(t, dataDir, "alice")
	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice := s.join(t, "alice", as(certs["alice"]))
	side := alice.channelID("Side")
	alice.moveTo("Side")
	listenTo(alice, "Side")
	s.stop()

	writeConfig(t, path, `[server]
default_channel = "Lobby"

[[channel]]
name = "Lobby"

[[channel]]
name = "Hall"

[[channel.channel]]
name = "Gallery"

[[channel]]
name = "Other"
`)
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice = s.join(t, "alice", as(certs["alice"]))
	if got := alice.channelID("Other"); got == side {
		t.Errorf("Other got the id %d of the removed channel Side", got)
	}
	if got := whereIs(alice); got != "Lobby" {
		t.Errorf("alice, last in the removed Side, starts in %q, want the default channel Lobby", got)
	}
	syncControl(t, alice) // restored listeners would have come by now
	if got := alice.Users()[alice.Session()].GetListeningChannelAdd(); len(got) != 0 {
		t.Errorf("alice listens to %v after her listened channel was removed", got)
	}
}

// TestReloadKeepsIDsAndNeverReusesOne: a live reload that inserts channels
// leaves every existing id alone; one that removes the channel with the
// highest id and adds another does not give it that id.
func TestReloadKeepsIDsAndNeverReusesOne(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	watcher := s.join(t, "watcher", nil)
	before := channelIDs(watcher)

	writeConfig(t, path, "[[channel]]\nname = \"First\"\n\n"+idsV1)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	watcher.waitFor("First", func(c *client.Client) bool { _, ok := channelByName(c, "First"); return ok })
	after := channelIDs(watcher)
	for name, id := range before {
		if after[name] != id {
			t.Errorf("reload changed %s from %d to %d", name, id, after[name])
		}
	}

	side := before["Side"]
	writeConfig(t, path, "[[channel]]\nname = \"Lobby\"\n\n[[channel]]\nname = \"Hall\"\n\n[[channel]]\nname = \"Newer\"\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	watcher.waitFor("Newer", func(c *client.Client) bool { _, ok := channelByName(c, "Newer"); return ok })
	if got := watcher.channelID("Newer"); got == side || got == after["First"] || got == before["Gallery"] {
		t.Errorf("Newer got id %d, which a removed channel had (%v)", got, after)
	}
}

// TestClientRenameAndMoveKeepTheID: channels renamed or moved from a
// client keep their ids across a restart, even with a channel inserted
// above them in the file meanwhile.
func TestClientRenameAndMoveKeepTheID(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	certs := registerUsers(t, dataDir, "alice", "admin")
	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir, policy: grantAll{}})
	admin := s.join(t, "admin", as(certs["admin"]))
	alice := s.join(t, "alice", as(certs["alice"]))
	before := channelIDs(admin)
	alice.moveTo("Gallery")

	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(before["Hall"]), Name: proto.String("Main hall")})
	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(before["Side"]), Parent: proto.Uint32(before["Lobby"])})
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Created")})
	waitFile(t, path, "the edits", func(c *conf.Config) bool {
		return c.Lookup("Main hall/Gallery") != nil && c.Lookup("Lobby/Side") != nil && c.Lookup("Created") != nil
	})
	// The file is written before clients are told.
	admin.waitFor("Created", func(c *client.Client) bool { _, ok := channelByName(c, "Created"); return ok })
	created := admin.channelID("Created")
	s.stop()

	// The admin inserts a channel at the top of the file the server wrote.
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Channels = append([]conf.Channel{{Name: "Top"}}, cfg.Channels...)
	if err := conf.WriteFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir, policy: grantAll{}})
	alice = s.join(t, "alice", as(certs["alice"]))
	after := channelIDs(alice)
	for old, now := range map[string]string{"Hall": "Main hall", "Side": "Side", "Gallery": "Gallery", "Lobby": "Lobby"} {
		if after[now] != before[old] {
			t.Errorf("%s (was %s, id %d) has id %d after the restart", now, old, before[old], after[now])
		}
	}
	if after["Created"] != created {
		t.Errorf("Created had id %d, now %d", created, after["Created"])
	}
	if got := whereIs(alice); got != "Gallery" {
		t.Errorf("alice returned to %q, want Gallery (below the renamed hall)", got)
	}
}

// TestTemporaryChannelIDsAreNotReused: ids of temporary channels come from
// the same sequence, during a run and across a restart.
func TestTemporaryChannelIDsAreNotReused(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	certs := registerUsers(t, dataDir, "alice")
	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir, policy: grantAll{}})
	alice := s.join(t, "alice", as(certs["alice"]))
	watcher := s.join(t, "watcher", nil)
	var used []uint32
	for _, name := range []string{"tmp 1", "tmp 2"} {
		alice.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(name), Temporary: proto.Bool(true)})
		watcher.waitFor(name, func(c *client.Client) bool { _, ok := channelByName(c, name); return ok })
		used = append(used, watcher.channelID(name))
		alice.moveTo("Lobby", watcher) // the temporary channel empties and goes
		watcher.waitFor(name+" removed", func(c *client.Client) bool { _, ok := channelByName(c, name); return !ok })
	}
	if used[0] == used[1] {
		t.Errorf("the second temporary channel got the first one's id %d", used[0])
	}
	s.stop()

	writeConfig(t, path, idsV1+"\n[[channel]]\nname = \"Later\"\n")
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	watcher = s.join(t, "watcher", nil)
	if got := watcher.channelID("Later"); slices.Contains(used, got) {
		t.Errorf("Later got id %d, which a temporary channel had (%v)", got, used)
	}
}

// TestRememberChannelOff: with remember_channel = false a registered user
// starts in the default channel; with the default they return.
func TestRememberChannelOff(t *testing.T) {
	for _, remember := range []bool{false, true} {
		dir := t.TempDir()
		path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
		certs := registerUsers(t, dataDir, "alice")
		data := idsV1
		if !remember {
			data = "[server]\nremember_channel = false\n" + idsV1[len("[server]\n"):]
		}
		writeConfig(t, path, data)
		s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
		alice := s.join(t, "alice", as(certs["alice"]))
		alice.moveTo("Hall")
		s.stop()
		s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
		alice = s.join(t, "alice", as(certs["alice"]))
		want := "Hall"
		if !remember {
			want = "Lobby"
		}
		if got := whereIs(alice); got != want {
			t.Errorf("remember_channel = %v: alice starts in %q, want %q", remember, got, want)
		}
	}
}

// TestDatabaseFromBeforeChannelIDs: a database written before channel ids
// were recorded (schema 1) is migrated, and its users' last channels keep
// meaning the channels the old numbering (file order) gave.
func TestDatabaseFromBeforeChannelIDs(t *testing.T) {
	dir := t.TempDir()
	path, dataDir := filepath.Join(dir, "plenary.toml"), t.TempDir()
	certs := registerUsers(t, dataDir, "alice")
	dbPath := filepath.Join(dataDir, "plenum.db")
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByName("alice")
	if err != nil {
		t.Fatal(err)
	}
	// In file order Lobby was 1, Hall 2, Gallery 3, Side 4.
	if err := st.SetLastSeen(u.ID, time.Now(), 3); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Schema 1 is today's schema without the channel tables (schema 2) and
	// the external users (schema 3).
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE channel_ids`, `DROP TABLE channel_seq`, `DROP TABLE external_users`, `UPDATE schema_version SET version = 1`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	writeConfig(t, path, idsV1)
	s := startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice := s.join(t, "alice", as(certs["alice"]))
	if got := whereIs(alice); got != "Gallery" {
		t.Fatalf("after the migration alice starts in %q, want Gallery (id 3 in file order)", got)
	}
	s.stop()
	writeConfig(t, path, "[[channel]]\nname = \"Inserted\"\n\n"+idsV1)
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	alice = s.join(t, "alice", as(certs["alice"]))
	if got := whereIs(alice); got != "Gallery" {
		t.Errorf("with a channel inserted above, alice starts in %q, want Gallery", got)
	}
}
