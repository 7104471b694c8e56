package control

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []struct {
		t Type
		p []byte
	}{
		{Version, []byte{0x08, 0x01}},
		{UDPTunnel, []byte{0x80, 0x05, 0x01, 0xaa}},
		{CryptSetup, nil}, // empty payload: a resync request
		{Type(999), []byte("unknown types are framed like any other")},
		{TextMessage, bytes.Repeat([]byte{'x'}, 200<<10)}, // several read chunks
		{Ping, []byte{0x08, 0x2a}},
	}
	var stream []byte
	for _, f := range frames {
		stream = AppendFrame(stream, f.t, f.p)
	}
	if !bytes.Equal(stream[:HeaderSize], []byte{0, 0, 0, 0, 0, 2}) {
		t.Fatalf("header % x", stream[:HeaderSize])
	}
	// One byte at a time exercises every short-read path.
	for _, src := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream))} {
		r := NewReader(src)
		for i, f := range frames {
			typ, p, err := r.Read()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if typ != f.t || !bytes.Equal(p, f.p) {
				t.Fatalf("frame %d: got %v with %d bytes, want %v with %d", i, typ, len(p), f.t, len(f.p))
			}
		}
		if _, _, err := r.Read(); err != io.EOF {
			t.Fatalf("at end: %v, want io.EOF", err)
		}
		if _, _, err := r.Read(); err != io.EOF {
			t.Fatalf("error not sticky: %v", err)
		}
	}
}

func TestReaderTooLarge(t *testing.T) {
	ok := AppendFrame(nil, UserState, nil)
	ok[2], ok[3], ok[4], ok[5] = 0, 0x7f, 0xff, 0xff // exactly MaxPayload: allowed
	r := NewReader(io.MultiReader(bytes.NewReader(ok), bytes.NewReader(make([]byte, MaxPayload))))
	if _, p, err := r.Read(); err != nil || len(p) != MaxPayload {
		t.Fatalf("MaxPayload frame: %d bytes, %v", len(p), err)
	}

	hdr := []byte{0, 9, 0, 0x80, 0, 0} // 0x800000
	r = NewReader(bytes.NewReader(append(hdr, 1, 2, 3)))
	typ, p, err := r.Read()
	if !errors.Is(err, ErrTooLarge) || p != nil || typ != UserState {
		t.Fatalf("0x800000: %v, %v, %v; want UserState, nil, ErrTooLarge", typ, p, err)
	}
	if _, _, err := r.Read(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error not sticky: %v", err)
	}
	r = NewReader(bytes.NewReader([]byte{0, 9, 0xff, 0xff, 0xff, 0xff}))
	if _, _, err := r.Read(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("4 GiB: %v", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	full := AppendFrame(nil, TextMessage, []byte("hello"))
	for n := 1; n < len(full); n++ {
		r := NewReader(bytes.NewReader(full[:n]))
		if _, _, err := r.Read(); err != io.ErrUnexpectedEOF {
			t.Errorf("%d of %d bytes: %v, want io.ErrUnexpectedEOF", n, len(full), err)
		}
	}
	r := NewReader(bytes.NewReader(nil))
	if _, _, err := r.Read(); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
	// Other errors come through unchanged.
	boom := errors.New("boom")
	r = NewReader(io.MultiReader(bytes.NewReader(full[:8]), iotest.ErrReader(boom)))
	if _, _, err := r.Read(); err != boom {
		t.Errorf("read error: %v, want boom", err)
	}
}

// A header claiming 8 MB followed by a few bytes must not make the reader
// commit 8 MB.
func TestReaderDoesNotTrustLength(t *testing.T) {
	hdr := []byte{0, 11, 0, 0x7f, 0xff, 0xff, 1, 2, 3, 4}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const rounds = 20
	for range rounds {
		r := NewReader(bytes.NewReader(hdr))
		if _, _, err := r.Read(); err != io.ErrUnexpectedEOF {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perRead := (after.TotalAlloc - before.TotalAlloc) / rounds
	if perRead > 2*readChunk {
		t.Fatalf("a 10-byte stream claiming %d bytes allocated %d bytes", MaxPayload, perRead)
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	var stream []byte
	for range 10 {
		stream = AppendFrame(stream, Ping, bytes.Repeat([]byte{1}, 100))
	}
	src := bytes.NewReader(stream)
	r := NewReader(src)
	if _, _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if _, _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("steady-state Read allocates %v times", allocs)
	}
}

func TestReaderDropsLargeBuffer(t *testing.T) {
	stream := AppendFrame(nil, TextMessage, make([]byte, 1<<20))
	stream = AppendFrame(stream, Ping, []byte{8, 1})
	r := NewReader(bytes.NewReader(stream))
	if _, _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if cap(r.buf) > keepBuffer {
		t.Errorf("reader keeps a %d-byte buffer after a small frame", cap(r.buf))
	}
}

func FuzzReader(f *testing.F) {
	f.Add(AppendFrame(nil, Version, []byte{8, 1}))
	f.Add(AppendFrame(AppendFrame(nil, UDPTunnel, []byte{0x80, 0, 1, 0}), Ping, nil))
	f.Add([]byte{0, 9, 0, 0x80, 0, 0})
	f.Add([]byte{0, 9, 0, 0x7f, 0xff, 0xff, 1})
	f.Add([]byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bufio.NewReader(bytes.NewReader(b)))
		var rebuilt []byte
		for {
			typ, p, err := r.Read()
			if err != nil {
				if err == io.EOF && !bytes.Equal(rebuilt, b) {
					t.Fatalf("clean EOF but frames % x != input % x", rebuilt, b)
				}
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(p) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
			rebuilt = AppendFrame(rebuilt, typ, p)
			if !bytes.Equal(rebuilt, b[:len(rebuilt)]) {
				t.Fatalf("frame does not match input")
			}
			// Whatever arrives, Unmarshal must not panic.
			_, _ = Unmarshal(typ, p)
		}
	})
}
