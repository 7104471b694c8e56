package client

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// readTCP is the control-channel reader goroutine.
func (c *Client) readTCP() {
	defer c.wg.Done()
	for {
		t, payload, err := c.rd.Read()
		if err != nil {
			c.shutdown(err)
			return
		}
		c.handle(t, payload)
	}
}

// handle applies one control frame to the client's state, calls OnMessage
// and wakes Wait callers. It returns the decoded message (nil for voice and
// for frames it could not decode, which Mumble ignores as well).
func (c *Client) handle(t control.Type, payload []byte) proto.Message {
	if t == control.UDPTunnel {
		// The tunnel carries the plaintext UDP packet, not a protobuf.
		// handle runs on one goroutine at a time (Dial's, then the TCP
		// reader), which owns tcpAudio.
		c.receiveVoice(payload, false, time.Now(), &c.tcpAudio)
		return nil
	}
	m, err := control.Unmarshal(t, payload)
	if err != nil && c.cfg.OnUnknown != nil && control.New(t) == nil {
		c.cfg.OnUnknown(t, payload)
		return nil
	}
	if err != nil {
		c.log.Debug("ignoring control message", "type", t, "err", err)
		return nil
	}
	switch m := m.(type) {
	case *mumblepb.Version:
		v := control.VersionOf(m)
		c.serverVersion.Store(v)
		c.format.Store(uint32(udpFormat(c.version, v)))
	case *mumblepb.CryptSetup:
		c.cryptSetup(m)
	case *mumblepb.Ping:
		c.pong(m)
	case *mumblepb.ServerSync:
		c.mu.Lock()
		c.sync = proto.CloneOf(m)
		c.session = m.GetSession()
		c.mu.Unlock()
	case *mumblepb.ChannelState:
		c.mu.Lock()
		mergeChannel(c.channels, m)
		c.mu.Unlock()
	case *mumblepb.ChannelRemove:
		c.mu.Lock()
		removeChannel(c.channels, m.GetChannelId())
		c.mu.Unlock()
	case *mumblepb.UserState:
		c.mu.Lock()
		mergeUser(c.users, m)
		c.mu.Unlock()
	case *mumblepb.UserRemove:
		c.mu.Lock()
		delete(c.users, m.GetSession())
		c.mu.Unlock()
	case *mumblepb.BanList:
		c.mu.Lock()
		c.banList = m
		c.banLists++
		c.mu.Unlock()
	case *mumblepb.PermissionDenied:
		if m.GetType() == mumblepb.PermissionDenied_Permission && m.GetPermission()&banPermission != 0 {
			c.mu.Lock()
			c.banDenials++
			c.mu.Unlock()
		}
	}
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(t, m)
	}
	c.notify()
	return m
}

// udpFormat picks the voice format. Mumble's client decides by the server's
// version alone, but it is itself >= 1.5 then; the server encodes for a
// receiver by the receiver's version and decodes by the sender's, so a
// client announcing an older version must stay on the legacy format too.
func udpFormat(own, server uint64) voice.Format {
	return voice.FormatFor(min(own, server))
}

// cryptSetup follows Mumble's client: a full key, a resync of our decrypt
// IV, or (an empty message) the server asking for our encrypt IV.
func (c *Client) cryptSetup(m *mumblepb.CryptSetup) {
	switch {
	case m.Key != nil && m.ClientNonce != nil && m.ServerNonce != nil:
		c.encMu.Lock()
		c.decMu.Lock()
		err := c.crypt.SetKey(m.Key, m.ClientNonce, m.ServerNonce)
		if err == nil {
			c.keySet = time.Now()
			c.cryptOK.Store(true)
		}
		c.decMu.Unlock()
		c.encMu.Unlock()
		if err != nil {
			c.log.Warn("invalid CryptSetup key", "err", err)
		}
	case m.ServerNonce != nil:
		c.decMu.Lock()
		err := c.crypt.SetDecryptIV(m.ServerNonce)
		c.decMu.Unlock()
		if err != nil {
			c.log.Warn("invalid CryptSetup server nonce", "err", err)
		}
	default:
		c.encMu.Lock()
		iv := c.crypt.EncryptIV()
		c.encMu.Unlock()
		// Send may block on TCP; it runs on the reader goroutine like every
		// other reply, which is what keeps replies in order.
		if err := c.Send(&mumblepb.CryptSetup{ClientNonce: iv[:]}); err != nil {
			c.log.Debug("CryptSetup reply", "err", err)
		}
	}
}

// mergeChannel applies a ChannelState to the channel table. Scalars
// overwrite; links are kept as the full, symmetric link set in Links
// (Mumble sends links as a whole list at login and as links_add /
// links_remove deltas later, and a link always joins both channels).
func mergeChannel(channels map[uint32]*mumblepb.ChannelState, m *mumblepb.ChannelState) {
	if m.ChannelId == nil {
		return
	}
	id := m.GetChannelId()
	ch := channels[id]
	if ch == nil {
		ch = &mumblepb.ChannelState{ChannelId: proto.Uint32(id)}
		channels[id] = ch
	}
	delta := proto.CloneOf(m)
	delta.Links, delta.LinksAdd, delta.LinksRemove = nil, nil, nil
	proto.Merge(ch, delta)

	link := func(a, b uint32) {
		if ca := channels[a]; ca != nil && !slices.Contains(ca.Links, b) {
			ca.Links = append(ca.Links, b)
		}
	}
	unlink := func(a, b uint32) {
		if ca := channels[a]; ca != nil {
			ca.Links = slices.DeleteFunc(ca.Links, func(x uint32) bool { return x == b })
		}
	}
	if len(m.Links) > 0 {
		for _, old := range slices.Clone(ch.Links) {
			if !slices.Contains(m.Links, old) {
				unlink(id, old)
				unlink(old, id)
			}
		}
		for _, l := range m.Links {
			link(id, l)
			link(l, id)
		}
	}
	for _, l := range m.LinksAdd {
		link(id, l)
		link(l, id)
	}
	for _, l := range m.LinksRemove {
		unlink(id, l)
		unlink(l, id)
	}
}

// removeChannel deletes a channel and every link to it.
func removeChannel(channels map[uint32]*mumblepb.ChannelState, id uint32) {
	delete(channels, id)
	for _, ch := range channels {
		ch.Links = slices.DeleteFunc(ch.Links, func(x uint32) bool { return x == id })
	}
}

// mergeUser applies a UserState to the user table. Scalars overwrite;
// ListeningChannelAdd holds the current set of listened channels and
// ListeningVolumeAdjustment one entry per channel. Per-message fields
// (temporary access tokens, listening_channel_remove) are not kept.
func mergeUser(users map[uint32]*mumblepb.UserState, m *mumblepb.UserState) {
	if m.Session == nil {
		return
	}
	s := m.GetSession()
	u := users[s]
	if u == nil {
		u = &mumblepb.UserState{Session: proto.Uint32(s)}
		users[s] = u
	}
	delta := proto.CloneOf(m)
	delta.TemporaryAccessTokens = nil
	delta.ListeningChannelAdd, delta.ListeningChannelRemove = nil, nil
	delta.ListeningVolumeAdjustment = nil
	proto.Merge(u, delta)
	// An empty comment or avatar clears it, hash and all, as in Mumble.
	if m.Comment != nil && m.GetComment() == "" {
		u.CommentHash = nil
	}
	if m.Texture != nil && len(m.Texture) == 0 {
		u.TextureHash = nil
	}

	for _, ch := range m.ListeningChannelAdd {
		if !slices.Contains(u.ListeningChannelAdd, ch) {
			u.ListeningChannelAdd = append(u.ListeningChannelAdd, ch)
		}
	}
	for _, ch := range m.ListeningChannelRemove {
		u.ListeningChannelAdd = slices.DeleteFunc(u.ListeningChannelAdd, func(x uint32) bool { return x == ch })
		u.ListeningVolumeAdjustment = slices.DeleteFunc(u.ListeningVolumeAdjustment,
			func(v *mumblepb.UserState_VolumeAdjustment) bool { return v.GetListeningChannel() == ch })
	}
	for _, va := range m.ListeningVolumeAdjustment {
		i := slices.IndexFunc(u.ListeningVolumeAdjustment,
			func(v *mumblepb.UserState_VolumeAdjustment) bool {
				return v.GetListeningChannel() == va.GetListeningChannel()
			})
		if i >= 0 {
			u.ListeningVolumeAdjustment[i] = proto.CloneOf(va)
		} else {
			u.ListeningVolumeAdjustment = append(u.ListeningVolumeAdjustment, proto.CloneOf(va))
		}
	}
}

// Channels returns a copy of the merged channel states by id.
func (c *Client) Channels() map[uint32]*mumblepb.ChannelState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]*mumblepb.ChannelState, len(c.channels))
	for id, ch := range c.channels {
		out[id] = proto.CloneOf(ch)
	}
	return out
}

// Users returns a copy of the merged user states by session.
func (c *Client) Users() map[uint32]*mumblepb.UserState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]*mumblepb.UserState, len(c.users))
	for s, u := range c.users {
		out[s] = proto.CloneOf(u)
	}
	return out
}
