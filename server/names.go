package server

// User names in the ACL file.
//
// The file names people ("chair-anna"); the ACL engine compares user ids.
// A name the store knows becomes that user's id. A name it does not know,
// of someone listed before they register (the README's "Preparing a
// plenary") or whose registration was deleted, becomes a placeholder id
// of -2 or below from nameTable. The engine matches nobody with it
// (subjects are -1 or registered ids, and -1 marks a group entry); the
// write-back turns it into the name again, so the file keeps it; the ACL
// editor shows it under its name and gets it back unchanged. QueryUsers
// answers such a name (so an admin can also add an entry for it from the
// client) only to someone who may edit an ACL: the others do not learn
// which names the file lists.
//
// Changes of registrations keep the ACLs true to the names:
//
//   - Someone registers under a name that has a placeholder, or is
//     renamed to it: every ACL's placeholder becomes their id, and their
//     permissions are recomputed at once. The file stays as it is: it
//     names them already.
//   - A registered user is renamed: the ACLs hold the id, so the file is
//     written again with the new name (if an ACL refers to them). The old
//     name then matches nobody, also for whoever registers it next.
//   - A registration is deleted: the id becomes the placeholder of the
//     name. The file, which is the admin's, still names them; the name
//     matches nobody until someone registers under it.
//
// ACLs from the file are resolved outside s.mu (the store is on disk),
// so a registration can come between resolving and installing them. The
// table therefore records where every placeholder and every deleted id
// leads now, and an ACL passes through it (nameTable.remap) under s.mu
// whenever it is installed. Entries live, in memory only, as long as the
// process: a few names, only those the file listed and those registered,
// renamed or deleted while it runs.
//
// The Mumble client's ACL editor holds user ids as signed 32-bit numbers
// and drops negative ones when it saves (they are names it is still
// looking up), so the editor sees a placeholder as a positive id counted
// down from 0x7FFFFFFF (wireID). Registered ids are numbered up from 1
// (Murmur's, which import-murmur keeps, too) and never get near it; an id
// the client sends back is taken for a placeholder only if the table
// handed that placeholder out.

import (
	"sync"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// nameTable holds the names of the ACLs that no registered user has. It
// has its own mutex, taken under s.mu but never the other way round, and
// no I/O happens under it.
type nameTable struct {
	mu      sync.Mutex
	byKey   map[string]*listedName // by store.NameKey of the name
	byID    map[int64]*listedName  // by placeholder
	deleted map[int64]*listedName  // by the id of a deleted registration: its name
	last    int64                  // the last placeholder handed out (0: none yet)
	renames uint64                 // counts renames of registered users
}

// listedName is a name some ACL may refer to.
type listedName struct {
	name        string // as the file (or the store) last spelled it
	placeholder int64  // -2 or below
	user        int64  // the registered user who has the name now, or -1
}

// entryLocked returns the entry of name, creating it (unregistered) if
// there is none.
func (t *nameTable) entryLocked(name string) *listedName {
	key := store.NameKey(name)
	if e, ok := t.byKey[key]; ok {
		return e
	}
	if t.byKey == nil {
		t.byKey, t.byID, t.deleted = map[string]*listedName{}, map[int64]*listedName{}, map[int64]*listedName{}
		t.last = -1
	}
	t.last--
	e := &listedName{name: name, placeholder: t.last, user: -1}
	t.byKey[key], t.byID[e.placeholder] = e, e
	return e
}

// unregistered returns the id an ACL gets for a name the store did not
// know a moment ago: its placeholder, or the id of whoever registered it
// since.
func (t *nameTable) unregistered(name string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entryLocked(name)
	if e.user >= 0 {
		return e.user
	}
	e.name = name // the file's latest spelling is what it gets back
	return e.placeholder
}

// registered records that user id has name now (a registration, or a
// rename to it). It reports whether ACLs may hold a placeholder for the
// name, which must then be replaced (s.remapNamesLocked).
func (t *nameTable) registered(name string, id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.byKey[store.NameKey(name)]
	e := t.entryLocked(name)
	e.name, e.user = name, id // the write-back names them as registered
	return known
}

// renamed records that user id changed name from old to name.
func (t *nameTable) renamed(id int64, old, name string) bool {
	t.mu.Lock()
	if e, ok := t.byKey[store.NameKey(old)]; ok && e.user == id {
		e.user = -1
	}
	t.renames++
	t.mu.Unlock()
	return t.registered(name, id)
}

// deletedUser records that the registration of user id, called name, was
// deleted: ACLs that hold the id get the name's placeholder.
func (t *nameTable) deletedUser(id int64, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entryLocked(name)
	e.name, e.user = name, -1
	t.deleted[id] = e
}

// renameCount counts the renames of registered users: ACLs resolved
// from the file before one may name someone by an old name.
func (t *nameTable) renameCount() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.renames
}

// currentLocked is the id an ACL should hold instead of id: a
// placeholder becomes whoever registered its name, a deleted user's id
// becomes their name's placeholder (or whoever has the name now).
func (t *nameTable) currentLocked(id int64) int64 {
	var e *listedName
	switch {
	case id <= -2:
		e = t.byID[id]
	case id > 0:
		e = t.deleted[id]
	}
	if e == nil {
		return id
	}
	if e.user >= 0 {
		return e.user
	}
	return e.placeholder
}

// remap returns a with every user id made current; a itself when nothing
// changes (installed ACLs are immutable, so a change builds a new one).
// changed (if not nil) collects the registered ids that were replaced or
// came in.
func (t *nameTable) remap(a *acl.ChannelACL, changed map[int64]bool) *acl.ChannelACL {
	if a == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byKey == nil {
		return a // no name was ever unknown, registered or deleted here
	}
	var out *acl.ChannelACL
	clone := func() {
		if out == nil {
			out = &acl.ChannelACL{InheritACL: a.InheritACL, Entries: append([]acl.Entry(nil), a.Entries...), Groups: make(map[string]*acl.Group, len(a.Groups))}
			for name, g := range a.Groups {
				out.Groups[name] = g
			}
		}
	}
	note := func(from, to int64) {
		for _, id := range [2]int64{from, to} {
			if id >= 0 && changed != nil {
				changed[id] = true
			}
		}
	}
	for i, e := range a.Entries {
		if e.UserID == -1 {
			continue
		}
		if now := t.currentLocked(e.UserID); now != e.UserID {
			clone()
			out.Entries[i].UserID = now
			note(e.UserID, now)
		}
	}
	for name, g := range a.Groups {
		add, addChanged := t.remapIDsLocked(g.Add, note)
		remove, removeChanged := t.remapIDsLocked(g.Remove, note)
		if addChanged || removeChanged {
			clone()
			ng := *g
			ng.Add, ng.Remove = add, remove
			out.Groups[name] = &ng
		}
	}
	if out == nil {
		return a
	}
	return out
}

// remapIDsLocked makes ids current, each once; the slice is new if it
// changed.
func (t *nameTable) remapIDsLocked(ids []int64, note func(from, to int64)) ([]int64, bool) {
	for i, id := range ids {
		if t.currentLocked(id) == id {
			continue
		}
		out := append([]int64(nil), ids[:i]...)
		for _, id := range ids[i:] {
			now := t.currentLocked(id)
			note(id, now)
			if !containsID(out, now) {
				out = append(out, now)
			}
		}
		return out, true
	}
	return ids, false
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// nameOf names a placeholder, or the id of a registration deleted while
// the server runs, for the write-back.
func (t *nameTable) nameOf(id int64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if id > 0 {
		e = t.deleted[id]
	}
	if e == nil {
		return "", false
	}
	return e.name, true
}

// placeholderOf returns the placeholder of a name nobody has registered,
// if an ACL may refer to it, with the name as the table spells it.
func (t *nameTable) placeholderOf(name string) (int64, string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byKey[store.NameKey(name)]
	if !ok || e.user >= 0 {
		return 0, "", false
	}
	return e.placeholder, e.name, true
}

// maxWireID is the editor's id of the first placeholder (-2); the next
// ones count down from it.
const maxWireID = 0x7FFFFFFF

// wireID is the user id the Mumble client is shown for id.
func wireID(id int64) uint32 {
	if id <= -2 {
		return uint32(maxWireID + 2 + id)
	}
	return uint32(id)
}

// fromWire is the placeholder a client means by a user id it was shown,
// if the id is one.
func (t *nameTable) fromWire(w uint32) (int64, bool) {
	p := int64(w) - maxWireID - 2
	if p > -2 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byID[p]
	return p, ok
}

// remapNamesLocked makes every channel's ACL current after a change of
// registrations (nameTable.remap), recomputes permissions if one
// changed, and tells the users whose rights came or went what they may
// enter now. It reports whether an ACL changed.
func (s *Server) remapNamesLocked() bool {
	changed := map[int64]bool{}
	for _, ch := range s.channels {
		ch.acl = s.names.remap(ch.acl, changed)
	}
	if len(changed) == 0 {
		return false
	}
	s.log.Info("the ACLs' names follow a change of registrations; permissions recomputed", "users", len(changed))
	s.permissionsChangedLocked()
	for _, u := range s.users {
		if !changed[u.userID] {
			continue
		}
		for _, ch := range s.breadthFirst() {
			u.conn.send(&mumblepb.ChannelState{ChannelId: ptr(ch.id), IsEnterRestricted: ptr(enterRestricted(ch)), CanEnter: ptr(s.may(u, ch, acl.Enter))})
		}
	}
	return true
}

// refersToLocked reports whether an ACL of a channel the file holds
// refers to user id, so that the file names them.
func (s *Server) refersToLocked(id int64) bool {
	for _, ch := range s.channels {
		if ch.temporary || ch.acl == nil {
			continue
		}
		for _, e := range ch.acl.Entries {
			if e.UserID == id {
				return true
			}
		}
		for _, g := range ch.acl.Groups {
			if containsID(g.Add, id) || containsID(g.Remove, id) {
				return true
			}
		}
	}
	return false
}
