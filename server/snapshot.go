package server

// The control plane's side of the voice engine: after every change it
// publishes an immutable snapshot of who hears whom (package voice).

import (
	"net/netip"

	"github.com/plenum-voice/plenum/acl"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/voice"
)

// publishLocked builds and installs a new snapshot, and the index of UDP
// sender candidates by address that goes with it. It costs O(users +
// channels); the control plane calls it once per change, never per packet.
func (s *Server) publishLocked() {
	s.snapDirty = false
	sn := &voice.Snapshot{
		Users:    make(map[uint32]*voice.User, len(s.users)),
		Virtual:  make(map[uint32]*voice.User, len(s.virtual)),
		Channels: make(map[uint32]*voice.Channel, len(s.channels)),
		Policy:   s.policy,
	}
	if s.permCache != nil {
		// The voice path evaluates against this snapshot's tree, so it gets
		// a cache of its own that can never hold answers from another tree.
		sn.Policy = aclPolicy{cache: acl.NewCache()}
	}
	for id, c := range s.channels {
		sn.Channels[id] = &voice.Channel{ID: id, ACL: c.acl, Stage: c.stage}
	}
	for id, c := range s.channels {
		vc := sn.Channels[id]
		if c.parent != nil {
			vc.Parent = sn.Channels[c.parent.id]
		}
		for _, child := range c.children {
			vc.Children = append(vc.Children, sn.Channels[child.id])
		}
		for _, l := range c.allLinks() {
			vc.Links = append(vc.Links, sn.Channels[l.id])
		}
	}
	byIP := make(map[netip.Addr][]*user)
	for session, u := range s.users {
		vu := &voice.User{
			Session:  session,
			Channel:  sn.Channels[u.channel.id],
			Silenced: u.mute || u.suppress || u.selfMute,
			Priority: u.prioritySpeak,
			Deaf:     u.deaf || u.selfDeaf,
			Format:   u.format,
			Plugin:   string(u.pluginContext),
			Subject:  u.subject,
			Peer:     u.voicePeer(),
			Speaker:  u.speaker,
		}
		vu.Channel.Members = append(vu.Channel.Members, vu)
		sn.Users[session] = vu
		sn.MaxSession = max(sn.MaxSession, session)
		if u.conn.web != nil {
			continue // a browser sends no Mumble UDP
		}
		ip := u.conn.remote.Addr().Unmap()
		byIP[ip] = append(byIP[ip], u)
	}
	for session, v := range s.virtual {
		sn.Virtual[session] = &voice.User{Session: session, Channel: sn.Channels[v.channel.id], Format: wire.Protobuf}
		sn.MaxSession = max(sn.MaxSession, session)
	}
	for session, vu := range sn.Users {
		for ch, volume := range s.users[session].listening {
			vc := sn.Channels[ch.id]
			vc.Listeners = append(vc.Listeners, voice.Listener{User: vu, Volume: volume})
		}
	}
	// Targets refer to users and channels, so they are resolved last.
	for session, vu := range sn.Users {
		for id, vt := range s.users[session].targets {
			t := &voice.Target{}
			for _, tt := range vt.Targets {
				t.Sessions = append(t.Sessions, tt.Session...)
				if tt.ChannelId != nil {
					if ch, ok := sn.Channels[tt.GetChannelId()]; ok {
						t.Channels = append(t.Channels, voice.ChannelTarget{Channel: ch, Links: tt.GetLinks(), Children: tt.GetChildren(), Group: tt.GetGroup()})
					}
				}
			}
			vu.Targets[id] = t
		}
	}
	s.snapshotRemoteLocked(sn)
	s.clusterDirty = true
	s.udpCandidates.Store(&byIP)
	s.voice.Publish(sn)
}
