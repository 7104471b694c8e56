package control

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// New returns a fresh, empty message for t, or nil for UDPTunnel (whose
// payload is not protobuf) and for unknown types.
func New(t Type) proto.Message {
	switch t {
	case Version:
		return &mumblepb.Version{}
	case Authenticate:
		return &mumblepb.Authenticate{}
	case Ping:
		return &mumblepb.Ping{}
	case Reject:
		return &mumblepb.Reject{}
	case ServerSync:
		return &mumblepb.ServerSync{}
	case ChannelRemove:
		return &mumblepb.ChannelRemove{}
	case ChannelState:
		return &mumblepb.ChannelState{}
	case UserRemove:
		return &mumblepb.UserRemove{}
	case UserState:
		return &mumblepb.UserState{}
	case BanList:
		return &mumblepb.BanList{}
	case TextMessage:
		return &mumblepb.TextMessage{}
	case PermissionDenied:
		return &mumblepb.PermissionDenied{}
	case ACL:
		return &mumblepb.ACL{}
	case QueryUsers:
		return &mumblepb.QueryUsers{}
	case CryptSetup:
		return &mumblepb.CryptSetup{}
	case ContextActionModify:
		return &mumblepb.ContextActionModify{}
	case ContextAction:
		return &mumblepb.ContextAction{}
	case UserList:
		return &mumblepb.UserList{}
	case VoiceTarget:
		return &mumblepb.VoiceTarget{}
	case PermissionQuery:
		return &mumblepb.PermissionQuery{}
	case CodecVersion:
		return &mumblepb.CodecVersion{}
	case UserStats:
		return &mumblepb.UserStats{}
	case RequestBlob:
		return &mumblepb.RequestBlob{}
	case ServerConfig:
		return &mumblepb.ServerConfig{}
	case SuggestConfig:
		return &mumblepb.SuggestConfig{}
	case PluginDataTransmission:
		return &mumblepb.PluginDataTransmission{}
	}
	return nil
}

// TypeOf returns the frame type that carries m. It reports false for
// messages that are never framed on their own: mumblepb.UDPTunnel (tunnelled
// voice is sent raw), nested messages and foreign types.
func TypeOf(m proto.Message) (Type, bool) {
	switch m.(type) {
	case *mumblepb.Version:
		return Version, true
	case *mumblepb.Authenticate:
		return Authenticate, true
	case *mumblepb.Ping:
		return Ping, true
	case *mumblepb.Reject:
		return Reject, true
	case *mumblepb.ServerSync:
		return ServerSync, true
	case *mumblepb.ChannelRemove:
		return ChannelRemove, true
	case *mumblepb.ChannelState:
		return ChannelState, true
	case *mumblepb.UserRemove:
		return UserRemove, true
	case *mumblepb.UserState:
		return UserState, true
	case *mumblepb.BanList:
		return BanList, true
	case *mumblepb.TextMessage:
		return TextMessage, true
	case *mumblepb.PermissionDenied:
		return PermissionDenied, true
	case *mumblepb.ACL:
		return ACL, true
	case *mumblepb.QueryUsers:
		return QueryUsers, true
	case *mumblepb.CryptSetup:
		return CryptSetup, true
	case *mumblepb.ContextActionModify:
		return ContextActionModify, true
	case *mumblepb.ContextAction:
		return ContextAction, true
	case *mumblepb.UserList:
		return UserList, true
	case *mumblepb.VoiceTarget:
		return VoiceTarget, true
	case *mumblepb.PermissionQuery:
		return PermissionQuery, true
	case *mumblepb.CodecVersion:
		return CodecVersion, true
	case *mumblepb.UserStats:
		return UserStats, true
	case *mumblepb.RequestBlob:
		return RequestBlob, true
	case *mumblepb.ServerConfig:
		return ServerConfig, true
	case *mumblepb.SuggestConfig:
		return SuggestConfig, true
	case *mumblepb.PluginDataTransmission:
		return PluginDataTransmission, true
	}
	return 0, false
}

// Marshal returns a whole frame (header and protobuf payload) for m.
//
// Proto2 required fields are checked, as Mumble's parser rejects a message
// that lacks one: sending it would make the peer drop it silently. A payload
// above MaxPayload gives ErrTooLarge, because the peer would disconnect.
func Marshal(m proto.Message) ([]byte, error) {
	t, ok := TypeOf(m)
	if !ok {
		return nil, fmt.Errorf("control: cannot frame %T: %w", m, ErrUnknownType)
	}
	size := proto.Size(m)
	if size > MaxPayload {
		return nil, fmt.Errorf("control: %v of %d bytes: %w", t, size, ErrTooLarge)
	}
	buf := make([]byte, HeaderSize, HeaderSize+size)
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return nil, fmt.Errorf("control: marshal %v: %w", t, err)
	}
	n := len(buf) - HeaderSize
	if n > MaxPayload { // cannot happen unless m changed concurrently
		return nil, fmt.Errorf("control: %v of %d bytes: %w", t, n, ErrTooLarge)
	}
	binary.BigEndian.PutUint16(buf[0:2], uint16(t))
	binary.BigEndian.PutUint32(buf[2:6], uint32(n))
	return buf, nil
}

// unmarshalOptions drops unknown fields: a server that relays a parsed
// message must not pass on data it did not understand (Murmur does not
// either), and keeping them would only cost memory.
var unmarshalOptions = proto.UnmarshalOptions{DiscardUnknown: true}

// Unmarshal parses payload as the message for t.
//
// It returns ErrUnknownType for UDPTunnel and unknown types, and the
// protobuf error for a malformed payload or one missing a proto2 required
// field. Murmur drops such messages without disconnecting; callers should
// do the same.
func Unmarshal(t Type, payload []byte) (proto.Message, error) {
	m := New(t)
	if m == nil {
		return nil, ErrUnknownType
	}
	if err := unmarshalOptions.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("control: unmarshal %v: %w", t, err)
	}
	return m, nil
}
