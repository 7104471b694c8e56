package voice

import (
	"github.com/plenum-voice/plenum/acl"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// Snapshot is everything the engine needs to route a packet, frozen at one
// moment. The control plane builds a new one after every change and
// publishes it (Engine.Publish); the engine never locks anything the
// control plane holds and never sees half a change. Nothing in a
// published snapshot is modified again.
type Snapshot struct {
	Users      map[uint32]*User // the users who speak and listen, by session
	Virtual    map[uint32]*User // the channels' virtual users: they only speak
	Channels   map[uint32]*Channel
	Policy     acl.Policy // permissions, evaluated against the snapshot's own tree
	MaxSession uint32     // the highest session in Users and Virtual
}

// Channel is a channel as the engine sees it.
type Channel struct {
	ID        uint32
	Key       string      // its name across a cluster (a hash of its path); "" on a single node
	Stage     stage.Stage // shapes the channel's normal speech; nil forwards it directly
	ACL       *acl.ChannelACL
	Parent    *Channel
	Children  []*Channel
	Members   []*User
	Listeners []Listener
	Links     []*Channel // the transitive closure of its links, itself excluded
}

// Listener is a user listening to a channel they are not in.
type Listener struct {
	User   *User
	Volume float32 // the listener's own factor for this channel; 1 = unchanged
}

// User is a speaker and listener as the engine sees it.
type User struct {
	Session  uint32
	Channel  *Channel
	Silenced bool // mute, suppress or self-mute: their packets go nowhere
	Priority bool // priority speaker: a shaping stage never leaves them out
	Deaf     bool // deaf or self-deaf: they receive nothing
	Format   wire.Format
	Plugin   string // plugin context; positional audio only flows within one
	Subject  *acl.Subject
	Targets  [31]*Target // whisper and shout targets, by id 1..30
	// Node is the cluster node the user is connected to, 1..63, when that
	// is another node; 0 for users of this one (see Relay).
	Node uint16

	// Peer is where the copies for this user go: the transport seam. It
	// is nil for a virtual user, who only speaks.
	Peer Peer
	// Speaker is this user's voice state that outlives snapshots (the
	// bandwidth limit, when they last spoke); nil for a virtual user.
	Speaker *Speaker
}

// Target is one of a user's whisper or shout targets (a VoiceTarget).
type Target struct {
	Sessions []uint32
	Channels []ChannelTarget
}

// ChannelTarget is a channel a target shouts to.
type ChannelTarget struct {
	Channel  *Channel
	Links    bool   // and the channels linked to it
	Children bool   // and its subchannels, all the way down
	Group    string // only members of this group; "" for everyone
}

// Parent implements acl.Tree over the snapshot.
func (sn *Snapshot) Parent(id uint32) (uint32, bool) {
	ch, ok := sn.Channels[id]
	if !ok || ch.Parent == nil {
		return 0, false
	}
	return ch.Parent.ID, true
}

// ACL implements acl.ACLTree over the snapshot.
func (sn *Snapshot) ACL(id uint32) *acl.ChannelACL {
	if ch, ok := sn.Channels[id]; ok {
		return ch.ACL
	}
	return nil
}

func (sn *Snapshot) may(u *User, ch *Channel, p acl.Permission) bool {
	return sn.Policy.Permissions(sn, u.Subject, ch.ID).Has(p)
}

// PrioritySpeaker reports whether session is a priority speaker on this
// snapshot; stages ask it (stage.NewShaper).
func (sn *Snapshot) PrioritySpeaker(session uint32) bool {
	u, ok := sn.Users[session]
	return ok && u.Priority
}
