package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// openStore opens the running server's database beside it, as `plenum
// supw` does.
func (s *testServer) openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(s.dataDir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSelfRegistrationFollowsTheRootACL(t *testing.T) {
	// Murmur's default root ACL (in the default config) lets @all
	// SelfRegister; without it nobody may.
	open := startServer(t, nil)
	a := open.join(t, "alice", withCert(t))
	a.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), UserId: proto.Uint32(0)})
	a.waitFor("registered", func(c *client.Client) bool {
		u := c.Users()[a.Session()]
		return u.UserId != nil && u.GetUserId() > 0
	})

	closed := startServer(t, func(c *conf.Config) { c.ACL = nil })
	b := closed.join(t, "bob", withCert(t))
	b.Send(&mumblepb.UserState{Session: proto.Uint32(b.Session()), UserId: proto.Uint32(0)})
	b.waitFor("SelfRegister denied", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](b) {
			if d.GetPermission()&0x80000 != 0 {
				return true
			}
		}
		return false
	})
}

func TestRegisteredUsersAreRecognised(t *testing.T) {
	s := startAdminServer(t)
	cert := selfSignedCert(t)
	alice := func(c *client.Config) { c.Certificate = cert }
	watcher := s.join(t, "watcher", nil)
	a := s.join(t, "alice", alice)

	a.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), UserId: proto.Uint32(0)})
	var id uint32
	watcher.waitFor("registration broadcast", func(c *client.Client) bool {
		u, ok := c.Users()[a.Session()]
		id = u.GetUserId()
		return ok && u.UserId != nil && id > 0
	})
	// A registered user keeps comment and channel between sessions.
	a.Send(&mumblepb.UserState{Comment: proto.String("chair of the session")})
	a.moveTo("Plenary", watcher)
	a.Close()
	watcher.waitFor("alice gone", func(c *client.Client) bool { _, ok := c.Users()[a.Session()]; return !ok })
	// The last channel is saved just after the disconnect is handled.
	st := s.openStore(t)
	plenary := watcher.channelID("Plenary")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ru, err := st.UserByID(int64(id)); err == nil && ru.LastChannel == plenary {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last channel never saved")
		}
	}

	// Back under another name with the same certificate: the registered
	// name, id, comment and last channel come back.
	again := s.join(t, "someone-else", alice)
	me := again.Users()[again.Session()]
	if me.GetName() != "alice" || me.GetUserId() != id || me.GetComment() != "chair of the session" {
		t.Fatalf("returning registered user: %v", me)
	}
	if got, want := me.GetChannelId(), again.channelID("Plenary"); got != want {
		t.Errorf("returned to channel %d, want last channel %d", got, want)
	}
	again.Close()

	// Someone else may not take the registered name.
	wantReject(t, dialErr(s, func(c *client.Config) { c.Username = "Alice" }), mumblepb.Reject_WrongUserPW)

	// The registered-user editor lists, renames and deletes.
	watcher.Send(&mumblepb.UserList{})
	watcher.waitFor("user list", func(*client.Client) bool {
		for _, l := range messagesOf[*mumblepb.UserList](watcher) {
			for _, u := range l.Users {
				if u.GetUserId() == id && u.GetName() == "alice" {
					return true
				}
			}
		}
		return false
	})
	watcher.Send(&mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: proto.Uint32(id), Name: proto.String("anna")}}})
	watcher.Send(&mumblepb.QueryUsers{Ids: []uint32{id}})
	watcher.waitFor("renamed", func(*client.Client) bool {
		for _, q := range messagesOf[*mumblepb.QueryUsers](watcher) {
			if len(q.Names) == 1 && q.Names[0] == "anna" {
				return true
			}
		}
		return false
	})
	back := s.join(t, "x", alice)
	watcher.waitFor("back as anna", func(c *client.Client) bool { return c.Users()[back.Session()].GetName() == "anna" })
	watcher.Send(&mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: proto.Uint32(id)}}})
	watcher.waitFor("unregistered online", func(c *client.Client) bool {
		return c.Users()[back.Session()].GetUserId() == 0xFFFFFFFF
	})
}

func TestSuperUserLogsInByPasswordOnly(t *testing.T) {
	s := startServer(t, nil)
	st := s.openStore(t)
	wantReject(t, dialErr(s, func(c *client.Config) { c.Username = "SuperUser" }), mumblepb.Reject_WrongUserPW)
	if err := st.SetPassword(0, "correct horse"); err != nil { // what `plenum supw` does, server running
		t.Fatal(err)
	}
	wantReject(t, dialErr(s, func(c *client.Config) { c.Username, c.Password = "SuperUser", "wrong" }), mumblepb.Reject_WrongUserPW)
	su := s.join(t, "SuperUser", func(c *client.Config) { c.Password = "correct horse" })
	if u := su.Users()[su.Session()]; u.GetUserId() != 0 || u.UserId == nil || u.GetName() != "SuperUser" {
		t.Fatalf("SuperUser state %v", u)
	}
}

func TestBanKeepsUserOutUntilLifted(t *testing.T) {
	s := startAdminServer(t)
	mod := s.join(t, "mod", nil)
	troll := s.join(t, "troll", withCert(t))
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(troll.Session()), Ban: proto.Bool(true), Reason: proto.String("spam")})
	select {
	case <-troll.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("banned user still connected")
	}
	// Everyone here connects from 127.0.0.1, so the address ban keeps
	// any new connection out: no Reject, the connection just ends.
	if err := dialErr(s, func(c *client.Config) { c.Username = "newcomer" }); err == nil {
		t.Fatal("connected from a banned address")
	}
	mod.Send(&mumblepb.BanList{Query: proto.Bool(true)})
	mod.waitFor("ban list", func(*client.Client) bool {
		for _, l := range messagesOf[*mumblepb.BanList](mod) {
			// An unregistered user's name and hash are not kept, and the
			// address is hidden (show_addresses = false).
			if len(l.Bans) == 1 && l.Bans[0].GetReason() == "spam" && l.Bans[0].GetMask() == 128 &&
				l.Bans[0].GetHash() == "" && l.Bans[0].GetName() == "" && l.Bans[0].Address[0] == 0x20 {
				return true
			}
		}
		return false
	})
	mod.Send(&mumblepb.BanList{}) // replace with an empty list
	syncControl(t, mod)
	s.join(t, "newcomer", nil)
	// The ban list survives in the database.
	if bans, err := s.openStore(t).Bans(); err != nil || len(bans) != 0 {
		t.Fatalf("stored bans %v, %v", bans, err)
	}
}

func TestRegisteredUsersKeepTheirListeners(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "alice")
	s := startTestServer(t, testOpts{dataDir: dir})
	watcher := s.join(t, "watcher", nil)
	a := s.join(t, "alice", as(certs["alice"]))
	plenary := a.channelID("Plenary")
	a.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{plenary}})
	watcher.waitFor("listening", func(c *client.Client) bool {
		return containsID(c.Users()[a.Session()].GetListeningChannelAdd(), plenary)
	})
	a.Close()
	watcher.waitFor("alice gone", func(c *client.Client) bool { _, ok := c.Users()[a.Session()]; return !ok })
	again := s.join(t, "alice", as(certs["alice"]))
	watcher.waitFor("listening restored at login", func(c *client.Client) bool {
		return containsID(c.Users()[again.Session()].GetListeningChannelAdd(), plenary)
	})
}
