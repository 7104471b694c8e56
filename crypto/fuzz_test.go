package crypto

import (
	"bytes"
	"testing"
)

// fuzzSeed is a packet and the base state (index into fuzzBases) it was
// made for.
type fuzzSeed struct {
	base   uint8
	packet []byte
}

// fuzzBases builds two decryptors and packets that they accept. Base 0 has
// received nonces fb..04 across a wrap of the low byte, with fc and fe never
// delivered, so its seeds cover late packets from before the wrap and an
// in-order, countermeasured silence packet. Its iv[1] is 0, so by Mumble's
// zeroed-history quirk it accepts no gaps. Base 1 sits at f0 with iv[1]
// 0x33; its seeds are in order, a gap, and a gap across a wrap.
func fuzzBases(t testing.TB) ([2]*CryptState, []fuzzSeed) {
	t.Helper()
	start := [NonceSize]byte{0xfa, 0xff, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	var enc, dec CryptState
	enc.SetKey(vectorKey[:], start[:], start[:])
	dec.SetKey(vectorKey[:], start[:], start[:])
	var pkts [][]byte
	for i := 0; i < 10; i++ {
		plain := bytes.Repeat([]byte{byte(i)}, 3*i+1)
		pkts = append(pkts, enc.Encrypt(nil, plain))
	}
	for i, p := range pkts {
		if i != 1 && i != 3 {
			if _, err := dec.Decrypt(nil, p); err != nil {
				t.Fatalf("setup packet %d: %v", i, err)
			}
		}
	}
	seeds := []fuzzSeed{{0, pkts[1]}, {0, pkts[3]}}
	seeds = append(seeds, fuzzSeed{0, enc.Encrypt(nil, make([]byte, 40))})

	startB := [NonceSize]byte{0xf0, 0x33, 0x44}
	var encB, decB CryptState
	encB.SetKey(vectorKey[:], startB[:], startB[:])
	decB.SetKey(vectorKey[:], startB[:], startB[:])
	seeds = append(seeds, fuzzSeed{1, encB.Encrypt(nil, []byte("in order"))}) // f1
	for i := 0; i < 5; i++ {
		encB.Encrypt(nil, nil)
	}
	seeds = append(seeds, fuzzSeed{1, encB.Encrypt(nil, []byte("lost some"))}) // f7
	for i := 0; i < 12; i++ {
		encB.Encrypt(nil, nil)
	}
	seeds = append(seeds, fuzzSeed{1, encB.Encrypt(nil, []byte("wrapped"))}) // 04
	return [2]*CryptState{&dec, &decB}, seeds
}

// The fuzz target's success checks only mean something if its seeds
// succeed.
func TestFuzzSeedsDecrypt(t *testing.T) {
	bases, seeds := fuzzBases(t)
	for i, s := range seeds {
		c := *bases[s.base]
		if _, err := c.Decrypt(nil, s.packet); err != nil {
			t.Errorf("seed %d (byte %02X): %v", i, s.packet[0], err)
		}
	}
	c := *bases[0]
	out, _ := c.Decrypt(nil, seeds[2].packet)
	if len(out) != 40 || out[16] != 1 {
		t.Errorf("silence seed decrypted to %X, want byte 16 = 01", out)
	}
}

// addToNonce adds k (-1, 0 or 1) to bytes 1..15 of iv as a little-endian
// counter.
func addToNonce(iv [NonceSize]byte, k int) [NonceSize]byte {
	switch k {
	case 1:
		incrementFrom(iv[:], 1)
	case -1:
		for i := 1; i < NonceSize; i++ {
			iv[i]--
			if iv[i] != 0xff {
				break
			}
		}
	}
	return iv
}

func FuzzDecrypt(f *testing.F) {
	bases, seeds := fuzzBases(f)
	for _, s := range seeds {
		f.Add(s.base, s.packet)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{0x05, 1, 2})
	f.Add(uint8(1), []byte{0xf1, 1, 2, 3})
	f.Add(uint8(0), bytes.Repeat([]byte{0xff}, 64))

	f.Fuzz(func(t *testing.T, which uint8, packet []byte) {
		base := bases[which&1]
		c := *base
		orig := append([]byte(nil), packet...)
		dst := []byte("prefix")
		out, err := c.Decrypt(dst, packet)
		if !bytes.Equal(packet, orig) {
			t.Fatal("Decrypt modified its input")
		}
		if c.encryptIV != base.encryptIV {
			t.Fatal("Decrypt touched the encrypt IV")
		}
		if err != nil {
			if string(out) != "prefix" || len(out) != len(dst) {
				t.Fatalf("failure changed dst: %q", out)
			}
			if !sameDecryptState(&c, base) {
				t.Fatalf("failure (%v) changed the decrypt state", err)
			}
			return
		}

		// Success: an honest sender with the right nonce must produce the
		// same packet. The nonce's high part is the base's, one more (ahead
		// across a wrap) or one less (late from before a wrap).
		if string(out[:6]) != "prefix" || len(out) != len(dst)+len(packet)-Overhead {
			t.Fatalf("bad output length or prefix: %q", out)
		}
		plain := out[len(dst):]
		s := c.Stats()
		if s.Good != base.stats.Good+1 || s.Resync != base.stats.Resync {
			t.Fatalf("stats %+v after success from %+v", s, base.stats)
		}
		found := false
		for _, k := range []int{0, 1, -1} {
			nonce := addToNonce(base.decryptIV, k)
			nonce[0] = packet[0]
			var sc ocbScratch
			ct := make([]byte, len(plain))
			// Without the countermeasure, so a forged attack-shaped
			// plaintext would still map back to its packet.
			ocbEncrypt(c.block, &sc, ct, plain, &nonce, false)
			if bytes.Equal(ct, packet[Overhead:]) && bytes.Equal(sc.tag[:3], packet[1:Overhead]) {
				found = true
				if c.history[nonce[0]] != nonce[1] {
					t.Fatal("history not updated")
				}
				break
			}
		}
		if !found {
			t.Fatal("accepted packet does not re-encrypt under any plausible nonce")
		}
		if c.decryptIV != base.decryptIV && c.decryptIV[0] != packet[0] {
			t.Fatalf("IV moved to %X for packet byte %02X", c.decryptIV, packet[0])
		}
		if _, err := c.Decrypt(nil, packet); err == nil {
			t.Fatal("replay of an accepted packet succeeded")
		}
	})
}

// FuzzEncryptDecrypt sends an arbitrary plaintext under an arbitrary key
// and IV from one CryptState to its peer. The peer must accept it once and
// recover the plaintext, with one exception: a penultimate block of the
// XEX* attack's shape arrives with its first byte flipped, which is the
// countermeasure Mumble applies and its receivers expect.
func FuzzEncryptDecrypt(f *testing.F) {
	f.Add(vectorKey[:], vectorKey[:], []byte{})
	f.Add(vectorKey[:], []byte{0xff, 0xff}, []byte("a short frame"))
	f.Add([]byte{1}, []byte{2}, bytes.Repeat([]byte{0x42}, 16))
	f.Add([]byte{1}, []byte{2}, bytes.Repeat([]byte{0x42}, 17))
	f.Add([]byte{3}, []byte{0xff}, make([]byte, 40))   // attack-shaped block, then a tail
	f.Add([]byte{3}, []byte{0xfe}, make([]byte, 32))   // attack-shaped block, then a full block
	f.Add([]byte{4}, []byte{0x00}, make([]byte, 1020)) // MaxPlaintext of a datagram
	f.Fuzz(func(t *testing.T, key, iv, plain []byte) {
		var k [KeySize]byte
		var n [NonceSize]byte
		copy(k[:], key)
		copy(n[:], iv)
		var sender, receiver CryptState
		sender.SetKey(k[:], n[:], n[:])
		receiver.SetKey(k[:], n[:], n[:])

		pkt := sender.Encrypt(nil, plain)
		if len(pkt) != len(plain)+Overhead {
			t.Fatalf("%d-byte plaintext encrypts to %d bytes", len(plain), len(pkt))
		}
		out, err := receiver.Decrypt([]byte("x"), pkt)
		if err != nil {
			t.Fatalf("%d-byte plaintext: %v", len(plain), err)
		}
		if want := countermeasured(plain); string(out) != "x"+string(want) {
			t.Fatalf("sent %X, received %X", want, out[1:])
		}
		if _, err := receiver.Decrypt(nil, pkt); err != ErrReplay {
			t.Fatalf("replay: %v", err)
		}
		if s := receiver.Stats(); s.Good != 1 || s.Late != 0 || s.Lost != 0 {
			t.Fatalf("stats %+v after one packet", s)
		}
	})
}

// countermeasured returns plain as a receiver sees it: if the last full
// block before the final piece has the attack's shape, its first byte is
// flipped.
func countermeasured(plain []byte) []byte {
	out := bytes.Clone(plain)
	if len(out) <= blockSize {
		return out
	}
	last := (len(out) - 1) / blockSize * blockSize // the final piece: 1 to 16 bytes
	pen := out[last-blockSize : last]
	if attackShape(pen) {
		pen[0] ^= 1
	}
	return out
}
