package server

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/store"
	"github.com/plenum-voice/plenum/voice"
)

// udpFreshness is how long after the last valid UDP datagram a client still
// counts as reachable over UDP. Clients ping every 5 s, so three missed pings
// move its voice to the TCP tunnel: a client whose UDP path broke (a NAT
// mapping that expired, a network that started blocking UDP) keeps hearing.
const udpFreshness = 15 * time.Second

// user is an authenticated client. Fields are grouped by owner.
type user struct {
	conn    *conn
	session uint32

	// Immutable after authentication.
	name      string
	certHash  string
	strong    bool // in the "strong" group: no certificate, or one that verifies (strong.go)
	version   uint64
	format    wire.Format
	release   string
	os        string
	osVersion string
	opus      bool
	connected time.Time

	// apiToken names the admin API token this user acts for; "" for
	// everyone else (api.go).
	apiToken string

	// Control plane, guarded by Server.mu.
	userID         int64
	channel        *channel
	tokens         []string
	mute, deaf     bool
	suppress       bool
	selfMute       bool
	selfDeaf       bool
	prioritySpeak  bool
	recording      bool
	comment        string
	commentHash    []byte
	texture        []byte
	textureHash    []byte
	pluginContext  []byte
	pluginIdentity string
	targets        map[uint32]*mumblepb.VoiceTarget
	listening      map[*channel]float32 // channels listened to, with the volume factor
	subject        *acl.Subject         // replaced, never mutated
	signInGroups   []string             // from the sign-in provider, for the session (signin.go)
	// replaces are the sessions of this person that this login ended
	// (here or on another node); replaced marks such a session while it
	// is removed. A floor place passes from the one to the other.
	replaces      []uint32
	replaced      bool
	signInBy      string
	signInSources map[string]string
	clientStats   *mumblepb.Ping // the client's own numbers from its last Ping
	// What the client was told of its permissions (permquery.go): the
	// value per channel, and the channel it last asked about (-1: none).
	permSent      map[uint32]acl.Permission
	lastPermAsked int64

	// Voice path. The encrypt and decrypt halves of the CryptState are
	// guarded separately so forwarding to a user never waits for a decrypt
	// of that user's packets.
	encMu         sync.Mutex
	decMu         sync.Mutex
	crypt         crypto.CryptState
	lastResyncAsk time.Time // guarded by decMu
	udpAddr       atomic.Pointer[netip.AddrPort]
	gone          atomic.Bool  // set when the user leaves, so no address is bound to it again
	udpFlag       atomic.Bool  // false after tunnelled audio, true after UDP audio (as Murmur)
	lastUDP       atomic.Int64 // unix nanoseconds of the last valid UDP datagram
	udpPackets    atomic.Uint32
	tcpPackets    atomic.Uint32
	lastActive    atomic.Int64   // unix nanoseconds of the last non-automatic message
	speaker       *voice.Speaker // the engine's state of their speech: bandwidth limit, when they last spoke

	floorTime    time.Duration // time they held a hall's floor, ended turns (control plane)
	floorCounted time.Time     // the start of the last turn counted in floorTime (control plane)
	talkTime     time.Duration // time talking, counted once a second (statushistory.go; control plane)
	loss         lossWindow    // their loss over the last minute (statushistory.go; control plane)
}

// udpTarget returns the address to send voice to over UDP, or nil when the
// user must be reached through the TCP tunnel.
func (u *user) udpTarget(now int64) *netip.AddrPort {
	addr := u.udpAddr.Load()
	if addr == nil || !u.udpFlag.Load() || now-u.lastUDP.Load() > int64(udpFreshness) {
		return nil
	}
	return addr
}

// SendVoice implements voice.Peer for a Mumble client, whose copies go
// over one of two transports: encrypted into the router's datagrams when
// its UDP path is alive, else queued on its TCP connection (UDPTunnel).
func (u *user) SendVoice(out *udpbatch.Batch, pl []byte, now int64) voice.Path {
	if addr := u.udpTarget(now); addr != nil {
		buf := append(out.Slot()[:crypto.Overhead], pl...)
		out.AddSealed(buf, *addr, u)
		return voice.UDP
	}
	if u.conn.sendVoice(pl, now) {
		return voice.Tunnel
	}
	return voice.Dropped
}

// Seal implements udpbatch.Sealer: it encrypts a datagram built as
// crypto.Overhead bytes of room followed by the plaintext, in place, with
// the user's next nonce. The batch calls it just before sending, so the
// user's nonces leave in order whichever goroutine sends them.
func (u *user) Seal(pkt []byte) {
	u.encMu.Lock()
	u.crypt.Encrypt(pkt[:0], pkt[crypto.Overhead:])
	u.encMu.Unlock()
}

// voicePeer is where the engine sends this user's copies, and whose
// packets it takes as theirs: the user itself for a Mumble client, the
// WebRTC side for a browser.
func (u *user) voicePeer() voice.Peer {
	if u.conn.web != nil {
		return u.conn.web
	}
	return u
}

// refreshSubject rebuilds the permission subject after a change that can
// affect permissions (channel, tokens, registration).
func (u *user) refreshSubject() {
	u.subject = &acl.Subject{
		Session:  u.session,
		UserID:   u.userID,
		Name:     u.name,
		CertHash: u.certHash,
		Strong:   u.strong,
		Tokens:   u.tokens,
		Channel:  u.channel.id,

		SignInGroups:  u.signInGroups,
		SignInBy:      u.signInBy,
		SignInSources: u.signInSources,
	}
}

// hasCertificate reports whether u logged in with a client certificate,
// which registering and owning a channel one created ask for. A browser's
// certHash is its page's rejoin identity (web/rejoin.go), which lasts as
// long as the tab: nothing to keep a registration or a channel by.
func (u *user) hasCertificate() bool {
	return u.certHash != "" && (u.conn == nil || u.conn.web == nil)
}

// stored reports whether u is a registered user the store keeps things
// for (comment, avatar, listeners, last channel): not SuperUser's
// exceptions, not someone a sign-in provider vouched for.
func (u *user) stored() bool { return u.userID > 0 && !store.IsExternalID(u.userID) }

// stateMessage is the full UserState another client needs to know u, as
// Murmur sends it at login: blobs as hashes for 1.2.2+ clients.
func (u *user) stateMessage() *mumblepb.UserState {
	m := &mumblepb.UserState{
		Session:   &u.session,
		Name:      ptr(u.name),
		ChannelId: ptr(u.channel.id),
	}
	if u.userID >= 0 {
		m.UserId = ptr(uint32(u.userID))
	}
	if u.deaf {
		m.Deaf = ptr(true)
	} else if u.mute {
		m.Mute = ptr(true)
	}
	if u.suppress {
		m.Suppress = ptr(true)
	}
	if u.selfDeaf {
		m.SelfDeaf = ptr(true)
	} else if u.selfMute {
		m.SelfMute = ptr(true)
	}
	if u.prioritySpeak {
		m.PrioritySpeaker = ptr(true)
	}
	if u.recording {
		m.Recording = ptr(true)
	}
	if u.commentHash != nil {
		m.CommentHash = u.commentHash
	} else if u.comment != "" {
		m.Comment = ptr(u.comment)
	}
	if u.textureHash != nil {
		m.TextureHash = u.textureHash
	} else if len(u.texture) > 0 {
		m.Texture = u.texture
	}
	if u.certHash != "" {
		m.Hash = ptr(u.certHash)
	}
	m.ListeningChannelAdd = u.listeningIDs()
	return m
}

func ptr[T any](v T) *T { return &v }
