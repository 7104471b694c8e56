package voice

// Mumble's legacy packets use PacketDataStream's integer encoding, which is
// unrelated to protobuf varints: a prefix code whose first byte's leading
// bits give the length, with the value in big-endian order, plus two
// negative forms. Ints are sign-extended to 64 bits before encoding, so small
// negative numbers stay short.
//
//	0xxxxxxx                    7-bit value
//	10xxxxxx + 1 byte           14-bit value
//	110xxxxx + 2 bytes          21-bit value
//	1110xxxx + 3 bytes          28-bit value
//	111100__ + 4 bytes          32-bit value
//	111101__ + 8 bytes          64-bit value
//	111110__ + varint           bitwise NOT of the following varint
//	111111xx                    bitwise NOT of xx (-1 .. -4)

// maxNegations bounds the 111110__ prefixes ReadVarint follows, as Mumble
// does since 1.6: an honest encoder uses at most one, and without a bound a
// packet of nothing but such prefixes would cost work proportional to its
// size for every varint read.
const maxNegations = 8

// AppendVarint appends the legacy encoding of v to dst. v is a 64-bit
// pattern: values whose int64 lies in [-2^32, -1] use the negative forms, as
// Mumble's encoder does, so a sign-extended int round-trips byte for byte.
func AppendVarint(dst []byte, v uint64) []byte {
	if v&(1<<63) != 0 && ^v < 1<<32 {
		v = ^v
		if v <= 3 {
			return append(dst, 0xfc|byte(v))
		}
		dst = append(dst, 0xf8)
	}
	switch {
	case v < 0x80:
		return append(dst, byte(v))
	case v < 0x4000:
		return append(dst, 0x80|byte(v>>8), byte(v))
	case v < 0x200000:
		return append(dst, 0xc0|byte(v>>16), byte(v>>8), byte(v))
	case v < 0x10000000:
		return append(dst, 0xe0|byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case v < 1<<32:
		return append(dst, 0xf0, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(dst, 0xf4,
		byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ReadVarint decodes a legacy varint from the start of b. It returns the
// value and the number of bytes consumed, or n = 0 if b is truncated or
// nests more than 8 negation prefixes. Every first byte is otherwise valid.
// Non-minimal encodings are accepted, as Mumble accepts them.
func ReadVarint(b []byte) (v uint64, n int) {
	negations := 0
	for n < len(b) {
		c := b[n]
		rest := b[n+1:]
		switch {
		case c < 0x80:
			v, n = uint64(c), n+1
		case c < 0xc0:
			if len(rest) < 1 {
				return 0, 0
			}
			v, n = uint64(c&0x3f)<<8|uint64(rest[0]), n+2
		case c < 0xe0:
			if len(rest) < 2 {
				return 0, 0
			}
			v, n = uint64(c&0x1f)<<16|uint64(rest[0])<<8|uint64(rest[1]), n+3
		case c < 0xf0:
			if len(rest) < 3 {
				return 0, 0
			}
			v = uint64(c&0x0f)<<24 | uint64(rest[0])<<16 | uint64(rest[1])<<8 | uint64(rest[2])
			n += 4
		case c < 0xf4:
			if len(rest) < 4 {
				return 0, 0
			}
			v = uint64(rest[0])<<24 | uint64(rest[1])<<16 | uint64(rest[2])<<8 | uint64(rest[3])
			n += 5
		case c < 0xf8:
			if len(rest) < 8 {
				return 0, 0
			}
			v = uint64(rest[0])<<56 | uint64(rest[1])<<48 | uint64(rest[2])<<40 | uint64(rest[3])<<32 |
				uint64(rest[4])<<24 | uint64(rest[5])<<16 | uint64(rest[6])<<8 | uint64(rest[7])
			n += 9
		case c < 0xfc:
			if negations >= maxNegations {
				return 0, 0
			}
			negations++
			n++
			continue
		default:
			v, n = ^uint64(c&0x03), n+1
		}
		if negations&1 != 0 {
			v = ^v
		}
		return v, n
	}
	return 0, 0
}
