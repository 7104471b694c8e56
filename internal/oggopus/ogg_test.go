package oggopus

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

// TestCRCVector checks the Ogg CRC against the published check value of
// its parameters (CRC-32 with polynomial 0x04c11db7, unreflected, initial
// value 0, no final xor: the "CRC-32/POSIX" check 0x765e7680 without its
// final inversion), and a last byte of 1 after zeros, which must give the
// polynomial itself.
func TestCRCVector(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"123456789", 0x89a1897f},
		{"\x00\x00\x00\x01", 0x04c11db7}, // one bit through the polynomial
	} {
		if got := crc([]byte(c.in)); got != c.want {
			t.Errorf("crc(%q) = %08x, want %08x", c.in, got, c.want)
		}
	}
}

// TestCRCAgreesWithReflectedCRC32: the Ogg CRC is the standard library's
// (reflected) CRC-32 with its bits and bytes mirrored and its inversions
// undone, an implementation we did not write, on random inputs.
func TestCRCAgreesWithReflectedCRC32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		mirrored := make([]byte, n)
		for i, v := range b {
			mirrored[i] = bits.Reverse8(v)
		}
		want := bits.Reverse32(^crc32.Update(^uint32(0), crc32.IEEETable, mirrored))
		if got := crc(b); got != want {
			t.Fatalf("%d bytes: crc %08x, want %08x", n, got, want)
		}
	}
}

// TestCRCAgreesWithLibogg: every page of a file that opusenc (libogg)
// wrote has the CRC ours computes.
func TestCRCAgreesWithLibogg(t *testing.T) {
	if _, err := exec.LookPath("opusenc"); err != nil {
		t.Skip("opusenc not found (Debian's opus-tools)")
	}
	dir := t.TempDir()
	wav, opus := filepath.Join(dir, "tone.wav"), filepath.Join(dir, "tone.opus")
	if err := os.WriteFile(wav, wavFile(audiotest.Tone(440, 0.3, 0, SampleRate)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("opusenc", "--quiet", wav, opus).CombinedOutput(); err != nil {
		t.Fatalf("opusenc: %v\n%s", err, out)
	}
	data, err := os.ReadFile(opus)
	if err != nil {
		t.Fatal(err)
	}
	f, err := readPages(data) // checks every page's CRC
	if err != nil || f.torn != 0 {
		t.Fatalf("opusenc's file: %v (%d torn bytes)", err, f.torn)
	}
	t.Logf("%d pages of opusenc's agree with our CRC", len(f.pages))
}

// wavFile is a 48 kHz mono 16-bit WAV file of pcm.
func wavFile(pcm []int16) []byte {
	le := binary.LittleEndian
	b := []byte("RIFF")
	b = le.AppendUint32(b, uint32(36+2*len(pcm)))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 1) // PCM
	b = le.AppendUint16(b, 1) // mono
	b = le.AppendUint32(b, SampleRate)
	b = le.AppendUint32(b, 2*SampleRate)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(2*len(pcm)))
	for _, v := range pcm {
		b = le.AppendUint16(b, uint16(v))
	}
	return b
}

// TestPacketSpansPages: a packet too big for one page goes on as many as
// it needs, continued, with a granule only where it ends; sizes around
// the 255-byte lacing and 255-segment page limits come back whole.
func TestPacketSpansPages(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 510, 255*255 - 1, 255 * 255, 255*255 + 1, 255 * 256, 200000} {
		packet := make([]byte, n)
		for i := range packet {
			packet[i] = byte(i * 7)
		}
		var seq uint32
		b := appendPacketPages(nil, 0xfeed, &seq, packet, flagBOS|flagEOS, 1234)
		wantPages := (segmentCount(n) + maxSegments - 1) / maxSegments
		if seq != uint32(wantPages) {
			t.Errorf("%d bytes: %d pages numbered, want %d", n, seq, wantPages)
		}
		f, err := readPages(b)
		if err != nil || f.torn != 0 {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if len(f.pages) != wantPages || len(f.packets) != 1 || !bytes.Equal(f.packets[0], packet) {
			t.Fatalf("%d bytes: %d pages, %d packets; want %d pages and the packet back", n, len(f.pages), len(f.packets), wantPages)
		}
		for i, p := range f.pages {
			last := i == len(f.pages)-1
			wantFlags := byte(0)
			if i == 0 {
				wantFlags |= flagBOS
			} else {
				wantFlags |= flagContinued
			}
			wantGranule := int64(noGranule)
			if last {
				wantFlags |= flagEOS
				wantGranule = 1234
			}
			if p.flags != wantFlags || p.granule != wantGranule {
				t.Errorf("%d bytes, page %d: flags %02x granule %d, want %02x and %d", n, i, p.flags, p.granule, wantFlags, wantGranule)
			}
		}
	}
}

// TestPacketSamples reads packet durations from TOC bytes (RFC 6716
// section 3.1) as a decoder would.
func TestPacketSamples(t *testing.T) {
	toc := func(config, code byte) byte { return config<<3 | code }
	for _, c := range []struct {
		packet []byte
		want   int
	}{
		{nil, 0},
		{[]byte{toc(0, 0)}, 480},              // SILK NB 10 ms
		{[]byte{toc(1, 0)}, 960},              // SILK NB 20 ms
		{[]byte{toc(2, 0)}, 1920},             // SILK NB 40 ms
		{[]byte{toc(3, 0)}, 2880},             // SILK NB 60 ms
		{[]byte{toc(13, 0)}, 960},             // hybrid SWB 20 ms
		{[]byte{toc(16, 0)}, 120},             // CELT NB 2.5 ms
		{[]byte{toc(31, 0)}, 960},             // CELT FB 20 ms
		{[]byte{toc(31, 1)}, 1920},            // two frames
		{[]byte{toc(31, 2)}, 1920},            // two frames of different sizes
		{[]byte{toc(31, 3), 6}, 5760},         // six 20 ms frames: 120 ms
		{[]byte{toc(31, 3), 7}, 0},            // 140 ms is too long
		{[]byte{toc(31, 3), 0}, 0},            // no frames
		{[]byte{toc(31, 3)}, 0},               // no frame count
		{[]byte{toc(3, 3), 2 | 0x80}, 5760},   // two 60 ms frames, VBR flag
		{[]byte{toc(11, 3), 48 | 0x40}, 0},    // 48 frames of 60 ms, padding flag
		{[]byte{toc(16, 3), 48 | 0xc0}, 5760}, // 48 frames of 2.5 ms, both flags
	} {
		if got := packetSamples(c.packet); got != c.want {
			t.Errorf("packetSamples(% x) = %d, want %d", c.packet, got, c.want)
		}
	}
}

// TestComments: well-formed comments are kept (values made valid UTF-8);
// others are left out and named.
func TestComments(t *testing.T) {
	ok, err := checkComments([]string{"TITLE=Plenary hall", "DATE=2026-11-24T03:00:00Z", "no equals", "=empty name",
		"BAD\x7fNAME=x", "ARTIST=caf\xe9", "EMPTY="})
	want := []string{"TITLE=Plenary hall", "DATE=2026-11-24T03:00:00Z", "ARTIST=caf\uFFFD", "EMPTY="}
	if !slices.Equal(ok, want) {
		t.Errorf("kept %q, want %q", ok, want)
	}
	if err == nil {
		t.Error("no error for three malformed comments")
	}
	if _, err := checkComments([]string{"A=1"}); err != nil {
		t.Errorf("error for good comments: %v", err)
	}
}
