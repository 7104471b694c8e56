package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

const (
	// KeySize is the AES-128 key length.
	KeySize = 16
	// NonceSize is the length of the encrypt and decrypt IVs (one AES block).
	NonceSize = 16
	// Overhead is what Encrypt adds to a plaintext: one nonce byte and
	// three tag bytes.
	Overhead = 4
)

// Decrypt failures. They are plain sentinels so that returning them on the
// voice path doesn't allocate. Callers that only count failures can ignore
// which one it was. Mumble itself doesn't tell them apart.
var (
	// ErrShort means the packet is shorter than Overhead.
	ErrShort = errors.New("crypto: packet too short")
	// ErrReplay means the packet's nonce has already been accepted.
	ErrReplay = errors.New("crypto: replayed packet")
	// ErrLate means the nonce byte is outside the acceptance window: 30 or
	// more packets behind the newest one, or exactly 128 behind.
	ErrLate = errors.New("crypto: packet too late")
	// ErrAuth means the tag didn't match, the packet has the shape of the
	// XEX* forgery, or no key is set.
	ErrAuth = errors.New("crypto: authentication failed")
)

// lateWindow is how far behind the newest nonce a packet may be and still
// be accepted. The window is exclusive, so 29 positions is the most.
const lateWindow = 30

// Stats counts decrypt outcomes the way Mumble reports them in Ping
// messages.
type Stats struct {
	Good   uint32 // packets that decrypted and authenticated
	Late   uint32 // packets accepted out of order (behind the newest)
	Lost   uint32 // nonce gaps seen, minus gaps later filled by late packets
	Resync uint32 // SetDecryptIV calls, i.e. nonce resynchronisations
}

// CryptState is one direction pair of Mumble's UDP encryption: it encrypts
// with the encrypt IV and decrypts with the decrypt IV, under one shared key.
// The zero value has no key. Call GenerateKey or SetKey first.
//
// Concurrency: CryptState does no locking. The encrypt side (Encrypt; it
// uses the encrypt IV and its own scratch space) and the decrypt side
// (Decrypt, SetDecryptIV, DecryptIV, Stats, LastGood; they use the decrypt
// IV, replay history, counters, last-good time and a separate scratch space)
// touch disjoint fields. The key and AES cipher don't change after
// SetKey/GenerateKey. So a caller may guard the encrypt side with one mutex
// and the decrypt side with another, and a send path never waits for a
// receive path. SetKey, GenerateKey, EncryptIV and Key must not run
// concurrently with the side whose state they read or write.
type CryptState struct {
	// Immutable once a key is set.
	key   [KeySize]byte
	block cipher.Block

	// Encrypt side.
	encryptIV [NonceSize]byte
	encs      ocbScratch

	// Decrypt side.
	decryptIV [NonceSize]byte
	history   [256]byte
	stats     Stats
	lastGood  time.Time
	decs      ocbScratch
}

// GenerateKey sets a random key and random IVs, as a server does before it
// sends CryptSetup. It resets the replay history and the statistics.
//
// Neither IV has 0 or 255 as its second byte. A Mumble client starts its
// replay history zeroed, so while the second byte of its decrypt IV is 0
// (for up to the first 512 packets, if it starts at 255 or 0) it takes
// every packet that follows a lost or reordered one for a replay, and
// hears nothing until it asks for a resync after 5 s of silence: one
// client in 128 with random IVs.
func (c *CryptState) GenerateKey() error {
	var buf [KeySize + 2*NonceSize]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return fmt.Errorf("crypto: generating key: %w", err)
	}
	encryptIV, decryptIV := buf[KeySize:KeySize+NonceSize], buf[KeySize+NonceSize:]
	for _, iv := range [][]byte{encryptIV, decryptIV} {
		for iv[1] == 0 || iv[1] == 0xff {
			if _, err := rand.Read(iv[1:2]); err != nil {
				return fmt.Errorf("crypto: generating key: %w", err)
			}
		}
	}
	return c.SetKey(buf[:KeySize], encryptIV, decryptIV)
}

// SetKey installs a key and both IVs. It resets the replay history and the
// statistics: history from another key would cause false replay rejections.
// LastGood is kept, because a rekey doesn't change when the peer was last
// heard from.
func (c *CryptState) SetKey(key, encryptIV, decryptIV []byte) error {
	if len(key) != KeySize || len(encryptIV) != NonceSize || len(decryptIV) != NonceSize {
		return fmt.Errorf("crypto: SetKey needs %d-byte key and IVs, got %d, %d, %d",
			KeySize, len(key), len(encryptIV), len(decryptIV))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	c.block = block
	copy(c.key[:], key)
	copy(c.encryptIV[:], encryptIV)
	copy(c.decryptIV[:], decryptIV)
	// Every low byte counts as last accepted in the cycle before the
	// IV's, not in cycle 0: a zeroed history, as Mumble's, takes packets
	// that come out of order in the first cycles for replays when the
	// IV's second byte is 0.
	for i := range c.history {
		c.history[i] = decryptIV[1] - 1
	}
	c.stats = Stats{}
	return nil
}

// Key returns the raw AES key, for sending in CryptSetup.
func (c *CryptState) Key() [KeySize]byte { return c.key }

// EncryptIV returns the current encrypt IV. The peer uses it as its decrypt
// IV in a resync.
func (c *CryptState) EncryptIV() [NonceSize]byte { return c.encryptIV }

// DecryptIV returns the current decrypt IV.
func (c *CryptState) DecryptIV() [NonceSize]byte { return c.decryptIV }

// SetDecryptIV adopts the peer's encrypt IV after a resync request and
// counts the resync. The replay history is kept, as Mumble keeps it.
func (c *CryptState) SetDecryptIV(iv []byte) error {
	if len(iv) != NonceSize {
		return fmt.Errorf("crypto: SetDecryptIV needs a %d-byte IV, got %d", NonceSize, len(iv))
	}
	copy(c.decryptIV[:], iv)
	c.stats.Resync++
	return nil
}

// Stats returns the decrypt-side counters.
func (c *CryptState) Stats() Stats { return c.stats }

// LastGood returns when a packet last decrypted successfully, or the zero
// time if none has.
func (c *CryptState) LastGood() time.Time { return c.lastGood }

// Encrypt appends the encrypted packet (Overhead+len(plain) bytes) to dst
// and returns the extended slice, like cipher.AEAD.Seal. It allocates only
// if dst lacks capacity. The appended region may alias plain exactly.
// A common use is to build the payload at buf[Overhead:] and call
// Encrypt(buf[:0], buf[Overhead:Overhead+n]). Any other overlap corrupts the
// output. Encrypt panics if no key is set, which is a programming error.
func (c *CryptState) Encrypt(dst, plain []byte) []byte {
	if c.block == nil {
		panic("crypto: Encrypt on CryptState without a key")
	}
	incrementFrom(c.encryptIV[:], 0)
	ret, out := sliceForAppend(dst, Overhead+len(plain))
	ocbEncrypt(c.block, &c.encs, out[Overhead:], plain, &c.encryptIV, true)
	out[0] = c.encryptIV[0]
	copy(out[1:Overhead], c.encs.tag[:Overhead-1])
	return ret
}

// Decrypt authenticates packet, appends its plaintext to dst and returns the
// extended slice. The appended region may alias packet[Overhead:] exactly.
// On failure it returns dst unchanged and an error, and the decrypt state
// (IV, history, statistics) is as before. Any bytes already written past
// len(dst) are zeroed so that unauthenticated plaintext isn't exposed.
func (c *CryptState) Decrypt(dst, packet []byte) ([]byte, error) {
	if len(packet) < Overhead {
		return dst, ErrShort
	}
	if c.block == nil {
		return dst, ErrAuth
	}

	saved := c.decryptIV
	iv := &c.decryptIV
	b := packet[0]
	restore := false
	late, lost := 0, 0

	if b == iv[0]+1 {
		// In order. When the byte wraps to 0, the high part advances. No
		// history check here: this nonce is newer than anything accepted.
		if b < iv[0] {
			incrementFrom(iv[:], 1)
		}
		iv[0] = b
	} else {
		// Out of order, lost packets, or a repeat. The signed distance is
		// taken mod 256 into [-128, 128]. Both ends can occur: +128 counts
		// as a gap and -128 is rejected.
		diff := int(b) - int(iv[0])
		if diff > 128 {
			diff -= 256
		} else if diff < -128 {
			diff += 256
		}
		switch {
		case b < iv[0] && diff > -lateWindow && diff < 0:
			// Late, same cycle of the low byte.
			late, lost = 1, -1
			iv[0] = b
			restore = true
		case b > iv[0] && diff > -lateWindow && diff < 0:
			// Late, from before the low byte last wrapped (newest is 0x02,
			// this is 0xff). Step the high part back one. The borrow
			// continues only past bytes that were 0 before the decrement.
			late, lost = 1, -1
			iv[0] = b
			for i := 1; i < NonceSize; i++ {
				old := iv[i]
				iv[i]--
				if old != 0 {
					break
				}
			}
			restore = true
		case b > iv[0] && diff > 0:
			// Ahead: some packets were lost in between.
			lost = int(b) - int(iv[0]) - 1
			iv[0] = b
		case b < iv[0] && diff > 0:
			// Ahead across a wrap of the low byte.
			lost = 256 - int(iv[0]) + int(b) - 1
			iv[0] = b
			incrementFrom(iv[:], 1)
		default:
			if diff == 0 {
				return dst, ErrReplay
			}
			return dst, ErrLate
		}
		// The history stores, for each low byte, the second byte of the
		// last accepted nonce. That is enough to tell this cycle's packet
		// from one 256 packets older.
		if c.history[iv[0]] == iv[1] {
			c.decryptIV = saved
			return dst, ErrReplay
		}
	}

	ret, out := sliceForAppend(dst, len(packet)-Overhead)
	ok := ocbDecrypt(c.block, &c.decs, out, packet[Overhead:], iv)
	if !ok || subtle.ConstantTimeCompare(c.decs.tag[:Overhead-1], packet[1:Overhead]) != 1 {
		clear(out)
		c.decryptIV = saved
		return dst, ErrAuth
	}
	c.history[iv[0]] = iv[1]
	if restore {
		// A late packet must not move the IV backwards. Newer packets are
		// still expected after the newest one seen.
		c.decryptIV = saved
	}

	c.stats.Good++
	c.stats.Late += uint32(late)
	// Mumble applies a negative adjustment only if the counter stays
	// above zero (the comparison is strict and on the value read as a
	// signed int). So a Lost of 1 is not reduced to 0 by a late packet.
	if lost > 0 {
		c.stats.Lost += uint32(lost)
	} else if int32(c.stats.Lost) > int32(-lost) {
		c.stats.Lost -= uint32(-lost)
	}
	c.lastGood = time.Now()
	return ret, nil
}

// incrementFrom adds 1 to iv[from:] read as a little-endian counter.
func incrementFrom(iv []byte, from int) {
	for i := from; i < len(iv); i++ {
		iv[i]++
		if iv[i] != 0 {
			return
		}
	}
}

// sliceForAppend extends in by n bytes, reusing its capacity when possible.
// It returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
