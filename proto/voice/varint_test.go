package voice

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"
)

func i64(v int64) uint64 { return uint64(v) }

var varintVectors = []struct {
	v   uint64
	hex string
}{
	{0, "00"},
	{127, "7f"},
	{128, "8080"},
	{300, "812c"},
	{0x3fff, "bfff"},
	{0x4000, "c04000"},
	{0x1fffff, "dfffff"},
	{0x200000, "e0200000"},
	{1000000, "cf4240"},
	{0xfffffff, "efffffff"},
	{0x10000000, "f010000000"},
	{0xffffffff, "f0ffffffff"},
	{1 << 32, "f40000000100000000"},
	{math.MaxUint64 >> 1, "f47fffffffffffffff"},
	{i64(-1), "fc"},
	{i64(-2), "fd"},
	{i64(-3), "fe"},
	{i64(-4), "ff"},
	{i64(-5), "f804"},
	{i64(-300), "f8812b"},
	{i64(-1 << 32), "f8f0ffffffff"},
	// Just outside the negative range: encoded as a plain 64-bit value.
	{i64(-1<<32 - 1), "f4fffffffeffffffff"},
	{1 << 63, "f48000000000000000"},
}

func TestVarintVectors(t *testing.T) {
	for _, tc := range varintVectors {
		want, _ := hex.DecodeString(tc.hex)
		got := AppendVarint(nil, tc.v)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendVarint(%#x) = % x, want % x", tc.v, got, want)
		}
		v, n := ReadVarint(want)
		if v != tc.v || n != len(want) {
			t.Errorf("ReadVarint(% x) = %#x, %d; want %#x, %d", want, v, n, tc.v, len(want))
		}
		// Trailing bytes are not consumed.
		v, n = ReadVarint(append(want, 0xaa, 0xbb))
		if v != tc.v || n != len(want) {
			t.Errorf("ReadVarint(% x + 2 bytes) = %#x, %d", want, v, n)
		}
	}
}

func TestVarintRoundTrip(t *testing.T) {
	var edges []uint64
	for _, base := range []uint64{0, 0x80, 0x4000, 0x200000, 0x10000000, 1 << 32, 1 << 63} {
		for d := uint64(0); d < 3; d++ {
			edges = append(edges, base+d, base-d, -(base + d), -(base - d))
		}
	}
	edges = append(edges, math.MaxUint64, math.MaxUint64-4, i64(math.MinInt32), i64(math.MaxInt32), i64(-1<<32+1))
	for _, v := range edges {
		enc := AppendVarint(nil, v)
		got, n := ReadVarint(enc)
		if got != v || n != len(enc) {
			t.Errorf("round trip %#x: encoded % x, decoded %#x (n=%d)", v, enc, got, n)
		}
		// Every proper prefix is truncated.
		for i := 0; i < len(enc); i++ {
			if got, n := ReadVarint(enc[:i]); n != 0 {
				t.Errorf("ReadVarint(% x) (prefix of %#x) = %#x, %d; want n=0", enc[:i], v, got, n)
			}
		}
	}
}

func TestReadVarintNonMinimalAndNegation(t *testing.T) {
	cases := []struct {
		hex string
		v   uint64
		n   int
	}{
		{"8005", 5, 2},                    // non-minimal 14-bit form
		{"f000000005", 5, 5},              // non-minimal 32-bit form
		{"f3000000ff", 255, 5},            // low bits of F0..F3 are ignored
		{"f7" + "0000000000000001", 1, 9}, // and of F4..F7
		{"fb05", i64(-6), 2},              // F8..FB all negate
		{"f8f805", 5, 3},                  // double negation
		{"f8fc", 0, 2},                    // ~~0
		{"f8f8f8f8f8f8f8f800", 0, 9},      // 8 negations: allowed
		{"f8f8f8f8f8f8f8f8f800", 0, 0},    // 9 negations: rejected
		{"", 0, 0},                        // empty
		{"f8", 0, 0},                      // negation of nothing
	}
	for _, tc := range cases {
		b, _ := hex.DecodeString(tc.hex)
		v, n := ReadVarint(b)
		if v != tc.v || n != tc.n {
			t.Errorf("ReadVarint(%s) = %#x, %d; want %#x, %d", tc.hex, v, n, tc.v, tc.n)
		}
	}
	// A long run of negation prefixes is rejected after the cap, not walked.
	if _, n := ReadVarint(bytes.Repeat([]byte{0xf8}, 1<<16)); n != 0 {
		t.Errorf("64 KiB of F8: n = %d, want 0", n)
	}
}

func TestVarintAllocs(t *testing.T) {
	buf := make([]byte, 0, 16)
	enc := AppendVarint(nil, 1<<40)
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendVarint(buf[:0], 1<<40)
		buf = AppendVarint(buf[:0], i64(-300))
		v, _ := ReadVarint(enc)
		sink += v
	})
	if allocs != 0 {
		t.Errorf("varint codec allocates %v times per run", allocs)
	}
	_ = sink
}

// FuzzReadVarint decodes arbitrary bytes. A decoded varint must depend on
// its own bytes only (so the decoder never looks past them, and a caller can
// trust n to find the next field), every proper prefix of it must be
// truncated, and the canonical encoding of its value must decode back to it
// without being longer.
func FuzzReadVarint(f *testing.F) {
	for _, tc := range varintVectors {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b)
	}
	f.Add([]byte{0xf8, 0xf8, 0xf8})
	f.Add(bytes.Repeat([]byte{0xf8}, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n := ReadVarint(b)
		if n < 0 || n > len(b) {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
		if n == 0 {
			if v != 0 {
				t.Fatalf("% x: rejected with value %#x", b, v)
			}
			return
		}
		// Clipping the capacity too makes any read past n panic.
		if got, m := ReadVarint(b[:n:n]); got != v || m != n {
			t.Fatalf("% x decodes to %#x, %d but its first %d bytes to %#x, %d", b, v, n, n, got, m)
		}
		for i := 0; i < n; i++ {
			if _, m := ReadVarint(b[:i]); m != 0 {
				t.Fatalf("% x: the proper prefix % x decodes (n = %d)", b[:n], b[:i], m)
			}
		}
		enc := AppendVarint(nil, v)
		got, m := ReadVarint(enc)
		if got != v || m != len(enc) {
			t.Fatalf("re-encoding %#x: % x decodes to %#x, %d", v, enc, got, m)
		}
		if len(enc) > n {
			t.Fatalf("canonical encoding of %#x (% x) is longer than the input % x", v, enc, b[:n])
		}
	})
}

// FuzzAppendVarint encodes arbitrary values: the encoding must be appended
// after what dst held, decode back to the value whatever follows it, and fit
// the codec's largest form.
func FuzzAppendVarint(f *testing.F) {
	for _, tc := range varintVectors {
		f.Add(tc.v)
	}
	f.Add(i64(math.MinInt64))
	f.Add(i64(math.MinInt32))
	f.Add(uint64(math.MaxUint32))
	f.Fuzz(func(t *testing.T, v uint64) {
		prefix := []byte{0xaa, 0xbb}
		out := AppendVarint(prefix, v)
		if !bytes.Equal(out[:len(prefix)], []byte{0xaa, 0xbb}) {
			t.Fatalf("%#x: prefix overwritten: % x", v, out)
		}
		enc := out[len(prefix):]
		if len(enc) < 1 || len(enc) > 9 {
			t.Fatalf("%#x encodes to %d bytes: % x", v, len(enc), enc)
		}
		for _, tail := range [][]byte{nil, {0x00}, {0xf8, 0xff}} {
			got, n := ReadVarint(append(enc[:len(enc):len(enc)], tail...))
			if got != v || n != len(enc) {
				t.Fatalf("%#x encodes to % x, which decodes (followed by % x) to %#x, %d", v, enc, tail, got, n)
			}
		}
	})
}
