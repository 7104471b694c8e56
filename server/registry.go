package server

// Registered users, SuperUser and bans, kept in the store (SQLite in the
// data directory). Database I/O happens outside the control-plane lock.

import (
	"errors"
	"strings"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// superUserName is the name SuperUser logs in with, by password only.
const superUserName = "SuperUser"

// identity is who an Authenticate turned out to be.
type identity struct {
	userID  int64 // -1 unregistered, 0 SuperUser, > 0 registered
	name    string
	comment string
	texture []byte

	channel   uint32   // last channel of a registered user
	listening []uint32 // channels a registered user listened to

	groups        []string          // the groups a sign-in provider gave (signin.go)
	signInBy      string            // that provider
	signInSources map[string]string // the provider's groups behind them
}

// identify authenticates a login against the store, as Murmur does:
// SuperUser by password only; a registered certificate logs in as its
// user (under the registered name); a registered name needs that user's
// certificate or password; anyone else is unregistered, and only they are
// asked for the server password.
func (s *Server) identify(name, password, certHash string) (identity, mumblepb.Reject_RejectType, string) {
	if strings.EqualFold(name, superUserName) {
		ok, err := s.store.CheckPassword(0, password)
		if err != nil || !ok {
			return identity{}, mumblepb.Reject_WrongUserPW, "Wrong password for SuperUser"
		}
		return identity{userID: 0, name: superUserName}, mumblepb.Reject_None, ""
	}
	if certHash != "" {

		if u, err := s.store.UserByCert(certHash); err == nil {
			return s.registered(u), mumblepb.Reject_None, ""
		}
	}
	if u, err := s.store.UserByName(name); err == nil {

		if ok, _ := s.store.CheckPassword(u.ID, password); ok {
			return s.registered(u), mumblepb.Reject_None, ""
		}
		return identity{}, mumblepb.Reject_WrongUserPW, "Wrong certificate or password for registered user"
	}
	if s.cfg().Password != "" && password != s.cfg().Password {
		return identity{}, mumblepb.Reject_WrongServerPW, "Invalid server password"
	}
	return identity{userID: -1, name: name}, mumblepb.Reject_None, ""
}

func (s *Server) registered(u store.User) identity {
	listening, err := s.store.Listeners(u.ID)
	if err != nil {
		s.log.Warn("reading listeners failed", "id", u.ID, "err", err)
	}
	return identity{userID: u.ID, name: u.Name, comment: u.Comment, texture: u.Texture, channel: u.LastChannel, listening: listening}
}

// handleRegister serves UserState{user_id}: registration of oneself
// (SelfRegister on root) or of someone else (Register on root), which
// needs the target's certificate.
func (s *Server) handleRegister(actor *user, m *mumblepb.UserState) {
	s.mu.Lock()
	target := actor
	if m.Session != nil {
		t, ok := s.users[m.GetSession()]
		if !ok {
			s.unlock()
			return
		}
		target = t
	}
	need := acl.SelfRegister
	if target != actor {
		need = acl.Register
	}
	switch {
	case target.userID >= 0:
		s.unlock()
		return // already registered
	case !s.requireLocked(actor, s.root, need):
		s.unlock()
		return
	case !target.hasCertificate():
		actor.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_MissingCertificate.Enum(), Session: ptr(target.session)})
		s.unlock()
		return
	}
	name, cert, comment := target.name, target.certHash, target.comment
	who := s.logUser("user", target)
	s.unlock()

	reg, err := s.store.Register(name, cert)
	switch {
	case errors.Is(err, store.ErrNameTaken), errors.Is(err, store.ErrCertTaken), errors.Is(err, store.ErrInvalid):
		s.log.Warn("registration refused", who, "err", err)
		actor.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_UserName.Enum(), Name: ptr(name)})
		return
	case err != nil:
		s.log.Error("registration failed", who, "err", err)
		s.refuseUnsaved(actor, "The registration of "+name, err)
		return
	}
	if err := s.store.SetComment(reg.ID, comment); err != nil {
		s.log.Warn("saving comment failed", "id", reg.ID, "err", err)
	}
	listed := s.names.registered(reg.Name, reg.ID)

	s.mu.Lock()
	defer s.unlock()
	online := s.users[target.session] == target // else left meanwhile; the registration stays, as in Murmur
	if online {
		target.userID = reg.ID
		s.refreshSubjectLocked(target)
	}
	if listed {
		s.remapNamesLocked() // the ACLs named them before they registered
	}
	if !online {
		s.afterUnlock = append(s.afterUnlock, func() { s.shareUsers(actor) })
		return
	}
	s.forgetUserPermissionsLocked(target)
	s.afterUnlock = append(s.afterUnlock, func() { s.shareUsers(actor) })
	s.broadcastLocked(&mumblepb.UserState{Session: ptr(target.session), Actor: ptr(actor.session), UserId: ptr(uint32(reg.ID))}, nil)
	s.log.Info("user registered", s.logUser("user", target), "id", reg.ID, s.logUser("by", actor))
}

// handleUserList serves the registered-user editor: an empty list asks for
// all users; entries with a name rename, entries without delete.
func (s *Server) handleUserList(u *user, m *mumblepb.UserList) {
	s.mu.Lock()
	allowed := s.requireLocked(u, s.root, acl.Register)
	s.unlock()
	if !allowed {
		return
	}
	if len(m.Users) == 0 {
		users, err := s.store.Users("")
		if err != nil {
			s.log.Error("listing users failed", "err", err)
			return
		}
		reply := &mumblepb.UserList{}
		for _, ru := range users {
			if ru.ID == 0 {
				continue // Murmur does not list SuperUser
			}
			e := &mumblepb.UserList_User{UserId: ptr(uint32(ru.ID)), Name: ptr(ru.Name), LastChannel: ptr(ru.LastChannel)}
			if !ru.LastSeen.IsZero() {
				e.LastSeen = ptr(ru.LastSeen.UTC().Format("2006-01-02T15:04:05"))
			}
			reply.Users = append(reply.Users, e)
		}
		u.conn.send(reply)
		return
	}
	for _, e := range m.Users {
		id := int64(e.GetUserId())
		if id == 0 {
			continue
		}
		// The name before the change, for the ACLs that name them.
		old, lookupErr := s.store.UserByID(id)
		var err error
		if e.Name != nil {
			err = s.store.Rename(id, e.GetName())
			if err == nil && lookupErr == nil {
				s.renamedUser(u, id, old.Name, e.GetName())
			}
		} else {
			err = s.store.Delete(id)
			if err == nil {
				if lookupErr == nil {
					s.names.deletedUser(id, old.Name)
				}
				s.unregisterOnline(id)
			}
		}
		if err == nil {
			s.shareUsers(u)
		}
		if err != nil {
			s.log.Warn("user list edit failed", "id", id, "err", err)
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNameTaken) && !errors.Is(err, store.ErrInvalid) {
				s.refuseUnsaved(u, "The change to the registered users", err)
			}
		}
	}
}

// renamedUser follows the rename of registered user id to name in the
// ACLs: the file names them by the new name (written before anyone is
// told anything more), and a placeholder of the new name becomes theirs.
func (s *Server) renamedUser(editor *user, id int64, old, name string) {
	listed := s.names.renamed(id, old, name)
	s.mu.Lock()
	defer s.unlock()
	if listed {
		s.remapNamesLocked()
	}
	if s.refersToLocked(id) {
		s.log.Info("a user the ACLs name was renamed; the file follows", "id", id, "user", name)
		s.configEditLocked(editor)
		s.channelsChangedLocked()
	}
}

// unregisterOnline turns an online user whose registration was deleted
// into an unregistered one, as Murmur announces with user_id = -1, and
// gives the ACLs that name them their name's placeholder.
func (s *Server) unregisterOnline(id int64) {
	s.mu.Lock()
	defer s.unlock()
	for _, u := range s.users {
		if u.userID == id {
			u.userID = -1
			s.refreshSubjectLocked(u)
			s.forgetUserPermissionsLocked(u)
			s.broadcastLocked(&mumblepb.UserState{Session: ptr(u.session), UserId: ptr(uint32(0xFFFFFFFF))}, nil)
		}
	}
	s.remapNamesLocked()
	s.snapDirty = true
}

// handleQueryUsers resolves registered ids to names and names to ids.
// Someone who may edit an ACL somewhere is also answered for the names
// the ACLs list that nobody registered (names.go), so that the ACL editor
// can show and add them; nobody else learns which names those are.
func (s *Server) handleQueryUsers(u *user, m *mumblepb.QueryUsers) {
	s.mu.Lock()
	editor := s.mayEditSomeACLLocked(u)
	s.unlock()
	reply := &mumblepb.QueryUsers{}
	for _, id := range m.Ids {
		if p, ok := s.names.fromWire(id); ok && editor {
			if name, ok := s.names.nameOf(p); ok {
				reply.Ids = append(reply.Ids, id)
				reply.Names = append(reply.Names, name)
			}
		} else if ru, err := s.store.UserByID(int64(id)); err == nil {
			reply.Ids = append(reply.Ids, id)
			reply.Names = append(reply.Names, ru.Name)
		}
	}
	for _, name := range m.Names {
		if ru, err := s.store.UserByName(name); err == nil {
			reply.Ids = append(reply.Ids, uint32(ru.ID))
			reply.Names = append(reply.Names, ru.Name)
		} else if p, listed, ok := s.names.placeholderOf(name); ok && editor {
			reply.Ids = append(reply.Ids, wireID(p))
			reply.Names = append(reply.Names, listed)
		}
	}
	u.conn.send(reply)
}

// mayEditSomeACLLocked reports whether u may open the ACL editor of some
// channel (Write on it or on its parent).
func (s *Server) mayEditSomeACLLocked(u *user) bool {
	for _, ch := range s.channels {
		if s.may(u, ch, acl.Write) {
			return true
		}
	}
	return false
}

// persistUserState stores what a registered user keeps between sessions.
func (s *Server) persistUserState(id int64, comment *string, texture []byte) error {
	if id < 0 {
		return nil
	}
	if comment != nil {
		if err := s.store.SetComment(id, *comment); err != nil {
			return err
		}
	}
	if texture != nil {
		if err := s.store.SetTexture(id, texture); err != nil {
			return err
		}
	}
	return nil
}
