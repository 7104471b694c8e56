package voice

import "math"

// Audio is one decoded Opus voice packet. Decoding fills every field, so an
// Audio can be reused across packets without clearing.
type Audio struct {
	// Target is, client to server, the voice target: 0 normal speech, 1..30
	// a VoiceTarget id, 31 loopback. Server to client it is the context
	// (ContextNormal .. ContextListen). Legacy packets can carry 0..31 only.
	Target uint32
	// Sender is the speaker's session, present only in packets built by a
	// server. A server must overwrite it with the sender it authenticated,
	// never forward what a client put there.
	Sender uint32
	// Frame is the sequence number of the first audio frame in the packet.
	Frame uint64
	// Opus is the Opus packet. After decoding it aliases the input buffer
	// (with its capacity clipped, so appending to it cannot overwrite
	// bytes that follow it).
	Opus []byte
	// Terminator marks the last packet of a transmission.
	Terminator bool
	// HasPosition reports whether Position is present.
	HasPosition bool
	// Position is the speaker's x, y, z in metres.
	Position [3]float32
	// Volume is the gain the server asks the receiver to apply (protobuf
	// volume_adjustment). 0 means unset, i.e. 1.0; legacy packets cannot
	// carry it.
	Volume float32
}

// Legacy Opus length prefix: 13 bits of length and a terminator flag.
const (
	opusLenMask    = 0x1fff
	opusTerminator = 0x2000
)

// positionSize is three float32 values.
const positionSize = 12

// DecodeAudio decodes plaintext b of format f into a. fromServer says the
// packet was built by a server, which in the legacy format means it carries
// the sender's session after the header byte; in the protobuf format the
// fields speak for themselves and fromServer is not needed.
//
// The checks are those of Mumble 1.5+: Opus only (ErrNotAudio otherwise; use
// Peek to tell a ping or another codec apart cheaply), positional data of
// exactly three floats or none, and in the protobuf format non-empty Opus
// data. A legacy packet may carry an empty Opus frame, which Mumble accepts
// there. Unknown protobuf fields are skipped. On error the contents of a are
// unspecified.
func DecodeAudio(b []byte, f Format, fromServer bool, a *Audio) error {
	*a = Audio{}
	if f == Protobuf {
		return decodeProtobufAudio(b, a)
	}
	return decodeLegacyAudio(b, fromServer, a)
}

func decodeLegacyAudio(b []byte, fromServer bool, a *Audio) error {
	if len(b) == 0 {
		return ErrTruncated
	}
	if b[0]>>legacyTypeShift != legacyOpus {
		return ErrNotAudio
	}
	a.Target = uint32(b[0] & legacyTargetMask)
	p := b[1:]
	if fromServer {
		v, n := ReadVarint(p)
		if n == 0 {
			return ErrTruncated
		}
		a.Sender = uint32(v)
		p = p[n:]
	}
	v, n := ReadVarint(p)
	if n == 0 {
		return ErrTruncated
	}
	a.Frame = v
	p = p[n:]

	v, n = ReadVarint(p)
	if n == 0 {
		return ErrTruncated
	}
	p = p[n:]
	size := int(v & opusLenMask)
	a.Terminator = v&opusTerminator != 0
	if size > len(p) {
		return ErrTruncated
	}
	a.Opus = p[:size:size]
	p = p[size:]

	switch len(p) {
	case 0:
	case positionSize:
		a.HasPosition = true
		a.Position = [3]float32{float32At(p), float32At(p[4:]), float32At(p[8:])}
	default:
		// Mumble up to 1.4 relayed whatever followed the payload; 1.5+
		// rejects it, and so do we rather than forward unparsed bytes.
		return ErrPosition
	}
	return nil
}

func decodeProtobufAudio(b []byte, a *Audio) error {
	if len(b) == 0 {
		return ErrTruncated
	}
	if b[0] != protoAudio {
		return ErrNotAudio
	}
	p := b[1:]
	positions := 0
	for len(p) > 0 {
		num, typ, n := pbTag(p)
		if n == 0 {
			return ErrMalformed
		}
		p = p[n:]
		switch {
		case (num == 1 || num == 2 || num == 3 || num == 4 || num == 16) && typ == wireVarint:
			v, m := pbVarint(p)
			if m == 0 {
				return ErrMalformed
			}
			p = p[m:]
			switch num {
			case 1, 2:
				// A oneof: whichever of target and context comes last wins.
				a.Target = uint32(v)
			case 3:
				a.Sender = uint32(v)
			case 4:
				a.Frame = v
			case 16:
				a.Terminator = v != 0
			}
		case num == 5 && typ == wireBytes:
			val, m := pbBytes(p)
			if m == 0 {
				return ErrMalformed
			}
			a.Opus = val
			p = p[m:]
		case num == 6 && typ == wireBytes:
			// Packed floats (what every encoder writes for proto3).
			val, m := pbBytes(p)
			if m == 0 || len(val)%4 != 0 {
				return ErrMalformed
			}
			for ; len(val) > 0; val = val[4:] {
				if positions == 3 {
					return ErrPosition
				}
				a.Position[positions] = float32At(val)
				positions++
			}
			p = p[m:]
		case (num == 6 || num == 7) && typ == wireFixed32:
			// Parsers must also accept an unpacked repeated float.
			u, ok := pbFixed32(p)
			if !ok {
				return ErrMalformed
			}
			p = p[4:]
			if num == 7 {
				a.Volume = math.Float32frombits(u)
				break
			}
			if positions == 3 {
				return ErrPosition
			}
			a.Position[positions] = math.Float32frombits(u)
			positions++
		default:
			m := pbSkip(p, num, typ, 0)
			if m < 0 {
				return ErrMalformed
			}
			p = p[m:]
		}
	}
	if len(a.Opus) == 0 {
		return ErrNoOpus
	}
	switch positions {
	case 0:
	case 3:
		a.HasPosition = true
	default:
		return ErrPosition
	}
	return nil
}

// AppendAudio appends the encoding of a in format f to dst. fromServer
// selects the server-to-client form: the legacy format then carries Sender,
// and the protobuf format carries sender_session and writes Target as
// context (field 2) instead of target (field 1).
//
// The legacy format can express only Target 0..31 and Opus frames of up to
// 8191 bytes; for anything else AppendAudio appends nothing and returns dst
// unchanged, which callers detect by its length (Mumble drops such packets
// too). Volume is not representable in the legacy format and is ignored.
//
// The protobuf fields are written in the order Murmur writes them, so that
// packets are byte-identical to Murmur's: sender_session, frame_number,
// opus_data, is_terminator, positional_data (packed, only if HasPosition),
// volume_adjustment (only if neither 0 nor 1) and finally the target or
// context, which is written even when 0 because it belongs to a oneof.
// The caller keeps the packet within MaxPlaintext; only protobuf Opus data is
// not otherwise limited.
func AppendAudio(dst []byte, f Format, a *Audio, fromServer bool) []byte {
	if f == Protobuf {
		return appendProtobufAudio(dst, a, fromServer)
	}
	if a.Target > legacyTargetMask || len(a.Opus) > opusLenMask {
		return dst
	}
	dst = append(dst, legacyOpus<<legacyTypeShift|byte(a.Target))
	if fromServer {
		dst = AppendVarint(dst, uint64(a.Sender))
	}
	dst = AppendVarint(dst, a.Frame)
	size := uint64(len(a.Opus))
	if a.Terminator {
		size |= opusTerminator
	}
	dst = AppendVarint(dst, size)
	dst = append(dst, a.Opus...)
	if a.HasPosition {
		dst = appendFloat32(dst, a.Position[0])
		dst = appendFloat32(dst, a.Position[1])
		dst = appendFloat32(dst, a.Position[2])
	}
	return dst
}

// Protobuf tags of MumbleUDP.Audio, precomputed as (number<<3 | wire type).
const (
	tagTarget     = 1<<3 | wireVarint
	tagContext    = 2<<3 | wireVarint
	tagSender     = 3<<3 | wireVarint
	tagFrame      = 4<<3 | wireVarint
	tagOpus       = 5<<3 | wireBytes
	tagPositions  = 6<<3 | wireBytes
	tagVolume     = 7<<3 | wireFixed32
	tagTerminator = 16<<3 | wireVarint // two bytes on the wire: 0x80 0x01
)

func appendProtobufAudio(dst []byte, a *Audio, fromServer bool) []byte {
	dst = append(dst, protoAudio)
	// proto3 omits zero scalars; the decoders read absence as zero.
	if fromServer && a.Sender != 0 {
		dst = append(dst, tagSender)
		dst = appendPbVarint(dst, uint64(a.Sender))
	}
	if a.Frame != 0 {
		dst = append(dst, tagFrame)
		dst = appendPbVarint(dst, a.Frame)
	}
	if len(a.Opus) > 0 {
		dst = append(dst, tagOpus)
		dst = appendPbVarint(dst, uint64(len(a.Opus)))
		dst = append(dst, a.Opus...)
	}
	if a.Terminator {
		dst = append(dst, 0x80|tagTerminator&0x7f, tagTerminator>>7, 1)
	}
	if a.HasPosition {
		dst = append(dst, tagPositions, positionSize)
		dst = appendFloat32(dst, a.Position[0])
		dst = appendFloat32(dst, a.Position[1])
		dst = appendFloat32(dst, a.Position[2])
	}
	if a.Volume != 0 && a.Volume != 1 {
		dst = append(dst, tagVolume)
		dst = appendFloat32(dst, a.Volume)
	}
	if fromServer {
		dst = append(dst, tagContext)
	} else {
		dst = append(dst, tagTarget)
	}
	return appendPbVarint(dst, uint64(a.Target))
}
