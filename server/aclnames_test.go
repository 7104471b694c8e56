package server_test

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// namesConfig names people by the names they will register under, as
// the README's "Preparing a plenary" does: the chairs may mute anyone,
// mod-ben may move anyone.
const namesConfig = `[server]
default_channel = "Lobby"

[groups.chairs]
add = ["chair-anna", "chair-david"]

[[acl]]
group = "chairs"
allow = ["MuteDeafen"]

[[acl]]
user = "mod-ben"
allow = ["Move"]

[[channel]]
name = "Lobby"

[[channel]]
name = "Hall"
`

// namesServer runs a server on namesConfig in a file, with dataDir's
// database and a SuperUser password, and logs SuperUser in.
func namesServer(t *testing.T, path, dataDir string) (s *testServer, su *peer) {
	t.Helper()
	s = startTestServer(t, testOpts{configFile: path, dataDir: dataDir})
	return s, joinSuperUser(t, s)
}

// fileNames are the names the file at path lists in the chairs group and
// in the root's user entries.
func fileNames(c *conf.Config) (chairs, users []string) {
	if g := c.Groups["chairs"]; g != nil {
		chairs = g.Add
	}
	for _, e := range c.ACL {
		if e.User != "" {
			users = append(users, e.User)
		}
	}
	return chairs, users
}

// rootACLText describes the root's groups and ACL entries of c, for
// comparing two versions of the file.
func rootACLText(c *conf.Config) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c.Groups)) {
		g := c.Groups[name]
		fmt.Fprintf(&b, "group %s inherit=%v inheritable=%v add=%q remove=%q\n", name, g.Inherits(), g.IsInheritable(), g.Add, g.Remove)
	}
	for _, e := range c.ACL {
		allow, deny := e.Permissions()
		fmt.Fprintf(&b, "acl user=%q group=%q here=%v subs=%v allow=%v deny=%v\n", e.User, e.Group, e.Here(), e.Subs(), allow, deny)
	}
	return b.String()
}

// registerOnline has SuperUser register p (who is online with a
// certificate) and waits until p sees itself registered.
func registerOnline(su, p *peer) uint32 {
	p.t.Helper()
	su.Send(&mumblepb.UserState{Session: proto.Uint32(p.Session()), UserId: proto.Uint32(0)})
	var id uint32
	p.waitFor("registered", func(c *client.Client) bool {
		u := c.Users()[p.Session()]
		id = u.GetUserId()
		return u.UserId != nil && id > 0 && id != 0xFFFFFFFF
	})
	return id
}

// editUnrelated makes an edit from a client that has nothing to do with
// users (a channel description) and waits until the file holds it.
func editUnrelated(t *testing.T, su *peer, path, text string) *conf.Config {
	t.Helper()
	su.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(su.channelID("Hall")), Description: proto.String(text)})
	return waitFile(t, path, "the description "+text, func(c *conf.Config) bool {
		h := c.Lookup("Hall")
		return h != nil && h.Description == text
	})
}

// TestRegisteringAListedNameGivesItsRightsAtOnce is the README's flow:
// the file lists the chair before she is registered; she connects,
// SuperUser registers her from a client, and she may mute at once,
// without reconnecting, and her client is told.
func TestRegisteringAListedNameGivesItsRightsAtOnce(t *testing.T) {
	_, path := fileConfig(t, namesConfig)
	s, su := namesServer(t, path, t.TempDir())
	anna := s.join(t, "chair-anna", withCert(t))
	member := s.join(t, "member", nil)
	lobby := anna.channelID("Lobby")
	if got := askPermissions(anna, lobby); got.Has(acl.MuteDeafen) {
		t.Fatalf("before her registration chair-anna has %v", got)
	}
	queries := len(messagesOf[*mumblepb.PermissionQuery](anna))

	registerOnline(su, anna)
	anna.waitFor("her client told her new permissions", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.PermissionQuery](anna)[queries:] {
			if m.GetFlush() && acl.Permission(m.GetPermissions()).Has(acl.MuteDeafen) {
				return true
			}
		}
		return false
	})
	if got := askPermissions(anna, lobby); !got.Has(acl.MuteDeafen) {
		t.Errorf("registered chair-anna has %v in Lobby, want MuteDeafen", got)
	}
	anna.Send(&mumblepb.UserState{Session: proto.Uint32(member.Session()), Mute: proto.Bool(true)})
	member.waitFor("muted by the chair", func(c *client.Client) bool { return c.Users()[member.Session()].GetMute() })
}

// TestWriteBackKeepsUnregisteredNames: an edit from a client writes the
// file back; names nobody has registered yet stay in it, beside those
// registered meanwhile.
func TestWriteBackKeepsUnregisteredNames(t *testing.T) {
	_, path := fileConfig(t, namesConfig)
	s, su := namesServer(t, path, t.TempDir())
	anna := s.join(t, "chair-anna", withCert(t))
	registerOnline(su, anna)

	file := editUnrelated(t, su, path, "the hall")
	chairs, users := fileNames(file)
	if !slices.Equal(chairs, []string{"chair-anna", "chair-david"}) || !slices.Equal(users, []string{"mod-ben"}) {
		t.Errorf("after a write-back the file lists chairs %q and user entries %q, want [chair-anna chair-david] and [mod-ben]", chairs, users)
	}
}

// TestRenamedUserKeepsTheirRights: renaming a registered user in the
// client's user list rewrites the file with the new name, so the rights
// survive a restart and do not pass to whoever registers the old name;
// renaming someone to a name the file lists gives them its rights.
func TestRenamedUserKeepsTheirRights(t *testing.T) {
	_, path := fileConfig(t, namesConfig)
	dataDir := t.TempDir()
	certs := registerUsers(t, dataDir, "mod-ben", "dave")
	s, su := namesServer(t, path, dataDir)
	ben := s.join(t, "mod-ben", as(certs["mod-ben"]))
	dave := s.join(t, "dave", as(certs["dave"]))
	benID, daveID := ben.Users()[ben.Session()].GetUserId(), dave.Users()[dave.Session()].GetUserId()
	lobby := ben.channelID("Lobby")
	if got := askPermissions(dave, lobby); got.Has(acl.MuteDeafen) {
		t.Fatalf("dave has %v before being renamed", got)
	}

	su.Send(&mumblepb.UserList{Users: []*mumblepb.UserList_User{
		{UserId: proto.Uint32(benID), Name: proto.String("mod-benjamin")},
		{UserId: proto.Uint32(daveID), Name: proto.String("chair-david")},
	}})
	waitFile(t, path, "the new name", func(c *conf.Config) bool {
		_, users := fileNames(c)
		return slices.Equal(users, []string{"mod-benjamin"})
	})
	// dave, now chair-david, is a chair at once.
	dave.waitFor("chair-david's new permissions", func(*client.Client) bool {
		qs := messagesOf[*mumblepb.PermissionQuery](dave)
		return len(qs) > 0 && qs[len(qs)-1].GetFlush() && acl.Permission(qs[len(qs)-1].GetPermissions()).Has(acl.MuteDeafen)
	})
	file, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if chairs, _ := fileNames(file); !slices.Equal(chairs, []string{"chair-anna", "chair-david"}) {
		t.Errorf("chairs in the file: %q", chairs)
	}
	if got := askPermissions(ben, lobby); !got.Has(acl.Move) {
		t.Errorf("renamed, mod-benjamin has %v, want Move", got)
	}
	// Someone registering under the old name (ben, still online under
	// it, leaves first) gets nothing from it, now or after a restart.
	ben.Close()
	su.waitFor("ben gone", func(c *client.Client) bool { _, ok := c.Users()[ben.Session()]; return !ok })
	impostorCert := withCert(t)
	impostor := s.join(t, "mod-ben", impostorCert)
	registerOnline(su, impostor)
	if got := askPermissions(impostor, lobby); got.Has(acl.Move) {
		t.Errorf("a new registration under the old name mod-ben has %v", got)
	}

	dave.Close()
	impostor.Close()
	s.stop()
	s, _ = namesServer(t, path, dataDir)
	ben = s.join(t, "mod-ben", as(certs["mod-ben"]))
	if got := ben.Users()[ben.Session()].GetName(); got != "mod-benjamin" {
		t.Errorf("after the restart ben is %q", got)
	}
	if got := askPermissions(ben, lobby); !got.Has(acl.Move) {
		t.Errorf("after the restart mod-benjamin has %v, want Move", got)
	}
	impostor = s.join(t, "mod-ben", impostorCert)
	if got := askPermissions(impostor, lobby); got.Has(acl.Move) {
		t.Errorf("after the restart the new mod-ben has %v", got)
	}
}

// TestDeletedRegistrationLeavesTheNameInTheFile: deleting a registration
// does not edit the admin's file; the name matches nobody until someone
// registers under it again.
func TestDeletedRegistrationLeavesTheNameInTheFile(t *testing.T) {
	_, path := fileConfig(t, namesConfig)
	dataDir := t.TempDir()
	certs := registerUsers(t, dataDir, "chair-anna")
	s, su := namesServer(t, path, dataDir)
	anna := s.join(t, "chair-anna", as(certs["chair-anna"]))
	id := anna.Users()[anna.Session()].GetUserId()
	lobby := anna.channelID("Lobby")
	if got := askPermissions(anna, lobby); !got.Has(acl.MuteDeafen) {
		t.Fatalf("registered chair-anna has %v", got)
	}

	su.Send(&mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: proto.Uint32(id)}}})
	anna.waitFor("unregistered", func(c *client.Client) bool { return c.Users()[anna.Session()].GetUserId() == 0xFFFFFFFF })
	if got := askPermissions(anna, lobby); got.Has(acl.MuteDeafen) {
		t.Errorf("after her registration was deleted chair-anna has %v", got)
	}
	file := editUnrelated(t, su, path, "after the deletion")
	if chairs, users := fileNames(file); !slices.Equal(chairs, []string{"chair-anna", "chair-david"}) || !slices.Equal(users, []string{"mod-ben"}) {
		t.Errorf("after deleting chair-anna's registration the file lists chairs %q and user entries %q", chairs, users)
	}
	// Registered again (a new id), she is a chair again.
	registerOnline(su, anna)
	if got := askPermissions(anna, lobby); !got.Has(acl.MuteDeafen) {
		t.Errorf("registered again, chair-anna has %v", got)
	}
}

// editorSave is the ACL message the Mumble client's ACL editor sends when
// it is saved unchanged after reply (ACLEditor::accept): its own entries,
// and its groups unless they are plain inherited ones; user ids the
// client holds as negative numbers (names it is still looking up) are
// left out.
func editorSave(reply *mumblepb.ACL) *mumblepb.ACL {
	out := &mumblepb.ACL{ChannelId: reply.ChannelId, InheritAcls: reply.InheritAcls}
	for _, e := range reply.Acls {
		if e.GetInherited() || (e.UserId != nil && int32(e.GetUserId()) < -1) {
			continue
		}
		out.Acls = append(out.Acls, &mumblepb.ACL_ChanACL{ApplyHere: e.ApplyHere, ApplySubs: e.ApplySubs,
			UserId: e.UserId, Group: e.Group, Grant: e.Grant, Deny: e.Deny})
	}
	for _, g := range reply.Groups {
		if g.GetInherited() && g.GetInherit() && g.GetInheritable() && len(g.Add) == 0 && len(g.Remove) == 0 {
			continue
		}
		ng := &mumblepb.ACL_ChanGroup{Name: g.Name, Inherit: g.Inherit, Inheritable: g.Inheritable}
		for _, id := range g.Add {
			if int32(id) >= 0 {
				ng.Add = append(ng.Add, id)
			}
		}
		for _, id := range g.Remove {
			if int32(id) >= 0 {
				ng.Remove = append(ng.Remove, id)
			}
		}
		out.Groups = append(out.Groups, ng)
	}
	return out
}

// lookedUp waits for the QueryUsers answers p has after skip to name
// every id in ids, and returns the names by id.
func lookedUp(p *peer, skip int, ids []uint32) map[uint32]string {
	p.t.Helper()
	names := map[uint32]string{}
	p.waitFor("user names", func(*client.Client) bool {
		for _, q := range messagesOf[*mumblepb.QueryUsers](p)[skip:] {
			for i := range min(len(q.Ids), len(q.Names)) {
				names[q.Ids[i]] = q.Names[i]
			}
		}
		for _, id := range ids {
			if names[id] == "" {
				return false
			}
		}
		return true
	})
	return names
}

// TestACLEditorShowsAndKeepsUnregisteredNames: the ACL editor shows the
// entries for names nobody has registered yet, named; saving it
// unchanged keeps them, and an admin may add an entry for such a name.
func TestACLEditorShowsAndKeepsUnregisteredNames(t *testing.T) {
	_, path := fileConfig(t, namesConfig)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, su := namesServer(t, path, t.TempDir())
	skip := len(messagesOf[*mumblepb.QueryUsers](su))
	reply := queryACL(su, 0)

	var ids []uint32
	var benEntry *mumblepb.ACL_ChanACL
	for _, e := range reply.Acls {
		if e.UserId != nil {
			benEntry = e
			ids = append(ids, e.GetUserId())
		}
	}
	var chairs *mumblepb.ACL_ChanGroup
	for _, g := range reply.Groups {
		if g.GetName() == "chairs" {
			chairs = g
		}
	}
	if benEntry == nil || chairs == nil || len(chairs.Add) != 2 {
		t.Fatalf("the editor is not shown the unregistered names' entries: %v", reply)
	}
	ids = append(ids, chairs.Add...)
	for _, id := range ids {
		if int32(id) < 0 {
			t.Errorf("user id %#x: the Mumble client holds it as a negative number and drops it on saving", id)
		}
	}
	names := lookedUp(su, skip, ids)
	if got := names[benEntry.GetUserId()]; got != "mod-ben" {
		t.Errorf("the user entry is shown as %q, want mod-ben", got)
	}
	if got := []string{names[chairs.Add[0]], names[chairs.Add[1]]}; !slices.Equal(got, []string{"chair-anna", "chair-david"}) &&
		!slices.Equal(got, []string{"chair-david", "chair-anna"}) {
		t.Errorf("the chairs are shown as %q", got)
	}

	// Saved unchanged: the file says what it said.
	su.Send(editorSave(reply))
	aclBarrier(su, 0)
	file := editUnrelated(t, su, path, "saved")
	orig, err := conf.Parse(before, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rootACLText(file), rootACLText(orig); got != want {
		t.Errorf("after saving the editor unchanged the root's groups and ACL are\n%s\nwant\n%s", got, want)
	}

	// A name the file lists may be looked up and given an entry of its
	// own before anyone registered it; a name it does not list may not.
	skip = len(messagesOf[*mumblepb.QueryUsers](su))
	su.Send(&mumblepb.QueryUsers{Names: []string{"chair-david"}})
	var david uint32
	su.waitFor("chair-david looked up", func(*client.Client) bool {
		for _, q := range messagesOf[*mumblepb.QueryUsers](su)[skip:] {
			if len(q.Names) == 1 && q.Names[0] == "chair-david" && len(q.Ids) == 1 {
				david = q.Ids[0]
				return true
			}
		}
		return false
	})
	hall := su.channelID("Hall")
	su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(hall), InheritAcls: proto.Bool(true), Acls: []*mumblepb.ACL_ChanACL{
		{UserId: proto.Uint32(david), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Grant: proto.Uint32(uint32(acl.Write))},
	}})
	waitFile(t, path, "chair-david's entry in Hall", func(c *conf.Config) bool {
		h := c.Lookup("Hall")
		return h != nil && len(h.ACL) == 1 && h.ACL[0].User == "chair-david"
	})
	// Nobody else learns which names the file lists.
	member := s.join(t, "member", nil)
	member.Send(&mumblepb.QueryUsers{Names: []string{"chair-david"}, Ids: []uint32{david}})
	member.waitFor("the answer", func(*client.Client) bool { return len(messagesOf[*mumblepb.QueryUsers](member)) > 0 })
	if q := messagesOf[*mumblepb.QueryUsers](member)[0]; len(q.Ids) != 0 || len(q.Names) != 0 {
		t.Errorf("a plain member's query for an unregistered name is answered %v", q)
	}
}
