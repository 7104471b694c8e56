// Package voice encodes and decodes Mumble's UDP voice plaintexts: the
// legacy format spoken by peers older than 1.5 and the protobuf format of
// 1.5+, the legacy PacketDataStream varint, and the unencrypted server-list
// ping.
//
// The same plaintexts travel inside OCB2-encrypted datagrams and, unencrypted,
// as UDPTunnel (TCP type 1) payloads; encryption is not this package's
// concern. Everything here is hand-written rather than generated because it
// runs once per packet per receiver: DecodeAudio, AppendAudio, DecodePing,
// AppendPing, ReadVarint and AppendVarint never allocate (decoded slices
// alias the input, encoders append to the caller's buffer), and the tests pin
// that with testing.AllocsPerRun.
//
// Which format to speak is decided per peer from its announced version (see
// FormatFor): a server decodes with the sender's format and encodes with
// each receiver's.
package voice

import "errors"

// Format is a UDP voice wire format.
type Format uint8

const (
	// Legacy is the pre-1.5 format: a header byte holding codec and
	// target, PacketDataStream varints, raw payload and raw floats.
	Legacy Format = iota
	// Protobuf is the 1.5+ format: a type byte and a MumbleUDP message.
	Protobuf
)

// String returns "legacy" or "protobuf".
func (f Format) String() string {
	switch f {
	case Legacy:
		return "legacy"
	case Protobuf:
		return "protobuf"
	}
	return "Format(?)"
}

// protobufUDPVersion duplicates control.ProtobufUDPVersion (1.5.0) so that
// this hot-path package depends on nothing but the standard library; a test
// keeps the two equal.
const protobufUDPVersion = 1<<48 | 5<<32

// FormatFor returns the format to use with a peer that announced version
// (v2 encoding). Mumble switches to protobuf at 1.5.0 exactly; an unknown
// version (0, e.g. a client that never sent Version) means legacy, because
// every client that can speak protobuf announces its version first.
func FormatFor(version uint64) Format {
	if version >= protobufUDPVersion {
		return Protobuf
	}
	return Legacy
}

// Audio targets (client to server) and contexts (server to client).
const (
	ContextNormal  = 0  // normal speech to the current channel
	ContextShout   = 1  // voice target that names a channel
	ContextWhisper = 2  // voice target that names users directly
	ContextListen  = 3  // heard through a channel listener (1.4+)
	TargetLoopback = 31 // client asks the server to echo its own voice
)

// MaxPacket is Mumble's limit for a whole UDP datagram (and for a tunnelled
// packet); longer ones are dropped.
const MaxPacket = 1024

// MaxPlaintext is the largest plaintext that still fits MaxPacket once the
// 4-byte OCB2 header (nonce byte and 3 tag bytes) is added.
const MaxPlaintext = MaxPacket - 4

// Kind classifies a plaintext by its first byte.
type Kind uint8

const (
	// KindInvalid is anything that is not a voice or ping packet, including
	// packets of fewer than 2 bytes (Mumble rejects a lone header byte).
	KindInvalid Kind = iota
	// KindAudio is Opus audio.
	KindAudio
	// KindPing is a connectivity ping inside the encrypted channel.
	KindPing
	// KindOtherCodec is legacy CELT or Speex audio. An Opus-only server
	// drops it, as Murmur does in Opus mode.
	KindOtherCodec
)

// String returns a short name for k.
func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindPing:
		return "ping"
	case KindOtherCodec:
		return "other-codec"
	}
	return "invalid"
}

// Legacy header byte: codec or packet type in the top 3 bits, target or
// context in the low 5.
const (
	legacyCELTAlpha = 0
	legacyPing      = 1
	legacySpeex     = 2
	legacyCELTBeta  = 3
	legacyOpus      = 4

	legacyTypeShift  = 5
	legacyTargetMask = 0x1f
)

// Protobuf type bytes.
const (
	protoAudio = 0
	protoPing  = 1
)

// Peek classifies plaintext b of format f without decoding it.
//
// In the legacy format 0x01 is CELT-Alpha with target 1, not a protobuf
// ping: a peer's format is fixed by its version, so Peek does not guess.
func Peek(b []byte, f Format) Kind {
	if len(b) < 2 {
		return KindInvalid
	}
	if f == Protobuf {
		switch b[0] {
		case protoAudio:
			return KindAudio
		case protoPing:
			return KindPing
		}
		return KindInvalid
	}
	switch b[0] >> legacyTypeShift {
	case legacyOpus:
		return KindAudio
	case legacyPing:
		return KindPing
	case legacyCELTAlpha, legacySpeex, legacyCELTBeta:
		return KindOtherCodec
	}
	return KindInvalid
}

// Errors returned by the decoders. They are fixed values so that rejecting a
// hostile packet costs no allocation.
var (
	// ErrTruncated: the packet ends inside a field.
	ErrTruncated = errors.New("voice: truncated packet")
	// ErrMalformed: an invalid varint, protobuf tag or wire type.
	ErrMalformed = errors.New("voice: malformed packet")
	// ErrNotAudio: the packet is not Opus audio (a ping, another codec or
	// an unknown type).
	ErrNotAudio = errors.New("voice: not an Opus audio packet")
	// ErrNotPing: the packet is not a ping.
	ErrNotPing = errors.New("voice: not a ping packet")
	// ErrPosition: positional data other than exactly three floats (in the
	// legacy format: trailing bytes other than none or 12).
	ErrPosition = errors.New("voice: positional data is not exactly 3 floats")
	// ErrNoOpus: a protobuf audio packet without Opus data, which Mumble
	// treats as invalid.
	ErrNoOpus = errors.New("voice: audio packet without Opus data")
)
