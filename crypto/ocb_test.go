package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"testing"
)

// Key 00 01 .. 0f, used by all of Mumble's fixed vectors.
var vectorKey = [KeySize]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}

// Nonce ff ee dd .. 00, used by the authcrypt, XEX* and tamper tests.
var vectorNonce = [NonceSize]byte{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorBlock(t testing.TB) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(vectorKey[:])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Test vectors from draft-krovetz-ocb-00, as used by Mumble's TestCrypt.
func TestOCBVectors(t *testing.T) {
	blk := vectorBlock(t)
	var s ocbScratch
	nonce := vectorKey // the vectors use the key bytes as the nonce

	if !ocbEncrypt(blk, &s, nil, nil, &nonce, true) {
		t.Fatal("empty encrypt reported failure")
	}
	if want := mustHex(t, "BF3108130773AD5EC70EC69E7875A7B0"); !bytes.Equal(s.tag[:], want) {
		t.Errorf("empty tag = %X, want %X", s.tag, want)
	}

	plain := make([]byte, 40)
	for i := range plain {
		plain[i] = byte(i)
	}
	ct := make([]byte, 40)
	if !ocbEncrypt(blk, &s, ct, plain, &nonce, true) {
		t.Fatal("40-byte encrypt reported failure")
	}
	wantCT := mustHex(t, "F75D6BC8B4DC8D66B836A2B08B32A6369F1CD3C5228D79FD6C267F5F6AA7B231C7DFB9D59951AE9C")
	wantTag := mustHex(t, "9DB0CDF880F73E3E10D4EB3217766688")
	if !bytes.Equal(ct, wantCT) {
		t.Errorf("ciphertext = %X, want %X", ct, wantCT)
	}
	if !bytes.Equal(s.tag[:], wantTag) {
		t.Errorf("tag = %X, want %X", s.tag, wantTag)
	}

	// The decrypt primitive must invert it and compute the same tag.
	pt := make([]byte, 40)
	if !ocbDecrypt(blk, &s, pt, ct, &nonce) {
		t.Fatal("40-byte decrypt reported failure")
	}
	if !bytes.Equal(pt, plain) || !bytes.Equal(s.tag[:], wantTag) {
		t.Errorf("decrypt gave %X tag %X", pt, s.tag)
	}
}

func TestOCBAuthcrypt(t *testing.T) {
	blk := vectorBlock(t)
	var es, ds ocbScratch
	for n := 0; n < 128; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i + 1)
		}
		enc := make([]byte, n)
		dec := make([]byte, n)
		if !ocbEncrypt(blk, &es, enc, src, &vectorNonce, true) {
			t.Fatalf("len %d: encrypt failed", n)
		}
		if !ocbDecrypt(blk, &ds, dec, enc, &vectorNonce) {
			t.Fatalf("len %d: decrypt failed", n)
		}
		if es.tag != ds.tag {
			t.Errorf("len %d: tags differ: %X vs %X", n, es.tag, ds.tag)
		}
		if !bytes.Equal(src, dec) {
			t.Errorf("len %d: plaintext differs", n)
		}
		if n > 0 && bytes.Equal(src, enc) {
			t.Errorf("len %d: ciphertext equals plaintext", n)
		}
	}
}

// The attack from section 4.1 of eprint 2019/311, as in Mumble's
// xexstarAttack test.
func TestOCBXEXStarAttack(t *testing.T) {
	blk := vectorBlock(t)
	var s ocbScratch

	src := make([]byte, 2*blockSize)
	src[blockSize-1] = blockSize * 8 // block 1 encodes "a full final block"
	for i := blockSize; i < 2*blockSize; i++ {
		src[i] = 42
	}
	enc := make([]byte, 2*blockSize)
	encryptOK := ocbEncrypt(blk, &s, enc, src, &vectorNonce, false)

	// Forge a one-block message from the two-block ciphertext.
	enc[blockSize-1] ^= blockSize * 8
	var forgedTag [blockSize]byte
	for i := range forgedTag {
		forgedTag[i] = src[blockSize+i] ^ enc[blockSize+i]
	}
	dec := make([]byte, blockSize)
	decryptOK := ocbDecrypt(blk, &s, dec, enc[:blockSize], &vectorNonce)

	// The forged tag is valid. Only the shape check stops the forgery.
	if s.tag != forgedTag {
		t.Errorf("forged tag %X does not match computed %X; attack setup is wrong", forgedTag, s.tag)
	}
	if encryptOK {
		t.Error("encrypt without countermeasure did not report the attack shape")
	}
	if decryptOK {
		t.Error("decrypt accepted the forged packet")
	}

	// With the countermeasure the packet round-trips with byte 0 changed.
	enc = make([]byte, 2*blockSize)
	if !ocbEncrypt(blk, &s, enc, src, &vectorNonce, true) {
		t.Fatal("encrypt with countermeasure failed")
	}
	encTag := s.tag
	dec = make([]byte, 2*blockSize)
	if !ocbDecrypt(blk, &s, dec, enc, &vectorNonce) {
		t.Fatal("decrypt of countermeasured packet failed")
	}
	if s.tag != encTag {
		t.Errorf("tags differ: %X vs %X", encTag, s.tag)
	}
	if src[0] != 0 || dec[0] != 1 {
		t.Errorf("src[0]=%d dec[0]=%d, want 0 and 1", src[0], dec[0])
	}
	if !bytes.Equal(dec[1:], src[1:]) {
		t.Error("countermeasure changed more than byte 0")
	}
}

// The countermeasure applies only to the block before the final piece,
// for any final piece length from 1 to 16. Earlier blocks and single-block
// messages pass through unchanged.
func TestOCBCountermeasureScope(t *testing.T) {
	blk := vectorBlock(t)
	var es, ds ocbScratch
	for n := 0; n <= 64; n++ {
		src := make([]byte, n) // all zeros, like digital silence
		enc := make([]byte, n)
		dec := make([]byte, n)
		ocbEncrypt(blk, &es, enc, src, &vectorNonce, true)
		if !ocbDecrypt(blk, &ds, dec, enc, &vectorNonce) || es.tag != ds.tag {
			t.Fatalf("len %d: round trip failed", n)
		}
		want := make([]byte, n)
		if n > blockSize {
			want[(n-1)/blockSize*blockSize-blockSize] = 1
		}
		if !bytes.Equal(dec, want) {
			t.Errorf("len %d: got %X, want %X", n, dec, want)
		}
	}
}

func TestOCBInPlace(t *testing.T) {
	blk := vectorBlock(t)
	var s ocbScratch
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(3*i + 7)
		}
		want := make([]byte, n)
		ocbEncrypt(blk, &s, want, src, &vectorNonce, true)
		wantTag := s.tag

		buf := append([]byte(nil), src...)
		ocbEncrypt(blk, &s, buf, buf, &vectorNonce, true)
		if !bytes.Equal(buf, want) || s.tag != wantTag {
			t.Errorf("len %d: in-place encrypt differs", n)
		}
		ocbDecrypt(blk, &s, buf, buf, &vectorNonce)
		if !bytes.Equal(buf, src) || s.tag != wantTag {
			t.Errorf("len %d: in-place decrypt differs", n)
		}
	}
}

func TestDoubleTriple(t *testing.T) {
	var b [blockSize]byte
	b[0] = 0x80
	b[15] = 0x01
	double(&b)
	if want := mustHex(t, "00000000000000000000000000000085"); !bytes.Equal(b[:], want) {
		t.Errorf("double = %X, want %X", b, want)
	}
	b = [blockSize]byte{}
	b[8] = 0x80 // carry across the word boundary
	double(&b)
	if want := mustHex(t, "00000000000000010000000000000000"); !bytes.Equal(b[:], want) {
		t.Errorf("double across words = %X, want %X", b, want)
	}
	b = [blockSize]byte{}
	b[0] = 0x80
	triple(&b)
	if want := mustHex(t, "80000000000000000000000000000087"); !bytes.Equal(b[:], want) {
		t.Errorf("triple = %X, want %X", b, want)
	}
}
