package server

// The server's side of a cluster: several nodes serving one channel tree
// (package cluster carries it over NATS). The seam is narrow: the server
// tells its ClusterLink the state of its own users after every change
// (announceLocked, from unlock) and relays voice through the engine's
// voice.Relay; the cluster calls the exported methods below to show the
// users of other nodes (remote users) and to route their voice here.
//
// A remote user is a user in the tree and in the voice snapshot like any
// other, with the number of its node in voice.User.Node, so the engine
// hands its packets to the relay instead of delivering them. Channels are
// named across nodes by their path, never by id: each node numbers its
// channels itself.

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
	"github.com/plenum-voice/plenum/voice"
	"google.golang.org/protobuf/proto"
)

// SessionsPerNode is the size of each node's block of session numbers:
// node n gives its users sessions n*SessionsPerNode+1 onwards, so sessions
// are unique across a cluster without asking anyone at login. The block
// is small because the router indexes its scratch space by session.
const SessionsPerNode = 1 << 13

// MaxNodes bounds node numbers (1..MaxNodes-1): the relay's set of nodes
// is a 64-bit mask.
const MaxNodes = 64

// ClusterLink is what a server needs of the cluster it is a node of.
type ClusterLink interface {
	// Node is this node's number in the cluster, 1..MaxNodes-1.
	Node() uint16
	// Relay carries a local speaker's packet to the nodes that hear it.
	voice.Relay
	// Announce hands over what changed among local users since the last
	// call: new states and departures, and (when Hears is not nil) the
	// keys of the channels whose speech local users now hear. It is
	// called outside the world lock, so two calls may arrive out of
	// order: Seq, counted under the lock, says which is newer. It must
	// not block on the network.
	Announce(a Announcement)
	// Run carries the cluster until stop is closed; the server starts it
	// in Serve as one of its goroutines.
	Run(host *Server, stop <-chan struct{})
}

// RemoteUser is the state of a user as its node announces it to the
// others: what a client is shown of them and what routing their voice and
// checking their permissions needs. Channels are paths.
type RemoteUser struct {
	Session   uint32   `json:"session"`
	Name      string   `json:"name"`
	UserID    int64    `json:"user_id"`
	Channel   string   `json:"channel"`
	Mute      bool     `json:"mute,omitempty"`
	Deaf      bool     `json:"deaf,omitempty"`
	Suppress  bool     `json:"suppress,omitempty"`
	SelfMute  bool     `json:"self_mute,omitempty"`
	SelfDeaf  bool     `json:"self_deaf,omitempty"`
	Priority  bool     `json:"priority,omitempty"`
	Recording bool     `json:"recording,omitempty"`
	CertHash  string   `json:"cert_hash,omitempty"`
	Strong    bool     `json:"strong,omitempty"`
	Tokens    []string `json:"tokens,omitempty"`
	Protobuf  bool     `json:"protobuf,omitempty"` // speaks the protobuf UDP format (1.5+), else legacy
	Plugin    string   `json:"plugin,omitempty"`
	Comment   string   `json:"comment,omitempty"` // up to maxRelayedComment bytes
	// CommentHash is the hash of a longer comment, TextureHash that of
	// the avatar: the other nodes fetch them when a client asks.
	CommentHash []byte         `json:"comment_hash,omitempty"`
	TextureHash []byte         `json:"texture_hash,omitempty"`
	Listening   []string       `json:"listening,omitempty"`
	Targets     []RemoteTarget `json:"targets,omitempty"`
}

// Announcement is what changed among a node's users, numbered.
type Announcement struct {
	Seq   uint64       // increases with every announcement of this server
	Users []UserChange // states and departures
	Hears []string     // nil: unchanged
}

// UserChange is a local user's new state, or (State nil) their departure,
// with the number of the announcement it was made in.
type UserChange struct {
	Session uint32
	Seq     uint64
	State   *RemoteUser
}

// RemoteTarget is one of a remote user's whisper or shout targets.
type RemoteTarget struct {
	ID       uint32                `json:"id"`
	Sessions []uint32              `json:"sessions,omitempty"`
	Channels []RemoteChannelTarget `json:"channels,omitempty"`
}

// RemoteChannelTarget is a channel a remote user's target shouts to.
type RemoteChannelTarget struct {
	Path     string `json:"path"`
	Links    bool   `json:"links,omitempty"`
	Children bool   `json:"children,omitempty"`
	Group    string `json:"group,omitempty"`
}

// ChannelKey is the name of a channel's voice across a cluster: a hash of
// its path, short and fit for a NATS subject token.
func ChannelKey(path string) string {
	h := fnv.New64a()
	h.Write([]byte(path))
	return strconv.FormatUint(h.Sum64(), 36)
}

// NodeOf is the node whose block holds session (0 on a single node).
func NodeOf(session uint32) uint16 { return uint16(session / SessionsPerNode) }

// maxRelayedComment is the longest comment (in bytes) announced to the
// other nodes. A user's state is announced again with every change (a
// mute, a move), so a longer one, in practice one with an image, would
// travel with each: its hash does, and a node fetches the text from the
// user's node when a client asks for it (BlobFetcher). Avatars always
// travel as hashes.
const maxRelayedComment = 4096

// relayedComment is what the other nodes are told of comment, whose
// blobHash is hash: the text, or the hash of one too long to travel.
func relayedComment(comment string, hash []byte) (string, []byte) {
	if len(comment) > maxRelayedComment {
		return "", hash
	}
	return comment, nil
}

// BlobKind names what a client can ask for by hash: an avatar or a comment.
type BlobKind string

// The blobs a node fetches from a remote user's node.
const (
	BlobTexture BlobKind = "texture"
	BlobComment BlobKind = "comment"
)

// BlobFetcher is implemented by a ClusterLink that can fetch a remote
// user's avatar or long comment from their node (LocalBlob there).
type BlobFetcher interface {
	FetchBlob(ctx context.Context, session uint32, kind BlobKind) ([]byte, error)
}

// blobFetchWait bounds the fetches of one RequestBlob: the client's other
// messages wait for them.
const blobFetchWait = 2 * time.Second

// LocalBlob is the avatar or comment of a local user, for another node
// whose client asked for it; nil if there is no such user or blob.
func (s *Server) LocalBlob(session uint32, kind BlobKind) []byte {
	s.mu.Lock()
	defer s.unlock()
	u, ok := s.users[session]
	switch {
	case !ok:
		return nil
	case kind == BlobTexture:
		return slices.Clone(u.texture)
	case kind == BlobComment:
		return []byte(u.comment)
	}
	return nil
}

// remoteUser is a user of another node as this node holds it.
type remoteUser struct {
	RemoteUser
	commentHash []byte // blobHash(Comment), or CommentHash
	node        uint16
	channel     *channel
	listening   []*channel
	subject     *acl.Subject
	speaker     *voice.Speaker
}

// SendVoice implements voice.Peer. The engine never delivers to a remote
// user (their node does), so a copy that reaches here is dropped.
func (r *remoteUser) SendVoice(*udpbatch.Batch, []byte, int64) voice.Path { return voice.Dropped }

func (r *remoteUser) format() wire.Format {
	if r.Protobuf {
		return wire.Protobuf
	}
	return wire.Legacy
}

func (r *remoteUser) stateMessage() *mumblepb.UserState {
	m := &mumblepb.UserState{
		Session:         ptr(r.Session),
		Name:            ptr(r.Name),
		ChannelId:       ptr(r.channel.id),
		Mute:            ptr(r.Mute),
		Deaf:            ptr(r.Deaf),
		Suppress:        ptr(r.Suppress),
		SelfMute:        ptr(r.SelfMute),
		SelfDeaf:        ptr(r.SelfDeaf),
		PrioritySpeaker: ptr(r.Priority),
		Recording:       ptr(r.Recording),
	}
	if r.UserID >= 0 {
		m.UserId = ptr(uint32(r.UserID))
	}
	if r.CertHash != "" {
		m.Hash = ptr(r.CertHash)
	}
	if r.commentHash != nil {
		m.CommentHash = r.commentHash
	} else if r.Comment != "" {
		m.Comment = ptr(r.Comment)
	}
	m.TextureHash = r.TextureHash
	for _, ch := range r.listening {
		m.ListeningChannelAdd = append(m.ListeningChannelAdd, ch.id)
	}
	return m
}

// failoverPlace is where a user of a dead node was, what they listened
// to (paths), and their comment as the cluster had it.
type failoverPlace struct {
	path      string
	listening []string
	comment   string
	until     time.Time
}

// clusterState is the world's part of a cluster node, under world.mu.
type clusterState struct {
	failover     map[string]failoverPlace // users of dead nodes, by personID (only in memory, failover_wait)
	floorAbsent  map[uint32]time.Time     // sessions on a floor that no node has, since when (clusterfloor.go)
	floors       map[string]*floorShare   // the halls' floors as shared with the cluster, by path (clusterfloor.go)
	cluster      ClusterLink
	remote       map[uint32]*remoteUser
	announced    map[uint32]RemoteUser // what the cluster was last told of each local user
	hears        []string              // the channel keys last announced
	announceSeq  uint64                // numbers announcements (Announcement.Seq)
	clusterDirty bool                  // a user's state may have changed since announceLocked
	clusterCut   atomic.Bool           // cut off from the cluster (SetCutOff); read without mu
	clusterSync  atomic.Bool           // has the cluster's shared documents (SetShared); read without mu
	// recordsElsewhere: another node of the cluster records the channels
	// marked record (SetRecordsHere), so this one keeps no file of them.
	recordsElsewhere bool
}

// checkClusterOptions is New's check of a cluster node's settings.
func checkClusterOptions(link ClusterLink) error {
	if link == nil {
		return nil
	}
	if n := link.Node(); n == 0 || n >= MaxNodes {
		return fmt.Errorf("cluster: node number %d out of range 1..%d", n, MaxNodes-1)
	}
	return nil
}

// pathKeyLocked is the cluster key of ch.
func (s *Server) pathKeyLocked(ch *channel) string {
	p, _ := s.pathOfLocked(ch)
	return ChannelKey(p)
}

// remoteStateLocked is u's state as the other nodes are told it.
func (s *Server) remoteStateLocked(u *user) RemoteUser {
	path, _ := s.pathOfLocked(u.channel)
	r := RemoteUser{
		Session: u.session, Name: u.name, UserID: u.userID, Channel: path,
		Mute: u.mute, Deaf: u.deaf, Suppress: u.suppress, SelfMute: u.selfMute, SelfDeaf: u.selfDeaf,
		Priority: u.prioritySpeak, Recording: u.recording, CertHash: u.certHash, Strong: u.strong,
		Tokens: u.tokens, Protobuf: u.format == wire.Protobuf, Plugin: string(u.pluginContext),
	}
	r.Comment, r.CommentHash = relayedComment(u.comment, u.commentHash)
	r.TextureHash = u.textureHash // kept with the texture: this runs for every user at every announcement
	if r.TextureHash == nil && len(u.texture) > 0 {
		r.TextureHash = sha1Sum(u.texture) // a small one
	}
	for ch := range u.listening {
		if p, ok := s.pathOfLocked(ch); ok {
			r.Listening = append(r.Listening, p)
		}
	}
	slices.Sort(r.Listening)
	for _, id := range slices.Sorted(maps.Keys(u.targets)) {
		t := RemoteTarget{ID: id}
		for _, tt := range u.targets[id].Targets {
			t.Sessions = append(t.Sessions, tt.Session...)
			if tt.ChannelId != nil {
				if ch, ok := s.channels[tt.GetChannelId()]; ok {
					p, _ := s.pathOfLocked(ch)
					t.Channels = append(t.Channels, RemoteChannelTarget{Path: p, Links: tt.GetLinks(), Children: tt.GetChildren(), Group: tt.GetGroup()})
				}
			}
		}
		r.Targets = append(r.Targets, t)
	}
	return r
}

// announceLocked tells the cluster, after the world lock is released,
// which local users changed or left since the last time, and which
// channels' speech this node's users hear when that changed.
func (s *Server) announceLocked() {
	s.clusterDirty = false
	a := Announcement{Seq: s.announceSeq + 1}
	for session, u := range s.users {
		r := s.remoteStateLocked(u)
		if old, ok := s.announced[session]; !ok || !reflect.DeepEqual(old, r) {
			s.announced[session] = r
			a.Users = append(a.Users, UserChange{Session: session, Seq: a.Seq, State: &r})
		}
	}
	for session := range s.announced {
		if _, ok := s.users[session]; !ok {
			delete(s.announced, session)
			a.Users = append(a.Users, UserChange{Session: session, Seq: a.Seq})
		}
	}
	if hears := s.hearsLocked(); !slices.Equal(hears, s.hears) {
		s.hears, a.Hears = hears, hears
	}
	if a.Users == nil && a.Hears == nil {
		return
	}
	s.announceSeq = a.Seq
	link := s.cluster
	s.afterUnlock = append(s.afterUnlock, func() { link.Announce(a) })
}

// hearsLocked is the sorted keys of the channels whose normal speech a
// local user hears: where they are, what they listen to, and the channels
// linked to those.
func (s *Server) hearsLocked() []string {
	set := map[string]struct{}{}
	add := func(ch *channel) {
		set[s.pathKeyLocked(ch)] = struct{}{}
		for _, l := range ch.allLinks() {
			set[s.pathKeyLocked(l)] = struct{}{}
		}
	}
	for _, u := range s.users {
		add(u.channel)
		for ch := range u.listening {
			add(ch)
		}
	}
	for _, ch := range s.channels {
		if ch.recorder != nil { // everyone's speech goes into the recording
			add(ch)
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Reannounce announces every local user again, for a node that asks for
// all of them (it joined, or lost track).
func (s *Server) Reannounce() {
	s.mu.Lock()
	defer s.unlock()
	clear(s.announced)
	s.clusterDirty = true
}

// ApplyRemote shows the users of node with the given states, adding those
// not yet known, and tells every local client.
func (s *Server) ApplyRemote(node uint16, states []RemoteUser) {
	s.mu.Lock()
	defer s.unlock()
	paths := s.livePathsLocked()
	for _, st := range states {
		if NodeOf(st.Session) != node || node == s.cluster.Node() {
			continue // not that node's to announce
		}
		r, known := s.remote[st.Session]
		if !known {
			r = &remoteUser{node: node, speaker: voice.NewSpeaker(s.now())}
		} else if reflect.DeepEqual(r.RemoteUser, st) {
			continue
		}
		hadComment, hadTexture, listened := r.Comment != "" || r.CommentHash != nil, r.TextureHash != nil, r.listening
		r.RemoteUser = st
		r.commentHash = blobHash(st.Comment)
		if st.CommentHash != nil {
			r.commentHash = st.CommentHash
		}
		r.channel = paths[st.Channel]
		if r.channel == nil {
			r.channel = s.root // a channel this node does not have (yet)
		}
		r.listening = nil
		for _, p := range st.Listening {
			if ch, ok := paths[p]; ok {
				r.listening = append(r.listening, ch)
			}
		}
		r.subject = &acl.Subject{Session: st.Session, UserID: st.UserID, Name: st.Name, CertHash: st.CertHash,
			Strong: st.Strong, Tokens: st.Tokens, Channel: r.channel.id}
		if s.permCache != nil {
			s.permCache.Forget(st.Session)
		}
		s.remote[st.Session] = r
		s.snapDirty = true
		m := r.stateMessage()
		if hadComment && st.Comment == "" && st.CommentHash == nil {
			m.Comment = ptr("") // cleared
		}
		if hadTexture && st.TextureHash == nil {
			m.Texture = []byte{} // cleared
		}
		for _, ch := range listened {
			if !slices.Contains(r.listening, ch) {
				m.ListeningChannelRemove = append(m.ListeningChannelRemove, ch.id)
			}
		}
		s.broadcastLocked(m, nil)
	}
	s.remoteCount.Store(int32(len(s.remote)))
}

// RemoveRemote takes the given remote users out of the tree.
func (s *Server) RemoveRemote(sessions []uint32) {
	s.mu.Lock()
	defer s.unlock()
	for _, session := range sessions {
		if r, ok := s.remote[session]; ok {
			s.removeRemoteLocked(r)
		}
	}
}

// RemoveNode takes every user of node out of the tree: the node left, or
// stopped sending heartbeats.
func (s *Server) RemoveNode(node uint16) int {
	s.mu.Lock()
	defer s.unlock()
	n := 0
	until := s.now().Add(s.config.Cluster.Wait())
	for _, r := range s.remote {
		if r.node == node {
			if key := personID(r.UserID, r.CertHash); key != "" {
				if s.failover == nil {
					s.failover = map[string]failoverPlace{}
				}
				s.failover[key] = failoverPlace{path: r.Channel, listening: r.Listening, comment: r.Comment, until: until}
			}
			s.removeRemoteLocked(r)
			n++
		}
	}
	return n
}

// failoverBack is what a user of a dead node gets back on this one: the
// channel they were in (nil if it is gone), the channels they listened
// to, and their comment (up to maxRelayedComment bytes; a longer one, or
// an avatar, was on the dead node only).
type failoverBack struct {
	channel   *channel
	listening []uint32
	comment   string
}

// takeFailoverLocked is what u gets back if u is reconnecting from
// another node (ok): their session is still listed (its node died and
// nobody has noticed yet, or it is being replaced), or their node died
// less than failover_wait ago. A remembered place is forgotten once taken.
func (s *Server) takeFailoverLocked(u *user) (back failoverBack, ok bool) {
	if ghosts := s.remoteGhostsLocked(u.name, u.userID, u.certHash); len(ghosts) > 0 {
		g := ghosts[0]
		for _, l := range g.listening {
			back.listening = append(back.listening, l.id)
		}
		back.channel, back.comment = g.channel, g.Comment
		return back, true
	}
	key := personID(u.userID, u.certHash)
	place, ok := s.failover[key]
	if !ok || key == "" {
		return back, false
	}
	delete(s.failover, key)
	for k, p := range s.failover {
		if s.now().After(p.until) {
			delete(s.failover, k)
		}
	}
	if s.now().After(place.until) {
		return back, false
	}
	paths := s.livePathsLocked()
	for _, p := range place.listening {
		if l, ok := paths[p]; ok {
			back.listening = append(back.listening, l.id)
		}
	}
	back.channel, back.comment = paths[place.path], place.comment
	return back, true
}

func (s *Server) removeRemoteLocked(r *remoteUser) {
	delete(s.remote, r.Session)
	s.remoteCount.Store(int32(len(s.remote)))
	s.snapDirty = true
	s.broadcastLocked(&mumblepb.UserRemove{Session: ptr(r.Session)}, nil)
}

// RemoteSessions is the sessions of the remote users this node shows, for
// tests and the cluster's bookkeeping.
func (s *Server) RemoteSessions() []uint32 {
	s.mu.Lock()
	defer s.unlock()
	return slices.Sorted(maps.Keys(s.remote))
}

// NewRemoteRouter returns a router for the goroutine that routes voice
// arriving from other nodes; it sends on the server's first UDP socket.
// The caller closes it.
func (s *Server) NewRemoteRouter() *voice.Router { return s.newRouter(s.udpSocks[0]) }

// RouteRemote routes a packet that a remote user's node relayed here to
// the local users who hear it, and reports whether it was routed.
func (s *Server) RouteRemote(r *voice.Router, session uint32, pl []byte, now int64) bool {
	sn := s.voice.Snapshot()
	u, ok := sn.Users[session]
	if !ok || u.Node == 0 {
		return false
	}
	return s.voice.Route(r, session, u.Peer, pl, now)
}

// remoteNameTakenLocked reports whether a remote user has name, unless
// that user is the same person (a reconnect after their node died: the
// remote ghost leaves within seconds).
func (s *Server) remoteNameTakenLocked(name string, userID int64, certHash string) bool {
	for _, r := range s.remote {
		if !strings.EqualFold(r.Name, name) {
			continue
		}
		if (userID >= 0 && r.UserID == userID) || (certHash != "" && r.CertHash == certHash) {
			continue
		}
		return true
	}
	return false
}

// snapshotRemoteLocked adds the remote users to a snapshot being built,
// after the local ones (their targets refer to sessions and channels).
func (s *Server) snapshotRemoteLocked(sn *voice.Snapshot) {
	if s.cluster == nil {
		return
	}
	keys := make(map[uint32]string, len(s.channels))
	for id, ch := range s.channels {
		keys[id] = s.pathKeyLocked(ch)
		sn.Channels[id].Key = keys[id]
	}
	paths := s.livePathsLocked()
	for session, r := range s.remote {
		if s.channels[r.channel.id] != r.channel {
			r.channel = s.root // its channel was removed here; its node will move it
		}
		vu := &voice.User{
			Session: session, Channel: sn.Channels[r.channel.id], Node: r.node,
			Silenced: r.Mute || r.Suppress || r.SelfMute, Priority: r.Priority,
			Deaf: r.Deaf || r.SelfDeaf, Format: r.format(), Plugin: r.Plugin,
			Subject: r.subject, Peer: r, Speaker: r.speaker,
		}
		vu.Channel.Members = append(vu.Channel.Members, vu)
		sn.Users[session] = vu
		sn.MaxSession = max(sn.MaxSession, session)
		for _, ch := range r.listening {
			vc := sn.Channels[ch.id]
			if vc == nil || s.channels[ch.id] != ch {
				continue
			}
			vc.Listeners = append(vc.Listeners, voice.Listener{User: vu, Volume: 1})
		}
		for _, rt := range r.Targets {
			if rt.ID == 0 || rt.ID > 30 {
				continue
			}
			t := &voice.Target{Sessions: rt.Sessions}
			for _, ct := range rt.Channels {
				if ch, ok := paths[ct.Path]; ok {
					t.Channels = append(t.Channels, voice.ChannelTarget{Channel: sn.Channels[ch.id], Links: ct.Links, Children: ct.Children, Group: ct.Group})
				}
			}
			vu.Targets[rt.ID] = t
		}
	}
}

// cutOffText is what the users of a node cut off from the cluster are told.
const cutOffText = "This server has lost its connection to the other servers of the plenary. " +
	"You hear and reach only the people connected to this server. Until it is back, moves, " +
	"channel and ACL edits, kicks, bans and registrations are refused, so that the plenary does not split in two. " +
	"If this lasts, reconnect: you may land on another server."

// backText is what they are told when the connection is back.
const backText = "This server is connected to the other servers of the plenary again."

// SetCutOff records whether this node has lost its connection to the
// cluster, and tells its users when that changes.
func (s *Server) SetCutOff(cut bool) {
	if s.clusterCut.Swap(cut) == cut {
		return
	}
	text := backText
	if cut {
		text = cutOffText
		s.log.Warn("cut off from the cluster: refusing changes it cannot share")
	} else {
		s.log.Info("connected to the cluster again")
	}
	s.mu.Lock()
	defer s.unlock()
	frame, err := control.Marshal(&mumblepb.TextMessage{Message: ptr(text)})
	if err != nil {
		return
	}
	for _, u := range s.users {
		u.conn.sendFrame(frame)
	}
}

// CutOff reports whether this node is cut off from its cluster.
func (s *Server) CutOff() bool { return s.clusterCut.Load() }

// SetShared records that this node has the cluster's shared documents
// (configuration, registrations, bans) and shares its own edits of them.
func (s *Server) SetShared() { s.clusterSync.Store(true) }

// refusedWhileCutOff refuses, with the reason, a change that a node cut
// off from its cluster could not share with the others, and an edit of
// a shared document made before the node has the cluster's, which would
// be neither shared nor kept: the cluster's revision replaces the node's
// as it joins (a moment after it starts).
func (s *Server) refusedWhileCutOff(u *user, msg proto.Message) bool {
	var reason string
	switch {
	case s.clusterCut.Load() && changesShared(msg, true):
		reason = "Refused: this server is cut off from the other servers of the plenary, and the change could not be shared. Try again when it is back."
	case s.cluster != nil && !s.clusterSync.Load() && changesShared(msg, false):
		reason = "Refused: this server is still joining the other servers of the plenary. Try again in a moment."
	default:
		return false
	}
	u.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Text.Enum(), Reason: ptr(reason)})
	return true
}

// changesShared reports whether msg changes what the cluster shares: its
// documents (channels and ACLs, registrations, bans), and with users too
// the users' states (moves, mutes), which travel over NATS.
func changesShared(msg proto.Message, users bool) bool {
	switch m := msg.(type) {
	case *mumblepb.UserState:
		return m.UserId != nil || users && (m.ChannelId != nil || m.Mute != nil || m.Deaf != nil ||
			m.Suppress != nil || m.PrioritySpeaker != nil)
	case *mumblepb.UserRemove:
		return users || m.GetBan()
	case *mumblepb.ChannelState, *mumblepb.ChannelRemove:
		return true
	case *mumblepb.ACL:
		return !m.GetQuery()
	case *mumblepb.BanList:
		return !m.GetQuery()
	case *mumblepb.UserList:
		return len(m.Users) > 0
	}
	return false
}

// SetRecordsHere tells a cluster node whether it is the one that records
// the channels marked record: the cluster records each once (the node
// decides, cluster.Node), with every speaker in it. Every node shows
// the recorder and its recording flag to its own users either way; only
// the recording node keeps a file, and while it does it hears the
// channel's speech from the other nodes even with nobody of its own in
// it. A change opens or closes the files without a word to the users:
// the channel is recorded all along.
func (s *Server) SetRecordsHere(here bool) {
	s.mu.Lock()
	defer s.unlock()
	if s.recordsElsewhere == !here {
		return
	}
	s.recordsElsewhere = !here
	for _, ch := range s.channels {
		if sh, ok := ch.stage.(*stage.Shaper); ok && sh.Shape().Record {
			s.setShapeLocked(ch, sh.Shape(), true)
		}
	}
	s.clusterDirty = true // what it hears changed
	s.log.Info("recording of the recorded channels", "here", here)
}
