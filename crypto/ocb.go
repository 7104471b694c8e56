package crypto

import (
	"crypto/cipher"
	"encoding/binary"
)

const blockSize = 16

// ocbScratch holds the working blocks of one OCB2 operation. It lives inside
// CryptState rather than on the stack: the blocks are handed to cipher.Block
// through an interface, which would make stack arrays escape and cost an
// allocation per packet. The encrypt and decrypt sides each own one, so that
// the two sides can run concurrently.
type ocbScratch struct {
	delta, checksum, tmp, pad, tag [blockSize]byte
}

// double multiplies b by x in GF(2^128), with b read as a big-endian number.
func double(b *[blockSize]byte) {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo = lo<<1 ^ carry*0x87
	binary.BigEndian.PutUint64(b[0:8], hi)
	binary.BigEndian.PutUint64(b[8:16], lo)
}

// triple multiplies b by (x+1), which OCB2 uses to separate the tag's
// offset from every offset used for a message block.
func triple(b *[blockSize]byte) {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	carry := hi >> 63
	hi ^= hi<<1 | lo>>63
	lo ^= lo<<1 ^ carry*0x87
	binary.BigEndian.PutUint64(b[0:8], hi)
	binary.BigEndian.PutUint64(b[8:16], lo)
}

// xorBlock sets dst = a ^ b. a and b must hold at least 16 bytes. Working on
// two uint64 words is much faster than a byte loop.
func xorBlock(dst *[blockSize]byte, a, b []byte) {
	_, _ = a[15], b[15]
	binary.LittleEndian.PutUint64(dst[0:8], binary.LittleEndian.Uint64(a[0:8])^binary.LittleEndian.Uint64(b[0:8]))
	binary.LittleEndian.PutUint64(dst[8:16], binary.LittleEndian.Uint64(a[8:16])^binary.LittleEndian.Uint64(b[8:16]))
}

// attackShape reports whether the first 15 bytes of a block are zero. Only
// the last byte of OCB2's final-block length encoding is nonzero, so this is
// the shape that the XEX* forgery needs.
func attackShape(b []byte) bool {
	_ = b[14]
	return binary.LittleEndian.Uint64(b[0:8])|binary.LittleEndian.Uint64(b[7:15]) == 0
}

// ocbEncrypt encrypts plain into out[:len(plain)] under nonce and leaves the
// full 16-byte tag in s.tag. out may alias plain exactly; each block is read
// completely before its output is written.
//
// If modifyOnAttack is set, a penultimate block of attack shape is changed
// (byte 0 ^= 1, in both the cipher input and the checksum) so that the
// packet can't serve as a forgery template. If it is clear, the block is left
// alone and the function reports false. Only tests clear it, to prove that
// the receiver's check works.
func ocbEncrypt(b cipher.Block, s *ocbScratch, out, plain []byte, nonce *[NonceSize]byte, modifyOnAttack bool) bool {
	ok := true
	out = out[:len(plain)]
	b.Encrypt(s.delta[:], nonce[:])
	s.checksum = [blockSize]byte{}

	for len(plain) > blockSize {
		flip := false
		if len(plain) <= 2*blockSize && attackShape(plain) {
			if modifyOnAttack {
				flip = true
			} else {
				ok = false
			}
		}
		double(&s.delta)
		xorBlock(&s.tmp, s.delta[:], plain)
		xorBlock(&s.checksum, s.checksum[:], plain)
		if flip {
			s.tmp[0] ^= 1
			s.checksum[0] ^= 1
		}
		b.Encrypt(s.tmp[:], s.tmp[:])
		xorBlock(&s.tmp, s.tmp[:], s.delta[:])
		copy(out, s.tmp[:])
		plain = plain[blockSize:]
		out = out[blockSize:]
	}

	// The final piece is encrypted with a pad derived from its bit length.
	// Its checksum contribution is padded with the pad's own tail, which
	// binds the length to the tag.
	m := len(plain)
	double(&s.delta)
	s.tmp = s.delta
	s.tmp[blockSize-1] ^= byte(m * 8)
	b.Encrypt(s.pad[:], s.tmp[:])
	copy(s.tmp[:], plain)
	copy(s.tmp[m:], s.pad[m:])
	xorBlock(&s.checksum, s.checksum[:], s.tmp[:])
	for i := 0; i < m; i++ {
		out[i] = s.tmp[i] ^ s.pad[i]
	}

	triple(&s.delta)
	xorBlock(&s.tmp, s.delta[:], s.checksum[:])
	b.Encrypt(s.tag[:], s.tmp[:])
	return ok
}

// ocbDecrypt decrypts enc into out[:len(enc)] under nonce and leaves the
// full 16-byte tag it computed in s.tag, so the caller can compare the tag.
// out may alias enc exactly. It reports false if the final block has
// the XEX* attack's shape. The tag is computed in that case too.
func ocbDecrypt(b cipher.Block, s *ocbScratch, out, enc []byte, nonce *[NonceSize]byte) bool {
	out = out[:len(enc)]
	b.Encrypt(s.delta[:], nonce[:])
	s.checksum = [blockSize]byte{}

	for len(enc) > blockSize {
		double(&s.delta)
		xorBlock(&s.tmp, s.delta[:], enc)
		b.Decrypt(s.tmp[:], s.tmp[:])
		xorBlock(&s.tmp, s.tmp[:], s.delta[:])
		xorBlock(&s.checksum, s.checksum[:], s.tmp[:])
		copy(out, s.tmp[:])
		enc = enc[blockSize:]
		out = out[blockSize:]
	}

	m := len(enc)
	double(&s.delta)
	s.tmp = s.delta
	s.tmp[blockSize-1] ^= byte(m * 8)
	b.Encrypt(s.pad[:], s.tmp[:])
	s.tmp = [blockSize]byte{}
	copy(s.tmp[:], enc)
	xorBlock(&s.tmp, s.tmp[:], s.pad[:])
	xorBlock(&s.checksum, s.checksum[:], s.tmp[:])
	copy(out, s.tmp[:m])

	// A forged final block decrypts to delta ^ len(m). The attacker can't
	// control the length byte, so compare everything except the last byte.
	// We check tmp, not just the m plaintext bytes, because a forgery with a
	// short final piece works the same way.
	var diff byte
	for i := 0; i < blockSize-1; i++ {
		diff |= s.tmp[i] ^ s.delta[i]
	}

	triple(&s.delta)
	xorBlock(&s.tmp, s.delta[:], s.checksum[:])
	b.Encrypt(s.tag[:], s.tmp[:])
	return diff != 0
}
