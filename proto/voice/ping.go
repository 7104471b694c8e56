package voice

import "encoding/binary"

// DecodePing decodes a connectivity ping from inside the encrypted channel
// and returns its timestamp, which is opaque to the server and only echoed.
//
// Legacy: 0x20 (type 1 in the top bits; the low 5 bits are ignored, as
// Mumble ignores them) followed by a legacy varint; anything after the varint
// is ignored, as Mumble 1.5 ignores it, so that a client padding its pings
// still gets answers. Protobuf: 0x01 and a MumbleUDP.Ping, unknown fields
// skipped. Either way a packet of fewer than 2 bytes is rejected, as Mumble
// rejects it.
func DecodePing(b []byte, f Format) (timestamp uint64, err error) {
	if len(b) < 2 {
		return 0, ErrTruncated
	}
	if f == Protobuf {
		if b[0] != protoPing {
			return 0, ErrNotPing
		}
		var ping pingFields
		if !ping.parse(b[1:]) {
			return 0, ErrMalformed
		}
		return ping.timestamp, nil
	}
	if b[0]>>legacyTypeShift != legacyPing {
		return 0, ErrNotPing
	}
	v, n := ReadVarint(b[1:])
	if n == 0 {
		return 0, ErrTruncated
	}
	return v, nil
}

// AppendPing appends a ping carrying timestamp in format f to dst.
//
// The protobuf form always writes the timestamp field, even for 0: a bare
// type byte would be a valid empty Ping to protobuf, but Mumble discards
// any plaintext of a single byte.
func AppendPing(dst []byte, f Format, timestamp uint64) []byte {
	if f == Protobuf {
		dst = append(dst, protoPing, 1<<3|wireVarint)
		return appendPbVarint(dst, timestamp)
	}
	dst = append(dst, legacyPing<<legacyTypeShift)
	return AppendVarint(dst, timestamp)
}

// pingFields is what the server needs from a MumbleUDP.Ping.
type pingFields struct {
	timestamp uint64
	request   bool // request_extended_information
	// serverInfo: some of fields 3..6 (the answer-only fields) is present.
	serverInfo bool
}

// parse reads a serialized MumbleUDP.Ping, reporting false if malformed.
func (p *pingFields) parse(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := pbTag(b)
		if n == 0 {
			return false
		}
		b = b[n:]
		if num >= 3 && num <= 6 {
			p.serverInfo = true
		}
		if (num == 1 || num == 2) && typ == wireVarint {
			v, m := pbVarint(b)
			if m == 0 {
				return false
			}
			b = b[m:]
			if num == 1 {
				p.timestamp = v
			} else {
				p.request = v != 0
			}
			continue
		}
		m := pbSkip(b, num, typ, 0)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return true
}

// ServerInfo is what a server-list ping reports.
type ServerInfo struct {
	Version      uint64 // v2 encoding; legacy replies carry it as v1
	Users        uint32 // connected users (Murmur leaves bots out)
	MaxUsers     uint32
	MaxBandwidth uint32 // per user, bits per second
}

// legacyPingSize and legacyPongSize are the sizes of the legacy server-list
// ping and of Murmur's answer.
const (
	legacyPingSize = 12
	legacyPongSize = 24
)

// AnswerServerPing recognises an unencrypted server-list ping and builds the
// answer. A server calls it on every datagram before decryption, as Murmur
// does; isPing reports that req is such a ping, so it must not be fed to the
// decryptor (where it would count as a failed decrypt). When there is an
// answer it is appended to dst and returned; reply is nil when nothing is to
// be sent.
//
// Recognised requests:
//
//   - legacy: exactly 12 bytes, the first 4 of them zero, then 8 opaque
//     ident bytes chosen by the client;
//   - protobuf: 0x01 and a well-formed MumbleUDP.Ping with
//     request_extended_information set and none of the answer-only fields
//     3..6 (a datagram carrying those is an answer, perhaps reflected from
//     another server, and answering answers could make two servers ping-pong
//     forever). Other unknown fields are skipped.
//
// A plain protobuf Ping without the request flag is not a server-list ping:
// isPing is false, because inside the encrypted channel the first plaintext
// byte of a ping is also 0x01 and an encrypted datagram whose nonce byte is
// 0x01 must still reach the decryptor.
//
// Anti-amplification: a source address in UDP is trivially spoofed, so the
// answer is never longer than the request. The protobuf answer is 0x01 and a
// Ping with the echoed timestamp followed by as many whole fields of
// server_version_v2, user_count, max_user_count and max_bandwidth_per_user,
// in that order, as fit within len(req); zero values are omitted, as proto3
// would, and cost nothing. Murmur's legacy answer is 24 bytes for a 12-byte
// request (version as v1, the 8 ident bytes verbatim, users, max users,
// max bandwidth, all big-endian), so it is sent only if allowLegacyAmplify;
// otherwise a legacy request is recognised (isPing) but not answered.
//
// The trade-off: stock 1.3 and 1.4 clients only understand the legacy answer,
// so without allowLegacyAmplify their server lists show no ping time,
// version or user count for the server (connecting still works). A stock 1.5+ client's protobuf request carries a timestamp of
// nearly 64 bits and is about 14 bytes long, which leaves no room for the
// 8-byte version field; its list shows the ping time but no version or user
// counts (and when it also sent a legacy ping, whichever answer arrives last
// decides what it displays). Allowing the legacy amplification (2x, 24
// bytes) is what Murmur does; refusing it makes the server useless as a
// reflector.
func AnswerServerPing(dst, req []byte, info ServerInfo, allowLegacyAmplify bool) (reply []byte, isPing bool) {
	if len(req) == legacyPingSize && req[0] == 0 && req[1] == 0 && req[2] == 0 && req[3] == 0 {
		if !allowLegacyAmplify {
			return nil, true
		}
		dst = binary.BigEndian.AppendUint32(dst, legacyVersionV1(info.Version))
		dst = append(dst, req[4:legacyPingSize]...)
		dst = binary.BigEndian.AppendUint32(dst, info.Users)
		dst = binary.BigEndian.AppendUint32(dst, info.MaxUsers)
		dst = binary.BigEndian.AppendUint32(dst, info.MaxBandwidth)
		return dst, true
	}
	if len(req) < 2 || req[0] != protoPing {
		return nil, false
	}
	var ping pingFields
	if !ping.parse(req[1:]) || !ping.request || ping.serverInfo {
		return nil, false
	}

	start := len(dst)
	dst = append(dst, protoPing)
	if ping.timestamp != 0 {
		dst = append(dst, 1<<3|wireVarint)
		dst = appendPbVarint(dst, ping.timestamp)
	}
	// The request's own request flag takes at least 2 bytes that the
	// answer does not repeat, so the type byte and the timestamp always fit.
	fields := [...]struct {
		num uint64
		val uint64
	}{
		{3, info.Version},
		{4, uint64(info.Users)},
		{5, uint64(info.MaxUsers)},
		{6, uint64(info.MaxBandwidth)},
	}
	for _, fl := range fields {
		if fl.val == 0 {
			continue
		}
		if len(dst)-start+1+pbVarintLen(fl.val) > len(req) {
			break
		}
		dst = append(dst, byte(fl.num<<3|wireVarint))
		dst = appendPbVarint(dst, fl.val)
	}
	return dst, true
}

// legacyVersionV1 converts a v2 version to v1, saturating minor and patch at
// 255 (the same rule as control.VersionV1, repeated to keep this package
// free of dependencies).
func legacyVersionV1(v2 uint64) uint32 {
	major := uint32(uint16(v2 >> 48))
	minor := min(uint32(uint16(v2>>32)), 0xff)
	patch := min(uint32(uint16(v2>>16)), 0xff)
	return major<<16 | minor<<8 | patch
}
