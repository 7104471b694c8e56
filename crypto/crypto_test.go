package crypto

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

var secret = []byte("abcdefghi\x00") // Mumble's 10-byte test payload

// pair returns an encryptor and a decryptor that share a random key. The
// encryptor's IV is all 0x55, as Mumble's TestCrypt forces it.
func pair(t testing.TB) (enc, dec *CryptState) {
	t.Helper()
	enc, dec = new(CryptState), new(CryptState)
	if err := enc.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	var iv [NonceSize]byte
	for i := range iv {
		iv[i] = 0x55
	}
	key, div := enc.Key(), enc.DecryptIV()
	if err := enc.SetKey(key[:], iv[:], div[:]); err != nil {
		t.Fatal(err)
	}
	if err := dec.SetKey(key[:], div[:], iv[:]); err != nil {
		t.Fatal(err)
	}
	return enc, dec
}

func mustDecrypt(t testing.TB, c *CryptState, pkt []byte) []byte {
	t.Helper()
	out, err := c.Decrypt(nil, pkt)
	if err != nil {
		t.Fatalf("decrypt of packet %02X...: %v", pkt[0], err)
	}
	return out
}

func TestKeyErrors(t *testing.T) {
	var c CryptState
	k := make([]byte, 16)
	for _, tc := range [][3]int{{15, 16, 16}, {16, 17, 16}, {16, 16, 0}, {32, 16, 16}} {
		if err := c.SetKey(make([]byte, tc[0]), make([]byte, tc[1]), make([]byte, tc[2])); err == nil {
			t.Errorf("SetKey%v accepted", tc)
		}
	}
	if err := c.SetDecryptIV(make([]byte, 15)); err == nil {
		t.Error("SetDecryptIV accepted 15 bytes")
	}
	if c.Stats().Resync != 0 {
		t.Error("failed SetDecryptIV counted a resync")
	}
	if _, err := c.Decrypt(nil, make([]byte, 20)); !errors.Is(err, ErrAuth) {
		t.Errorf("decrypt without key: %v, want ErrAuth", err)
	}
	if err := c.SetKey(k, k, k); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < Overhead; n++ {
		if _, err := c.Decrypt(nil, make([]byte, n)); !errors.Is(err, ErrShort) {
			t.Errorf("decrypt of %d bytes: %v, want ErrShort", n, err)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Encrypt without key did not panic")
			}
		}()
		var z CryptState
		z.Encrypt(nil, secret)
	}()
}

func TestGenerateKey(t *testing.T) {
	var a, b CryptState
	if err := a.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if err := b.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if a.Key() == b.Key() || a.EncryptIV() == b.EncryptIV() || a.EncryptIV() == a.DecryptIV() {
		t.Error("GenerateKey produced repeated values")
	}
	// A peer set up the way a client handles CryptSetup talks to a.
	var peer CryptState
	k, eiv, div := a.Key(), a.EncryptIV(), a.DecryptIV()
	if err := peer.SetKey(k[:], div[:], eiv[:]); err != nil {
		t.Fatal(err)
	}
	if got := mustDecrypt(t, &peer, a.Encrypt(nil, secret)); !bytes.Equal(got, secret) {
		t.Errorf("peer got %q", got)
	}
	if got := mustDecrypt(t, &a, peer.Encrypt(nil, secret)); !bytes.Equal(got, secret) {
		t.Errorf("a got %q", got)
	}
}

func TestPacketLayout(t *testing.T) {
	var c CryptState
	iv := vectorNonce
	if err := c.SetKey(vectorKey[:], iv[:], iv[:]); err != nil {
		t.Fatal(err)
	}
	pkt := c.Encrypt([]byte("hdr"), secret)
	if !bytes.Equal(pkt[:3], []byte("hdr")) || len(pkt) != 3+Overhead+len(secret) {
		t.Fatalf("Encrypt did not append: %X", pkt)
	}
	pkt = pkt[3:]

	// The IV is a little-endian counter: ff ee .. becomes 00 ef ..
	wantIV := vectorNonce
	wantIV[0], wantIV[1] = 0x00, 0xef
	if c.EncryptIV() != wantIV {
		t.Errorf("encrypt IV = %X, want %X", c.EncryptIV(), wantIV)
	}
	if pkt[0] != wantIV[0] {
		t.Errorf("header byte 0 = %02X, want %02X", pkt[0], wantIV[0])
	}
	var s ocbScratch
	ct := make([]byte, len(secret))
	ocbEncrypt(vectorBlock(t), &s, ct, secret, &wantIV, true)
	if !bytes.Equal(pkt[1:4], s.tag[:3]) || !bytes.Equal(pkt[4:], ct) {
		t.Errorf("packet %X does not match primitive: tag %X ct %X", pkt, s.tag[:3], ct)
	}

	// Carry through every byte: ff..ff becomes 00..00.
	var ff [NonceSize]byte
	for i := range ff {
		ff[i] = 0xff
	}
	c.SetKey(vectorKey[:], ff[:], ff[:])
	c.Encrypt(nil, nil)
	if c.EncryptIV() != [NonceSize]byte{} {
		t.Errorf("ff..ff+1 = %X", c.EncryptIV())
	}
}

func TestTamper(t *testing.T) {
	var c CryptState
	if err := c.SetKey(vectorKey[:], vectorNonce[:], vectorNonce[:]); err != nil {
		t.Fatal(err)
	}
	msg := append([]byte("It was a funky funky town!"), 0)
	pkt := c.Encrypt(nil, msg)
	if len(pkt) != 31 {
		t.Fatalf("packet length %d, want 31", len(pkt))
	}
	before := c
	// Mumble flips the first 27*8 bits; we flip every bit of the packet.
	for i := 0; i < len(pkt)*8; i++ {
		pkt[i/8] ^= 1 << (i % 8)
		out, err := c.Decrypt([]byte("x"), pkt)
		if err == nil {
			t.Errorf("bit %d flipped: accepted", i)
		}
		if string(out) != "x" {
			t.Errorf("bit %d flipped: dst changed to %q", i, out)
		}
		if !sameDecryptState(&c, &before) {
			t.Fatalf("bit %d flipped: decrypt state changed", i)
		}
		pkt[i/8] ^= 1 << (i % 8)
	}
	if got := mustDecrypt(t, &c, pkt); !bytes.Equal(got, msg) {
		t.Errorf("got %q", got)
	}
}

func sameDecryptState(a, b *CryptState) bool {
	return a.decryptIV == b.decryptIV && a.history == b.history &&
		a.stats == b.stats && a.lastGood.Equal(b.lastGood)
}

// Mumble's ivrecovery test.
func TestIVRecovery(t *testing.T) {
	enc, dec := pair(t)

	pkt := enc.Encrypt(nil, secret)
	if got := mustDecrypt(t, dec, pkt); !bytes.Equal(got, secret) {
		t.Fatalf("got %q", got)
	}
	if _, err := dec.Decrypt(nil, pkt); !errors.Is(err, ErrReplay) {
		t.Errorf("replay: %v, want ErrReplay", err)
	}

	// Recover from 15 lost packets.
	for i := 0; i < 16; i++ {
		pkt = enc.Encrypt(nil, secret)
	}
	mustDecrypt(t, dec, pkt)
	if got := dec.Stats().Lost; got != 15 {
		t.Errorf("lost = %d, want 15", got)
	}

	// Skip 14, receive 1, across several wraps of the low byte.
	for i := 0; i < 128; i++ {
		dec.stats.Lost = 0
		for j := 0; j < 15; j++ {
			pkt = enc.Encrypt(pkt[:0], secret)
		}
		mustDecrypt(t, dec, pkt)
		if got := dec.Stats().Lost; got != 14 {
			t.Fatalf("round %d: lost = %d, want 14", i, got)
		}
	}
	if enc.EncryptIV() != dec.DecryptIV() {
		t.Fatalf("IVs differ: %X vs %X", enc.EncryptIV(), dec.DecryptIV())
	}

	// 257 ahead looks in order but is off by one in the high part.
	for i := 0; i < 257; i++ {
		pkt = enc.Encrypt(pkt[:0], secret)
	}
	ivBefore := dec.DecryptIV()
	if _, err := dec.Decrypt(nil, pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("257 ahead: %v, want ErrAuth", err)
	}
	if dec.DecryptIV() != ivBefore {
		t.Error("failed decrypt moved the IV")
	}

	// A resync fixes it.
	eiv := enc.EncryptIV()
	if err := dec.SetDecryptIV(eiv[:]); err != nil {
		t.Fatal(err)
	}
	if dec.Stats().Resync != 1 {
		t.Errorf("resync = %d, want 1", dec.Stats().Resync)
	}
	if got := mustDecrypt(t, dec, enc.Encrypt(nil, secret)); !bytes.Equal(got, secret) {
		t.Errorf("after resync got %q", got)
	}
}

// Mumble's reverserecovery test.
func TestReverseRecovery(t *testing.T) {
	enc, dec := pair(t)
	pkts := make([][]byte, 512)
	for i := 0; i < 128; i++ {
		pkts[i] = enc.Encrypt(nil, secret)
	}
	// Packet 127 arrives first: 128 ahead, a gap of 127.
	mustDecrypt(t, dec, pkts[127])
	if s := dec.Stats(); s.Lost != 127 || s.Late != 0 {
		t.Errorf("after first: %+v, want Lost 127", s)
	}
	newest := dec.DecryptIV()
	i := 1
	for ; i < 30; i++ {
		if got := mustDecrypt(t, dec, pkts[127-i]); !bytes.Equal(got, secret) {
			t.Fatalf("late %d: got %q", i, got)
		}
	}
	if s := dec.Stats(); s.Late != 29 || s.Lost != 127-29 || s.Good != 30 {
		t.Errorf("after late: %+v", s)
	}
	if dec.DecryptIV() != newest {
		t.Error("late packets moved the IV")
	}
	for ; i < 128; i++ {
		if _, err := dec.Decrypt(nil, pkts[127-i]); !errors.Is(err, ErrLate) {
			t.Fatalf("%d behind: %v, want ErrLate", i, err)
		}
	}
	for i = 0; i < 30; i++ {
		if _, err := dec.Decrypt(nil, pkts[127-i]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay %d: %v, want ErrReplay", i, err)
		}
	}
	if dec.DecryptIV() != newest || dec.Stats().Good != 30 {
		t.Error("rejected packets changed the state")
	}

	for i = 0; i < 512; i++ {
		pkts[i] = enc.Encrypt(nil, secret)
	}
	for i = 0; i < 512; i++ {
		mustDecrypt(t, dec, pkts[i])
	}
	for i = 0; i < 512; i++ {
		if _, err := dec.Decrypt(nil, pkts[i]); err == nil {
			t.Fatalf("replay of in-order packet %d accepted", i)
		}
	}
	if enc.EncryptIV() != dec.DecryptIV() {
		t.Error("IVs differ after in-order run")
	}
}

// A late packet from before the low byte wrapped steps the high part back.
// The borrow continues through bytes that were zero before the decrement.
func TestLateAcrossWrap(t *testing.T) {
	enc, dec := pair(t)
	start := [NonceSize]byte{0xfa, 0xff, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	key := enc.Key()
	enc.SetKey(key[:], start[:], start[:])
	dec.SetKey(key[:], start[:], start[:])

	// Nonces fb fc fd fe ff | 00 01 02 03 04, where the high part goes from
	// ff 00 05 to 00 01 05.
	pkts := make([][]byte, 10)
	for i := range pkts {
		pkts[i] = enc.Encrypt(nil, secret)
	}
	if pkts[4][0] != 0xff || pkts[5][0] != 0x00 {
		t.Fatalf("unexpected nonce bytes %02X %02X", pkts[4][0], pkts[5][0])
	}
	// After the wrap iv[1] is 0, so everything there is delivered in order
	// to stay clear of the zeroed-history quirk (see TestHistoryQuirk).
	for i, p := range pkts {
		if i != 1 && i != 3 {
			mustDecrypt(t, dec, p)
		}
	}
	newest := dec.DecryptIV()
	if want := [3]byte{0x04, 0x00, 0x01}; [3]byte(newest[:3]) != want {
		t.Fatalf("decrypt IV %X, want prefix %X", newest, want)
	}
	if s := dec.Stats(); s.Lost != 2 || s.Late != 0 {
		t.Errorf("before late: %+v", s)
	}
	// fe needs the borrow to run through byte 1 (00 -> ff) into byte 2.
	for _, i := range []int{3, 1} {
		if got := mustDecrypt(t, dec, pkts[i]); !bytes.Equal(got, secret) {
			t.Errorf("late packet %d: got %q", i, got)
		}
		if dec.DecryptIV() != newest {
			t.Fatalf("late packet %d moved the IV", i)
		}
	}
	if s := dec.Stats(); s.Late != 2 || s.Lost != 1 || s.Good != 10 {
		t.Errorf("after late: %+v, want Late 2 Lost 1 Good 10", s)
	}
	for i, p := range pkts {
		if _, err := dec.Decrypt(nil, p); err == nil {
			t.Errorf("replay of %d accepted", i)
		}
	}
}

// Mumble's history starts zeroed and stores iv[1], so while iv[1] is 0 a
// packet that takes the out-of-order path in the first cycle of the low
// byte is taken for a replay, and so is every packet after it until a
// resync. Ours starts as if every low byte was last accepted in the cycle
// before: the packet after a gap is accepted, a late one too, and a real
// replay is still refused.
func TestNoFalseReplayInFirstCycle(t *testing.T) {
	enc, dec := pair(t)
	start := [NonceSize]byte{0x10, 0x00, 0x07}
	key := enc.Key()
	enc.SetKey(key[:], start[:], start[:])
	dec.SetKey(key[:], start[:], start[:])
	p11 := enc.Encrypt(nil, secret)
	p12 := enc.Encrypt(nil, secret)
	p13 := enc.Encrypt(nil, secret)
	mustDecrypt(t, dec, p11)
	mustDecrypt(t, dec, p13)
	mustDecrypt(t, dec, p12) // late
	for _, p := range [][]byte{p11, p12, p13} {
		if _, err := dec.Decrypt(nil, p); !errors.Is(err, ErrReplay) {
			t.Errorf("replay of %02X: %v, want ErrReplay", p[0], err)
		}
	}
}

// TestGenerateKeyAvoidsZeroCycles: no IV a server hands out has 0 or 255
// as its second byte, which would put a Mumble client, whose history starts
// zeroed, into its false-replay cycle (above) at once or after the first
// wrap of the low byte. Random IVs would have one in 128.
func TestGenerateKeyAvoidsZeroCycles(t *testing.T) {
	var c CryptState
	for range 2000 {
		if err := c.GenerateKey(); err != nil {
			t.Fatal(err)
		}
		for _, iv := range [][NonceSize]byte{c.EncryptIV(), c.DecryptIV()} {
			if iv[1] == 0 || iv[1] == 0xff {
				t.Fatalf("IV %X has %#x as its second byte", iv, iv[1])
			}
		}
	}
}

// The signed distance lands in [-128, 128]. +128 is a gap of 127; -128 is
// rejected without touching the state.
func TestWindowEdges(t *testing.T) {
	enc, dec := pair(t)
	var pkt []byte
	for i := 0; i < 128; i++ {
		pkt = enc.Encrypt(nil, secret)
	}
	mustDecrypt(t, dec, pkt)
	if dec.Stats().Lost != 127 {
		t.Errorf("+128: lost = %d, want 127", dec.Stats().Lost)
	}

	enc2, dec2 := pair(t)
	first := enc2.Encrypt(nil, secret)              // +1, held back
	mustDecrypt(t, dec2, enc2.Encrypt(nil, secret)) // +2
	for i := 0; i < 127; i++ {
		pkt = enc2.Encrypt(nil, secret)
	}
	mustDecrypt(t, dec2, pkt) // +129, so first is exactly 128 behind
	before := *dec2
	if _, err := dec2.Decrypt(nil, first); !errors.Is(err, ErrLate) {
		t.Errorf("-128: %v, want ErrLate", err)
	}
	if !sameDecryptState(dec2, &before) {
		t.Error("-128: state changed")
	}
}

// Counters follow Mumble, including its clamp on Lost: a late packet lowers
// Lost only while Lost stays above zero.
func TestStats(t *testing.T) {
	enc, dec := pair(t)
	pkts := make([][]byte, 8)
	for i := range pkts {
		pkts[i] = enc.Encrypt(nil, secret)
	}
	check := func(step string, good, late, lost uint32) {
		t.Helper()
		s := dec.Stats()
		if s.Good != good || s.Late != late || s.Lost != lost {
			t.Errorf("%s: %+v, want Good %d Late %d Lost %d", step, s, good, late, lost)
		}
	}
	if !dec.LastGood().IsZero() {
		t.Error("LastGood set before any packet")
	}
	t0 := time.Now()
	mustDecrypt(t, dec, pkts[0])
	check("in order", 1, 0, 0)
	if lg := dec.LastGood(); lg.Before(t0) || lg.After(time.Now()) {
		t.Errorf("LastGood = %v", lg)
	}
	mustDecrypt(t, dec, pkts[3])
	check("gap of 2", 2, 0, 2)
	mustDecrypt(t, dec, pkts[1])
	check("late, 2 -> 1", 3, 1, 1)
	mustDecrypt(t, dec, pkts[2])
	check("late, 1 stays 1", 4, 2, 1)

	dec.stats.Lost = 0
	mustDecrypt(t, dec, pkts[5])
	dec.stats.Lost = 0
	mustDecrypt(t, dec, pkts[4])
	check("late, 0 stays 0", 6, 3, 0)

	lg := dec.LastGood()
	if _, err := dec.Decrypt(nil, pkts[4]); err == nil {
		t.Fatal("replay accepted")
	}
	check("after failure", 6, 3, 0)
	if !dec.LastGood().Equal(lg) {
		t.Error("failure changed LastGood")
	}

	iv := dec.DecryptIV()
	dec.SetDecryptIV(iv[:])
	dec.SetDecryptIV(iv[:])
	if dec.Stats().Resync != 2 {
		t.Errorf("resync = %d, want 2", dec.Stats().Resync)
	}
	k, e := dec.Key(), dec.EncryptIV()
	dec.SetKey(k[:], e[:], iv[:])
	if dec.Stats() != (Stats{}) {
		t.Errorf("SetKey kept stats %+v", dec.Stats())
	}
	for b, cycle := range dec.history {
		if cycle != iv[1]-1 {
			t.Fatalf("after SetKey, low byte %d counts as last accepted in cycle %d, want %d (the cycle before the IV's)", b, cycle, iv[1]-1)
		}
	}
}

// Encrypt and Decrypt work in place when the payload sits right after the
// header room, which lets a server build and seal a packet in one buffer.
func TestInPlace(t *testing.T) {
	enc, dec := pair(t)
	for _, n := range []int{0, 5, 16, 17, 100} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*5 + 1)
		}
		twin := *enc
		want := twin.Encrypt(nil, payload)

		buf := make([]byte, Overhead+n)
		copy(buf[Overhead:], payload)
		pkt := enc.Encrypt(buf[:0], buf[Overhead:])
		if &pkt[0] != &buf[0] {
			t.Fatalf("len %d: Encrypt reallocated despite capacity", n)
		}
		if !bytes.Equal(pkt, want) {
			t.Fatalf("len %d: in-place packet %X, want %X", n, pkt, want)
		}

		got, err := dec.Decrypt(pkt[Overhead:Overhead], pkt)
		if err != nil {
			t.Fatalf("len %d: in-place decrypt: %v", n, err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("len %d: in-place decrypt gave %X", n, got)
		}
	}

	// A failed decrypt zeroes what it wrote past len(dst).
	pkt := enc.Encrypt(nil, secret)
	pkt[len(pkt)-1] ^= 1
	out := make([]byte, 2, 64)
	for i := range out[:cap(out)] {
		out[:cap(out)][i] = 0xaa
	}
	got, err := dec.Decrypt(out, pkt)
	if !errors.Is(err, ErrAuth) || len(got) != 2 || got[0] != 0xaa {
		t.Fatalf("tampered: %v %X", err, got)
	}
	if tail := out[2 : 2+len(secret)]; !bytes.Equal(tail, make([]byte, len(secret))) {
		t.Errorf("unauthenticated plaintext left in dst: %X", tail)
	}
}

func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counting")
	}
	enc, dec := pair(t)
	plain := make([]byte, 100)
	buf := make([]byte, 0, Overhead+len(plain))
	if n := testing.AllocsPerRun(100, func() { buf = enc.Encrypt(buf[:0], plain) }); n != 0 {
		t.Errorf("Encrypt: %v allocs per run", n)
	}

	pkts := make([][]byte, 200)
	for i := range pkts {
		pkts[i] = enc.Encrypt(nil, plain)
	}
	out := make([]byte, 0, len(plain))
	next, failed := 0, 0
	n := testing.AllocsPerRun(100, func() {
		var err error
		if out, err = dec.Decrypt(out[:0], pkts[next]); err != nil {
			failed++
		}
		next++
	})
	if n != 0 {
		t.Errorf("Decrypt: %v allocs per run", n)
	}
	if failed != 0 {
		t.Errorf("%d decrypts failed during alloc run", failed)
	}
	// Failures must not allocate either (the errors are sentinels).
	if n := testing.AllocsPerRun(100, func() { dec.Decrypt(out[:0], pkts[0]) }); n != 0 {
		t.Errorf("failing Decrypt: %v allocs per run", n)
	}
}

// One goroutine encrypts while another decrypts on the same state, each side
// with its own lock, as the type comment allows. Run with -race.
func TestConcurrentSides(t *testing.T) {
	var c CryptState
	if err := c.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	eiv, k := c.EncryptIV(), c.Key()
	c.SetKey(k[:], eiv[:], eiv[:]) // loopback: c decrypts its own packets

	var encMu, decMu sync.Mutex
	ch := make(chan []byte, 16)
	const n = 1000
	go func() {
		defer close(ch)
		for i := 0; i < n; i++ {
			encMu.Lock()
			p := c.Encrypt(nil, secret)
			encMu.Unlock()
			ch <- p
		}
	}()
	good := 0
	for p := range ch {
		decMu.Lock()
		if _, err := c.Decrypt(nil, p); err == nil {
			good++
		}
		_ = c.Stats()
		_ = c.LastGood()
		decMu.Unlock()
	}
	if good != n {
		t.Errorf("%d of %d decrypted", good, n)
	}
}
