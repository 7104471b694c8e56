package crypto

import "testing"

func BenchmarkEncrypt100(b *testing.B) {
	var c CryptState
	if err := c.GenerateKey(); err != nil {
		b.Fatal(err)
	}
	plain := make([]byte, 100)
	buf := make([]byte, 0, Overhead+len(plain))
	b.ReportAllocs()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		buf = c.Encrypt(buf[:0], plain)
	}
}

func BenchmarkDecrypt100(b *testing.B) {
	var c CryptState
	if err := c.GenerateKey(); err != nil {
		b.Fatal(err)
	}
	eiv, k := c.EncryptIV(), c.Key()
	c.SetKey(k[:], eiv[:], eiv[:])
	pkt := c.Encrypt(nil, make([]byte, 100))
	out := make([]byte, 0, 100)
	start := c.decryptIV
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		// Rewind so the same packet is in order again. That path does the
		// full work of a fresh packet: nonce step, OCB and tag check.
		c.decryptIV = start
		var err error
		if out, err = c.Decrypt(out[:0], pkt); err != nil {
			b.Fatal(err)
		}
	}
}
