package server

import (
	"net/netip"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// snapshot is everything the voice path needs to route a packet, frozen at
// one moment. The control plane builds a new one after every change and
// swaps it in atomically; the voice path never locks anything shared with
// the control plane and never sees half a change.
type snapshot struct {
	users      map[uint32]*voiceUser
	virtual    map[uint32]*voiceUser // the channels' virtual users: they only speak, and have no u
	channels   map[uint32]*voiceChannel
	byIP       map[netip.Addr][]*user // candidates for UDP sender discovery
	policy     acl.Policy
	maxSession uint32
}

type voiceChannel struct {
	id        uint32
	stage     stage.Stage
	acl       *acl.ChannelACL
	parent    *voiceChannel
	children  []*voiceChannel
	members   []*voiceUser
	listeners []voiceListener
	links     []*voiceChannel // transitive closure, the channel itself excluded
}

// voiceListener is a user listening to a channel they are not in.
type voiceListener struct {
	vu     *voiceUser
	volume float32 // the listener's own factor for this channel; 1 = unchanged
}

// voiceUser is a user as the voice path sees it.
type voiceUser struct {
	u        *user
	session  uint32
	channel  *voiceChannel
	silenced bool // mute, suppress or self-mute: their packets go nowhere
	priority bool // priority speaker: a shaping stage never leaves them out
	deaf     bool // deaf or self-deaf: they receive nothing
	format   voice.Format
	plugin   string // plugin context; positional audio only flows within one
	subject  *acl.Subject
	targets  [31]*voiceTarget // indexed by target id 1..30
}

type voiceTarget struct {
	sessions []uint32
	channels []channelTarget
}

type channelTarget struct {
	ch       *voiceChannel
	links    bool
	children bool
	group    string
}

// Parent implements acl.Tree over the snapshot.
func (sn *snapshot) Parent(id uint32) (uint32, bool) {
	ch, ok := sn.channels[id]
	if !ok || ch.parent == nil {
		return 0, false
	}
	return ch.parent.id, true
}

// ACL implements acl.ACLTree over the snapshot.
func (sn *snapshot) ACL(id uint32) *acl.ChannelACL {
	if ch, ok := sn.channels[id]; ok {
		return ch.acl
	}
	return nil
}

func (sn *snapshot) may(vu *voiceUser, ch *voiceChannel, p acl.Permission) bool {
	return sn.policy.Permissions(sn, vu.subject, ch.id).Has(p)
}

// publishLocked builds and installs a new snapshot. It costs O(users +
// channels); the control plane calls it once per change, never per packet.
func (s *Server) publishLocked() {
	s.snapDirty = false
	sn := &snapshot{
		users:    make(map[uint32]*voiceUser, len(s.users)),
		virtual:  make(map[uint32]*voiceUser, len(s.virtual)),
		channels: make(map[uint32]*voiceChannel, len(s.channels)),
		byIP:     make(map[netip.Addr][]*user),

		policy: s.policy,
	}
	if s.permCache != nil {
		// The voice path evaluates against this snapshot's tree, so it gets
		// a cache of its own that can never hold answers from another tree.
		sn.policy = aclPolicy{cache: acl.NewCache()}
	}
	for id := range s.channels {

		sn.channels[id] = &voiceChannel{id: id, acl: s.channels[id].acl, stage: s.channels[id].stage}
	}
	for id, c := range s.channels {
		vc := sn.channels[id]
		if c.parent != nil {
			vc.parent = sn.channels[c.parent.id]
		}
		for _, child := range c.children {
			vc.children = append(vc.children, sn.channels[child.id])
		}
		for _, l := range c.allLinks() {
			vc.links = append(vc.links, sn.channels[l.id])
		}
	}
	for session, u := range s.users {
		vu := &voiceUser{
			u:        u,
			session:  session,
			channel:  sn.channels[u.channel.id],
			silenced: u.mute || u.suppress || u.selfMute,
			priority: u.prioritySpeak,
			deaf:     u.deaf || u.selfDeaf,
			format:   u.format,
			plugin:   string(u.pluginContext),
			subject:  u.subject,
		}
		vu.channel.members = append(vu.channel.members, vu)
		sn.users[session] = vu
		if session > sn.maxSession {
			sn.maxSession = session
		}
		ip := u.conn.remote.Addr().Unmap()
		sn.byIP[ip] = append(sn.byIP[ip], u)
	}
	for session, v := range s.virtual {
		sn.virtual[session] = &voiceUser{session: session, channel: sn.channels[v.channel.id], format: voice.Protobuf}
		sn.maxSession = max(sn.maxSession, session)
	}
	for _, vu := range sn.users {
		for ch, volume := range vu.u.listening {
			vc := sn.channels[ch.id]
			vc.listeners = append(vc.listeners, voiceListener{vu: vu, volume: volume})
		}
	}
	// Targets refer to users and channels, so they are resolved last.
	for _, vu := range sn.users {
		for id, vt := range vu.u.targets {
			t := &voiceTarget{}
			for _, tt := range vt.Targets {
				t.sessions = append(t.sessions, tt.Session...)
				if tt.ChannelId != nil {
					if ch, ok := sn.channels[tt.GetChannelId()]; ok {
						t.channels = append(t.channels, channelTarget{ch: ch, links: tt.GetLinks(), children: tt.GetChildren(), group: tt.GetGroup()})
					}
				}
			}
			vu.targets[id] = t
		}
	}
	s.snap.Store(sn)
}
