package control

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

func TestTypeString(t *testing.T) {
	cases := map[Type]string{
		Version: "Version", UDPTunnel: "UDPTunnel", ACL: "ACL",
		PluginDataTransmission: "PluginDataTransmission", 27: "Type(27)", 65535: "Type(65535)",
	}
	for typ, want := range cases {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", uint16(typ), got, want)
		}
	}
}

// Every type except UDPTunnel has a message; New and TypeOf are inverse, and
// the message's protobuf name is the Mumble name of the type.
func TestNewTypeOf(t *testing.T) {
	for typ := Type(0); typ < 40; typ++ {
		m := New(typ)
		if typ == UDPTunnel || typ >= numTypes {
			if m != nil {
				t.Errorf("New(%v) = %T, want nil", typ, m)
			}
			continue
		}
		if m == nil {
			t.Errorf("New(%v) = nil", typ)
			continue
		}
		if got, ok := TypeOf(m); !ok || got != typ {
			t.Errorf("TypeOf(New(%v)) = %v, %v", typ, got, ok)
		}
		if name := string(m.ProtoReflect().Descriptor().FullName()); name != "MumbleProto."+typ.String() {
			t.Errorf("New(%v) is %s", typ, name)
		}
		if New(typ) == m {
			t.Errorf("New(%v) returns a shared message", typ)
		}
	}
	for _, m := range []proto.Message{&mumblepb.UDPTunnel{}, &mumblepb.UserState_VolumeAdjustment{}, &mumblepb.ACL_ChanGroup{}} {
		if typ, ok := TypeOf(m); ok {
			t.Errorf("TypeOf(%T) = %v, want not ok", m, typ)
		}
	}
}

func TestMarshalUnmarshal(t *testing.T) {
	msgs := []proto.Message{
		&mumblepb.Version{VersionV1: proto.Uint32(0x00010500), VersionV2: proto.Uint64(MakeVersion(1, 5, 735)),
			Release: proto.String("Plenum"), Os: proto.String("Linux")},
		&mumblepb.Ping{Timestamp: proto.Uint64(123), Good: proto.Uint32(5), UdpPingAvg: proto.Float32(1.5)},
		&mumblepb.UserState{Session: proto.Uint32(3), Name: proto.String("alice"), SelfMute: proto.Bool(true),
			ListeningVolumeAdjustment: []*mumblepb.UserState_VolumeAdjustment{
				{ListeningChannel: proto.Uint32(1), VolumeAdjustment: proto.Float32(0.5)}}},
		&mumblepb.ServerSync{Session: proto.Uint32(3), MaxBandwidth: proto.Uint32(558000), Permissions: proto.Uint64(0xf07ff)},
		&mumblepb.CodecVersion{Alpha: proto.Int32(-2147483637), Beta: proto.Int32(0), PreferAlpha: proto.Bool(true), Opus: proto.Bool(true)},
		&mumblepb.PluginDataTransmission{SenderSession: proto.Uint32(1), ReceiverSessions: []uint32{2, 3}, Data: []byte{1}},
		&mumblepb.CryptSetup{},
	}
	for _, m := range msgs {
		frame, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", m, err)
		}
		r := NewReader(bytes.NewReader(frame))
		typ, payload, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := TypeOf(m); typ != want {
			t.Errorf("%T framed as %v", m, typ)
		}
		got, err := Unmarshal(typ, payload)
		if err != nil {
			t.Fatalf("Unmarshal(%v): %v", typ, err)
		}
		if !proto.Equal(got, m) {
			t.Errorf("round trip of %T: got %v, want %v", m, got, m)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	if _, err := Marshal(&mumblepb.UDPTunnel{Packet: []byte{1}}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("UDPTunnel: %v", err)
	}
	// Required field missing: Mumble would drop the message, so refuse it.
	if _, err := Marshal(&mumblepb.TextMessage{Session: []uint32{1}}); err == nil {
		t.Error("TextMessage without message: no error")
	}
	big := &mumblepb.TextMessage{Message: proto.String(string(make([]byte, MaxPayload)))}
	if _, err := Marshal(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized message: %v", err)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, typ := range []Type{UDPTunnel, 27, 1000} {
		if m, err := Unmarshal(typ, nil); m != nil || !errors.Is(err, ErrUnknownType) {
			t.Errorf("Unmarshal(%v) = %v, %v; want ErrUnknownType", typ, m, err)
		}
	}
	if _, err := Unmarshal(Ping, []byte{0x08}); err == nil || errors.Is(err, ErrUnknownType) {
		t.Errorf("truncated Ping: %v", err)
	}
	// ChannelRemove without its required channel_id.
	if _, err := Unmarshal(ChannelRemove, nil); err == nil {
		t.Error("ChannelRemove without channel_id: no error")
	}
	// Unknown fields are dropped rather than kept for relaying.
	m, err := Unmarshal(Ping, []byte{0x08, 0x01, 0xf8, 0x07, 0x05})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ProtoReflect().GetUnknown()) != 0 {
		t.Error("unknown fields kept")
	}
}
