package server

// The admin API (package admin, /api/v1) on this server. Every change is
// carried out by the handler a Mumble client's message reaches, on
// behalf of an actor: a user that stands for the API token, with
// SuperUser's permissions (as Murmur's Ice interface has), that is in no
// channel and no user list, and whose connection only collects what the
// handler answers (a denial, a list). So the API's edits are checked by
// the same rules, applied live, written to the configuration file and
// logged (under "api:" and the token's name) exactly as the same edit
// from a Mumble client. The answer waits until the change is on disk.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/atomicfile"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"google.golang.org/protobuf/proto"
)

// apiServer implements admin.API.
type apiServer struct{ s *Server }

var _ admin.API = apiServer{}

// apiActorPrefix starts the name of an API actor, so that the log tells
// an API change from a client's.
const apiActorPrefix = "api:"

// newAPIActor makes the user that acts for the token named token. Its
// session is 0, which no client has; messages it causes carry no actor,
// as Murmur's Ice calls do not.
func (s *Server) newAPIActor(token string) *user {
	c := &conn{s: s, ctrl: ctrlQueue{ready: make(chan struct{}, 1)}, done: make(chan struct{})}
	u := &user{conn: c, name: apiActorPrefix + token, userID: 0, apiToken: token, lastPermAsked: -1}
	s.mu.Lock()
	u.channel = s.root
	s.unlock()
	u.refreshSubject()
	return u
}

// isAPI reports whether u acts for an API token.
func (u *user) isAPI() bool { return u.apiToken != "" }

// actorOf is the actor field of a message u causes: none for the API.
func actorOf(u *user) *uint32 {
	if u.isAPI() {
		return nil
	}
	return ptr(u.session)
}

// answers takes what the handlers queued for the actor.
func (u *user) answers() []proto.Message {
	var out []proto.Message
	for {
		e, ok := u.conn.ctrl.pop()
		if !ok {
			return out
		}
		if e.frame == nil || len(e.frame) < control.HeaderSize {
			continue
		}
		t := control.Type(uint16(e.frame[0])<<8 | uint16(e.frame[1]))
		if m, err := control.Unmarshal(t, e.frame[control.HeaderSize:]); err == nil {
			out = append(out, m)
		}
	}
}

// outcome turns what the handlers told the actor into an error: a
// denial refuses, the server's note that an edit is in effect but not
// saved (reportUnsaved) fails. Other notes (a floor command's answer, the
// ban editor's remarks) are no error.
func outcome(msgs []proto.Message) error {
	for _, m := range msgs {
		switch m := m.(type) {
		case *mumblepb.PermissionDenied:
			return denialError(m)
		case *mumblepb.TextMessage:
			if m.Actor == nil && strings.Contains(m.GetMessage(), "is in effect but not saved") {
				return fmt.Errorf("%w: %s", admin.ErrNotSaved, m.GetMessage())
			}
		}
	}
	return nil
}

func denialError(m *mumblepb.PermissionDenied) error {
	var why string
	switch m.GetType() {
	case mumblepb.PermissionDenied_Text:
		if strings.Contains(m.GetReason(), "could not be saved") {
			return fmt.Errorf("%w: %s", admin.ErrNotSaved, m.GetReason())
		}
		why = m.GetReason()
	case mumblepb.PermissionDenied_Permission:
		why = "not allowed: " + strings.Join(acl.Permission(m.GetPermission()).Names(), ", ")
	case mumblepb.PermissionDenied_ChannelName:
		why = "the channel name is not valid, or a sibling has it"
	case mumblepb.PermissionDenied_TextTooLong:
		why = "the text is too long"
	case mumblepb.PermissionDenied_TemporaryChannel:
		why = "a temporary channel cannot have subchannels"
	case mumblepb.PermissionDenied_NestingLimit:
		why = "channels would nest too deep"
	case mumblepb.PermissionDenied_ChannelCountLimit:
		why = "the server has as many channels as it may"
	case mumblepb.PermissionDenied_ChannelFull:
		why = "the channel is full"
	case mumblepb.PermissionDenied_UserName:
		why = "the name is not valid"
	default:
		why = m.GetType().String()
	}
	return fmt.Errorf("%w: %s", admin.ErrRefused, why)
}

// settle waits until every write to disk queued so far has ended (or
// released its hold, after holdLimit), so that the API answers a change
// once it is saved, as a client hears of it.
func (s *Server) settle() {
	s.mu.Lock()
	pending := append([]*ticket(nil), s.holds...)
	s.unlock()
	for _, t := range pending {
		<-t.done
	}
}

// act runs a handler of msg for token's actor and returns its outcome
// once the change is saved. Like a client's, the change is refused while
// the node is cut off from its cluster, or still joining it.
func (a apiServer) act(token string, msg proto.Message, handler func(actor *user)) error {
	actor := a.s.newAPIActor(token)
	if a.s.refusedWhileCutOff(actor, msg) {
		return outcome(actor.answers())
	}
	handler(actor)
	a.s.settle()
	return outcome(actor.answers())
}

func notFound(what string, id uint32) error {
	return fmt.Errorf("%w: no %s %d", admin.ErrNotFound, what, id)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", admin.ErrInvalid, fmt.Sprintf(format, args...))
}

// Users lists the connected users.
func (a apiServer) Users() []admin.APIUser {
	s := a.s
	s.mu.Lock()
	defer s.unlock()
	paths := s.channelPathsLocked()
	now := time.Now()
	out := make([]admin.APIUser, 0, len(s.users))
	for _, ch := range s.breadthFirst() {
		for _, u := range sortedUsers(ch) {
			au := admin.APIUser{
				Session: u.session, Name: u.name, Channel: ch.id, ChannelPath: paths[ch],
				Mute: u.mute, Deaf: u.deaf, Suppress: u.suppress, SelfMute: u.selfMute, SelfDeaf: u.selfDeaf,
				PrioritySpeaker: u.prioritySpeak, Recording: u.recording, OnlineSec: int64(now.Sub(u.connected) / time.Second),
			}
			if u.userID >= 0 {
				au.UserID = ptr(u.userID)
			}
			out = append(out, au)
		}
	}
	return out
}

func sortedUsers(ch *channel) []*user {
	out := make([]*user, 0, len(ch.users))
	for u := range ch.users {
		out = append(out, u)
	}
	for i := 1; i < len(out); i++ { // few per call; insertion sort by session
		for j := i; j > 0 && out[j].session < out[j-1].session; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// channelPathsLocked maps each channel to its path ("" for the root).
func (s *Server) channelPathsLocked() map[*channel]string {
	paths := map[*channel]string{s.root: ""}
	for _, ch := range s.breadthFirst()[1:] {
		paths[ch] = conf.JoinPath(paths[ch.parent], ch.name)
	}
	return paths
}

func (s *Server) userExists(session uint32) bool {
	s.mu.Lock()
	defer s.unlock()
	_, ok := s.users[session]
	return ok
}

func (s *Server) channelExists(id uint32) bool {
	s.mu.Lock()
	defer s.unlock()
	_, ok := s.channels[id]
	return ok
}

// SetUser mutes, deafens, suppresses, makes priority speaker or moves a
// user, through the handler of a client's UserState.
func (a apiServer) SetUser(token string, session uint32, c admin.UserChange) error {
	if !a.s.userExists(session) {
		return notFound("user with session", session)
	}
	if c.Channel != nil && !a.s.channelExists(*c.Channel) {
		return notFound("channel", *c.Channel)
	}
	m := &mumblepb.UserState{Session: ptr(session), Mute: c.Mute, Deaf: c.Deaf, Suppress: c.Suppress,
		PrioritySpeaker: c.PrioritySpeaker, ChannelId: c.Channel}
	if len(protoFields(m)) == 1 {
		return invalid("nothing to change")
	}
	return a.act(token, m, func(actor *user) { a.s.handleUserState(actor, m) })
}

// Kick kicks or bans a user, through the handler of a client's
// UserRemove.
func (a apiServer) Kick(token string, session uint32, reason string, ban bool) error {
	if !a.s.userExists(session) {
		return notFound("user with session", session)
	}
	if !a.s.textAllowed(reason) {
		return invalid("the reason is too long")
	}
	m := &mumblepb.UserRemove{Session: ptr(session), Reason: ptr(reason), Ban: ptr(ban)}
	return a.act(token, m, func(actor *user) { a.s.handleUserRemove(actor, m) })
}

// Channels lists every channel, root first.
func (a apiServer) Channels() []admin.APIChannel {
	s := a.s
	s.mu.Lock()
	defer s.unlock()
	paths := s.channelPathsLocked()
	var out []admin.APIChannel
	for _, ch := range s.breadthFirst() {
		out = append(out, s.apiChannelLocked(ch, paths))
	}
	return out
}

func (s *Server) apiChannelLocked(ch *channel, paths map[*channel]string) admin.APIChannel {
	c := admin.APIChannel{ID: ch.id, Name: ch.name, Path: paths[ch], Description: ch.description,
		Position: ch.position, MaxUsers: ch.maxUsers, Temporary: ch.temporary, Links: []uint32{}, Users: len(ch.users)}
	if ch.parent != nil {
		c.Parent = ptr(ch.parent.id)
	}
	for _, l := range sortedLinks(ch) {
		c.Links = append(c.Links, l.id)
	}
	return c
}

// CreateChannel makes a permanent channel through the handler of a
// client's ChannelState.
func (a apiServer) CreateChannel(token string, c admin.ChannelCreate) (admin.APIChannel, error) {
	s := a.s
	if !s.channelExists(c.Parent) {
		return admin.APIChannel{}, notFound("channel", c.Parent)
	}
	if c.Name == "" {
		return admin.APIChannel{}, invalid("a channel needs a name")
	}
	m := &mumblepb.ChannelState{Parent: ptr(c.Parent), Name: ptr(c.Name), Position: ptr(c.Position), MaxUsers: ptr(c.MaxUsers)}
	if c.Description != "" {
		m.Description = ptr(c.Description)
	}
	err := a.act(token, m, func(actor *user) { s.handleChannelState(actor, m) })
	if err != nil {
		return admin.APIChannel{}, err
	}
	s.mu.Lock()
	defer s.unlock()
	if p, ok := s.channels[c.Parent]; ok {
		for _, ch := range p.children {
			if ch.name == c.Name {
				return s.apiChannelLocked(ch, s.channelPathsLocked()), nil
			}
		}
	}
	return admin.APIChannel{}, fmt.Errorf("%w: the channel was removed at once", admin.ErrRefused)
}

// EditChannel renames, moves, describes, repositions or links a channel
// through the handler of a client's ChannelState.
func (a apiServer) EditChannel(token string, id uint32, e admin.ChannelEdit) error {
	s := a.s
	if !s.channelExists(id) {
		return notFound("channel", id)
	}
	for _, other := range append(append([]uint32{}, e.LinksAdd...), e.LinksRemove...) {
		if !s.channelExists(other) {
			return notFound("channel", other)
		}
	}
	if e.Parent != nil && !s.channelExists(*e.Parent) {
		return notFound("channel", *e.Parent)
	}
	m := &mumblepb.ChannelState{ChannelId: ptr(id), Name: e.Name, Parent: e.Parent, Description: e.Description,
		Position: e.Position, MaxUsers: e.MaxUsers, LinksAdd: e.LinksAdd, LinksRemove: e.LinksRemove}
	if len(protoFields(m)) == 1 {
		return invalid("nothing to change")
	}
	if e.Parent != nil {
		s.mu.Lock()
		ch := s.channels[id]
		same := ch.parent != nil && ch.parent.id == *e.Parent
		inside := false
		for p := s.channels[*e.Parent]; p != nil; p = p.parent {
			inside = inside || p == ch
		}
		s.unlock()
		if inside {
			return fmt.Errorf("%w: a channel cannot move into itself or its subchannels", admin.ErrRefused)
		}
		if same && len(protoFields(m)) == 2 {
			return nil // already there
		}
	}
	return a.act(token, m, func(actor *user) { s.handleChannelState(actor, m) })
}

// RemoveChannel removes a channel through the handler of a client's
// ChannelRemove.
func (a apiServer) RemoveChannel(token string, id uint32) error {
	if !a.s.channelExists(id) {
		return notFound("channel", id)
	}
	rm := &mumblepb.ChannelRemove{ChannelId: ptr(id)}
	return a.act(token, rm, func(actor *user) { a.s.handleChannelRemove(actor, rm) })
}

// ChannelACL is a channel's own groups and entries as the file holds
// them, and the entries it inherits.
func (a apiServer) ChannelACL(id uint32) (admin.APIACL, error) {
	s := a.s
	s.mu.Lock()
	ch, ok := s.channels[id]
	var own *acl.ChannelACL
	var inherited []acl.ReplyEntry
	if ok {
		own = ch.acl
		for _, e := range acl.ReplyEntries(serverTree{s}, id) {
			if e.Inherited {
				inherited = append(inherited, e)
			}
		}
	}
	s.unlock()
	if !ok {
		return admin.APIACL{}, notFound("channel", id)
	}
	// Names come from the store, outside the lock.
	inherit, groups, entries := s.aclToConfig(own)
	out := admin.APIACL{InheritACL: ptr(inherit == nil || *inherit), Groups: map[string]*admin.APIGroup{}}
	for name, g := range groups {
		out.Groups[name] = &admin.APIGroup{Inherit: ptr(g.Inherits()), Inheritable: ptr(g.IsInheritable()), Add: g.Add, Remove: g.Remove}
	}
	for _, e := range entries {
		out.Entries = append(out.Entries, apiEntry(e, nil))
	}
	for _, e := range inherited {
		_, _, ce := s.aclToConfig(&acl.ChannelACL{Entries: []acl.Entry{e.Entry}})
		if len(ce) == 1 {
			out.Inherited = append(out.Inherited, apiEntry(ce[0], ptr(e.Channel)))
		}
	}
	return out, nil
}

func apiEntry(e conf.ACLEntry, from *uint32) admin.APIACLEntry {
	return admin.APIACLEntry{User: e.User, Group: e.Group, ApplyHere: ptr(e.Here()), ApplySubs: ptr(e.Subs()),
		Allow: e.Allow, Deny: e.Deny, Channel: from}
}

// SetChannelACL replaces a channel's groups and entries through the
// handler of the ACL editor: the file's form is checked as the file
// would be, its names resolved as the file's are, and the result handed
// to setACLLocked as the editor's message.
func (a apiServer) SetChannelACL(token string, id uint32, in admin.APIACL) error {
	s := a.s
	if !s.channelExists(id) {
		return notFound("channel", id)
	}
	groups, entries, err := confACL(in)
	if err != nil {
		return err
	}
	inherit := in.InheritACL == nil || *in.InheritACL
	// The same check as a file with these tables on that channel.
	probe := &conf.Config{Server: conf.DefaultServer()}
	probe.Channels = []conf.Channel{{Name: "probe", InheritACL: conf.Bool(inherit), Groups: groups, ACL: entries}}
	if err := probe.Validate(); err != nil {
		var msgs []string
		for _, e := range conf.Errors(err) {
			msgs = append(msgs, strings.TrimPrefix(e.Key, "probe.")+": "+e.Msg)
		}
		return invalid("%s", strings.Join(msgs, "; "))
	}
	resolved := s.aclFromConfig(inherit, groups, entries, fmt.Sprint(id))
	m, known := editorMessage(id, resolved)
	return a.act(token, m, func(actor *user) {
		s.mu.Lock()
		defer s.unlock()
		if ch, ok := s.channels[id]; ok {
			s.setACLLocked(actor, ch, m, known)
		}
	})
}

// confACL converts the API's groups and entries into the file's.
func confACL(in admin.APIACL) (map[string]*conf.Group, []conf.ACLEntry, error) {
	groups := map[string]*conf.Group{}
	for name, g := range in.Groups {
		if g == nil {
			g = &admin.APIGroup{}
		}
		groups[name] = &conf.Group{Inherit: g.Inherit, Inheritable: g.Inheritable, Add: g.Add, Remove: g.Remove}
	}
	var entries []conf.ACLEntry
	for i, e := range in.Entries {
		if (e.User == "") == (e.Group == "") {
			return nil, nil, invalid("entry %d: give either user or group", i)
		}
		if e.Channel != nil {
			return nil, nil, invalid("entry %d: channel is for inherited entries, which are not written", i)
		}
		entries = append(entries, conf.ACLEntry{User: e.User, Group: e.Group, ApplyHere: e.ApplyHere, ApplySubs: e.ApplySubs, Allow: e.Allow, Deny: e.Deny})
	}
	return groups, entries, nil
}

// editorMessage is the ACL message the Mumble editor would send for a,
// with the map from the ids it shows to the ids the ACL holds.
func editorMessage(id uint32, a *acl.ChannelACL) (*mumblepb.ACL, map[uint32]int64) {
	known := map[uint32]int64{}
	wire := func(ids []int64) []uint32 {
		out := make([]uint32, 0, len(ids))
		for _, uid := range ids {
			w := wireID(uid)
			known[w] = uid
			out = append(out, w)
		}
		return out
	}
	m := &mumblepb.ACL{ChannelId: ptr(id), InheritAcls: ptr(a.InheritACL)}
	for _, name := range sortedGroupNames(a.Groups) {
		g := a.Groups[name]
		m.Groups = append(m.Groups, &mumblepb.ACL_ChanGroup{Name: ptr(name), Inherit: ptr(g.Inherit), Inheritable: ptr(g.Inheritable),
			Add: wire(g.Add), Remove: wire(g.Remove)})
	}
	for _, e := range a.Entries {
		ce := &mumblepb.ACL_ChanACL{ApplyHere: ptr(e.ApplyHere), ApplySubs: ptr(e.ApplySubs), Grant: ptr(uint32(e.Allow)), Deny: ptr(uint32(e.Deny))}
		if e.UserID != -1 {
			ce.UserId = ptr(wire([]int64{e.UserID})[0])
		} else {
			ce.Group = ptr(e.Group)
		}
		m.Acls = append(m.Acls, ce)
	}
	return m, known
}

func sortedGroupNames(groups map[string]*acl.Group) []string {
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

// Registrations lists the registered users through the handler of the
// client's user list.
func (a apiServer) Registrations() ([]admin.Registration, error) {
	actor := a.s.newAPIActor("read")
	a.s.handleUserList(actor, &mumblepb.UserList{})
	out := []admin.Registration{}
	for _, m := range actor.answers() {
		if list, ok := m.(*mumblepb.UserList); ok {
			for _, u := range list.Users {
				out = append(out, admin.Registration{ID: u.GetUserId(), Name: u.GetName(), LastChannel: u.GetLastChannel(), LastSeen: u.GetLastSeen()})
			}
		}
	}
	return out, nil
}

func (a apiServer) registered(id uint32) error {
	if id == 0 {
		return invalid("SuperUser is not renamed or deleted here; use plenum supw")
	}
	if _, err := a.s.store.UserByID(int64(id)); err != nil {
		return notFound("registration", id)
	}
	return nil
}

// RenameRegistration renames a registered user through the user list's
// handler (the ACLs that name them follow).
func (a apiServer) RenameRegistration(token string, id uint32, name string) error {
	if err := a.registered(id); err != nil {
		return err
	}
	if !a.s.userName.MatchString(name) {
		return invalid("%q is not a valid user name", name)
	}
	if _, err := a.s.store.UserByName(name); err == nil {
		return fmt.Errorf("%w: the name %q is registered already", admin.ErrRefused, name)
	}
	m := &mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: ptr(id), Name: ptr(name)}}}
	return a.act(token, m, func(actor *user) { a.s.handleUserList(actor, m) })
}

// DeleteRegistration deletes a registration through the user list's
// handler.
func (a apiServer) DeleteRegistration(token string, id uint32) error {
	if err := a.registered(id); err != nil {
		return err
	}
	m := &mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: ptr(id)}}}
	return a.act(token, m, func(actor *user) { a.s.handleUserList(actor, m) })
}

// Bans lists the bans as the ban editor is shown them.
func (a apiServer) Bans() ([]admin.APIBan, error) {
	entries := a.banEntries()
	out := make([]admin.APIBan, 0, len(entries))
	for _, e := range entries {
		out = append(out, apiBan(e))
	}
	return out, nil
}

func (a apiServer) banEntries() []*mumblepb.BanList_BanEntry {
	actor := a.s.newAPIActor("read")
	a.s.sendBanList(actor)
	for _, m := range actor.answers() {
		if list, ok := m.(*mumblepb.BanList); ok {
			return list.Bans
		}
	}
	return nil
}

func apiBan(e *mumblepb.BanList_BanEntry) admin.APIBan {
	b := admin.APIBan{Bits: e.GetMask(), Name: e.GetName(), CertHash: e.GetHash(), Reason: e.GetReason(), Duration: e.GetDuration()}
	if len(e.Address) == 16 {
		addr := netip.AddrFrom16([16]byte(e.Address))
		if addr.Is4In6() && b.Bits >= 96 {
			addr, b.Bits = addr.Unmap(), b.Bits-96
		}
		b.Address = addr.String()
	}
	if t, err := time.Parse("2006-01-02T15:04:05", strings.TrimSuffix(e.GetStart(), "Z")); err == nil {
		b.Start = t.UTC()
	}
	return b
}

// banEntry is the ban editor's entry for b.
func banEntry(b admin.APIBan) (*mumblepb.BanList_BanEntry, error) {
	addr, err := netip.ParseAddr(b.Address)
	if err != nil {
		return nil, invalid("%q is not an IP address", b.Address)
	}
	bits := b.Bits
	if bits == 0 {
		bits = uint32(addr.BitLen())
	}
	if int(bits) > addr.BitLen() {
		return nil, invalid("bits: %d is more than the address has", bits)
	}
	if addr.Is4() {
		bits += 96
	}
	a16 := addr.As16()
	e := &mumblepb.BanList_BanEntry{Address: a16[:], Mask: ptr(bits), Name: ptr(b.Name), Hash: ptr(b.CertHash),
		Reason: ptr(b.Reason), Duration: ptr(b.Duration)}
	if !b.Start.IsZero() {
		e.Start = ptr(b.Start.UTC().Format("2006-01-02T15:04:05"))
	}
	return e, nil
}

// SetBans replaces the bans through the ban editor's handler.
func (a apiServer) SetBans(token string, bans []admin.APIBan) error {
	entries := make([]*mumblepb.BanList_BanEntry, 0, len(bans))
	for _, b := range bans {
		e, err := banEntry(b)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	edit := &mumblepb.BanList{Bans: entries}
	return a.act(token, edit, func(actor *user) { a.s.handleBanList(actor, edit) })
}

// AddBan adds a ban: the list as it is, and the new one.
func (a apiServer) AddBan(token string, b admin.APIBan) error {
	e, err := banEntry(b)
	if err != nil {
		return err
	}
	entries := append(a.banEntries(), e)
	edit := &mumblepb.BanList{Bans: entries}
	return a.act(token, edit, func(actor *user) { a.s.handleBanList(actor, edit) })
}

// SendMessage sends a text message from the server through the handler
// of a client's text message.
func (a apiServer) SendMessage(token string, m admin.Message) error {
	if m.Message == "" {
		return invalid("the message is empty")
	}
	if len(m.Sessions)+len(m.Channels)+len(m.Trees) == 0 {
		return invalid("the message goes to nobody: give sessions, channels or trees")
	}
	for _, s := range m.Sessions {
		if !a.s.userExists(s) {
			return notFound("user with session", s)
		}
	}
	for _, c := range append(append([]uint32{}, m.Channels...), m.Trees...) {
		if !a.s.channelExists(c) {
			return notFound("channel", c)
		}
	}
	tm := &mumblepb.TextMessage{Message: ptr(m.Message), Session: m.Sessions, ChannelId: m.Channels, TreeId: m.Trees}
	return a.act(token, tm, func(actor *user) { a.s.handleTextMessage(actor, tm) })
}

// ConfigFile is the configuration file as it is on disk.
func (a apiServer) ConfigFile() ([]byte, error) {
	s := a.s
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	data, err := readFileOr(s.configPath, func() ([]byte, error) {
		s.mu.Lock()
		cfg := s.config
		s.unlock()
		return conf.Encode(cfg)
	})
	return data, err
}

// ValidateConfig checks a configuration file as a reload would.
func (a apiServer) ValidateConfig(data []byte) []admin.ConfigProblem {
	_, err := conf.Parse(data, "request")
	return configProblems(err)
}

func configProblems(err error) []admin.ConfigProblem {
	if err == nil {
		return nil
	}
	var out []admin.ConfigProblem
	for _, e := range conf.Errors(err) {
		out = append(out, admin.ConfigProblem{Line: e.Line, Key: e.Key, Msg: e.Msg})
	}
	if len(out) == 0 {
		out = append(out, admin.ConfigProblem{Msg: err.Error()})
	}
	return out
}

// ApplyConfig replaces the configuration file with data, if it is valid,
// and applies it as a reload does. The file is written the crash-safe
// way, keeping the previous one as FILE.bak.
func (a apiServer) ApplyConfig(token string, data []byte) ([]admin.ConfigProblem, error) {
	s := a.s
	if problems := a.ValidateConfig(data); problems != nil {
		return problems, nil
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if old, err := readFileOr(s.configPath, func() ([]byte, error) { return nil, nil }); err == nil && old != nil {
		if err := atomicfile.Write(s.configPath+".bak", old, 0o600); err != nil {
			return nil, fmt.Errorf("%w: keeping the previous file: %v", admin.ErrNotSaved, err)
		}
	}
	if err := atomicfile.Write(s.configPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %v", admin.ErrNotSaved, err)
	}
	s.log.Info("configuration replaced through the admin API", "token", token, "file", s.configPath)
	if err := s.reloadFileLocked(true); err != nil {
		return configProblems(err), nil
	}
	return nil, nil
}

// readFileOr reads path, or returns what orElse makes when there is no
// such file (a server on the embedded default has none until its first
// edit).
func readFileOr(path string, orElse func() ([]byte, error)) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return orElse()
	}
	return data, err
}
