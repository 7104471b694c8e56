package server

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// FuzzHandle feeds arbitrary control frames to the handlers of an
// authenticated user and checks that the server neither panics nor
// breaks its own invariants. The seeds are one valid message of each
// kind a client sends.
func FuzzHandle(f *testing.F) {
	seed := func(m proto.Message) {
		t, _ := control.TypeOf(m)
		b, _ := proto.Marshal(m)
		f.Add(uint16(t), b)
	}
	seed(&mumblepb.Ping{Timestamp: proto.Uint64(1)})
	seed(&mumblepb.UserState{SelfMute: proto.Bool(true), ChannelId: proto.Uint32(1), Comment: proto.String("hi")})
	seed(&mumblepb.UserState{Session: proto.Uint32(2), Mute: proto.Bool(true), ListeningChannelAdd: []uint32{1, 2}})
	seed(&mumblepb.TextMessage{Message: proto.String("hello"), ChannelId: []uint32{0}, TreeId: []uint32{0}, Session: []uint32{2}})
	seed(&mumblepb.VoiceTarget{Id: proto.Uint32(3), Targets: []*mumblepb.VoiceTarget_Target{{Session: []uint32{2}, ChannelId: proto.Uint32(1), Children: proto.Bool(true)}}})
	seed(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("new"), Temporary: proto.Bool(true)})
	seed(&mumblepb.ChannelState{ChannelId: proto.Uint32(2), LinksAdd: []uint32{3}, Position: proto.Int32(4)})
	seed(&mumblepb.ChannelRemove{ChannelId: proto.Uint32(3)})
	seed(&mumblepb.ACL{ChannelId: proto.Uint32(1), Query: proto.Bool(true)})
	seed(&mumblepb.ACL{ChannelId: proto.Uint32(1), Acls: []*mumblepb.ACL_ChanACL{{Group: proto.String("all"), Deny: proto.Uint32(8)}}})
	seed(&mumblepb.CryptSetup{ClientNonce: make([]byte, 16)})
	seed(&mumblepb.RequestBlob{SessionComment: []uint32{1, 2}, ChannelDescription: []uint32{0}})
	seed(&mumblepb.UserStats{Session: proto.Uint32(2)})
	seed(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(1)})
	seed(&mumblepb.QueryUsers{Ids: []uint32{0, 1}, Names: []string{"SuperUser"}})
	seed(&mumblepb.BanList{Query: proto.Bool(true)})
	seed(&mumblepb.UserList{})
	seed(&mumblepb.UserRemove{Session: proto.Uint32(2), Ban: proto.Bool(true)})
	f.Add(uint16(control.UDPTunnel), voice.AppendAudio(nil, voice.Protobuf, &voice.Audio{Opus: []byte{1, 2, 3}}, false))
	f.Add(uint16(99), []byte{0xff, 0x00})

	s := newBareServer(f)
	a := s.addFakeUser(f, s.root, voice.Protobuf, netip.AddrPort{})
	s.addFakeUser(f, s.root, voice.Legacy, netip.AddrPort{})
	f.Fuzz(func(t *testing.T, typ uint16, payload []byte) {
		s.handle(a.conn, control.Type(typ), payload)
		for len(a.conn.ctrl.frames) > 0 { // the fake connection has no writer
			a.conn.ctrl.pop()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, ch := range s.channels {
			if ch.id != id || (id != 0 && s.channels[ch.parent.id] != ch.parent) {
				t.Fatalf("channel %d is inconsistent", id)
			}
		}
		for session, u := range s.users {
			if _, ok := s.channels[u.channel.id]; !ok {
				t.Fatalf("user %d is in a removed channel", session)
			}
		}
	})
}
