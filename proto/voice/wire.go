package voice

import "math"

// Minimal protobuf wire-format reading and writing for the two MumbleUDP
// messages. Decoding follows the behaviour of the official parsers closely
// enough that the tests can compare results with the generated udppb code:
// a known field with an unexpected wire type is skipped like an unknown one,
// the last occurrence of a scalar wins, and unknown fields (groups included)
// are skipped.

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5
)

// maxGroupDepth bounds nested unknown groups. No Mumble peer sends groups at
// all; the bound only keeps a hostile packet from driving deep recursion.
const maxGroupDepth = 64

// pbVarint decodes a protobuf varint (at most 10 bytes, the last carrying a
// single bit). n is 0 if b is truncated or the value overflows 64 bits.
func pbVarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// maxFieldNumber is the largest field number protobuf allows (2^29-1). The
// official parsers reject a tag beyond it; so must we, or a packet they
// refuse would count as valid here.
const maxFieldNumber = 1<<29 - 1

// pbTag decodes a field tag. n is 0 for a malformed tag, field number 0 or
// one beyond maxFieldNumber.
func pbTag(b []byte) (num uint64, typ uint8, n int) {
	v, n := pbVarint(b)
	if n == 0 {
		return 0, 0, 0
	}
	num = v >> 3
	if num == 0 || num > maxFieldNumber {
		return 0, 0, 0
	}
	return num, uint8(v & 7), n
}

// pbBytes decodes a length-delimited value. n counts the length prefix too.
func pbBytes(b []byte) (val []byte, n int) {
	l, m := pbVarint(b)
	if m == 0 || l > uint64(len(b)-m) {
		return nil, 0
	}
	end := m + int(l)
	return b[m:end:end], end
}

// pbFixed32 decodes a little-endian 32-bit value.
func pbFixed32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, true
}

// pbSkip returns the size of the value of a field with number num and wire
// type typ at the start of b, or -1 if it is malformed.
func pbSkip(b []byte, num uint64, typ uint8, depth int) int {
	switch typ {
	case wireVarint:
		_, n := pbVarint(b)
		if n == 0 {
			return -1
		}
		return n
	case wireFixed64:
		if len(b) < 8 {
			return -1
		}
		return 8
	case wireBytes:
		_, n := pbBytes(b)
		if n == 0 {
			return -1
		}
		return n
	case wireFixed32:
		if len(b) < 4 {
			return -1
		}
		return 4
	case wireStart:
		if depth >= maxGroupDepth {
			return -1
		}
		off := 0
		for {
			inner, t, n := pbTag(b[off:])
			if n == 0 {
				return -1
			}
			off += n
			if t == wireEnd {
				if inner != num {
					return -1
				}
				return off
			}
			m := pbSkip(b[off:], inner, t, depth+1)
			if m < 0 {
				return -1
			}
			off += m
		}
	}
	// A stray end-group, or wire types 6 and 7.
	return -1
}

// appendPbVarint appends a protobuf varint.
func appendPbVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// pbVarintLen is the encoded size of v as a protobuf varint.
func pbVarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendFloat32 appends f as 4 little-endian bytes. Protobuf always uses
// little-endian; Mumble's legacy positions use host order, which is
// little-endian on every platform Mumble ships for.
func appendFloat32(dst []byte, f float32) []byte {
	u := math.Float32bits(f)
	return append(dst, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
}

// float32At decodes 4 little-endian bytes; b must hold at least 4.
func float32At(b []byte) float32 {
	return math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}
