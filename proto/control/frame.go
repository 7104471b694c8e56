package control

import (
	"encoding/binary"
	"io"
)

// readChunk bounds how much buffer a frame header alone can make Read
// allocate. The length in a header is only a claim; memory is committed in
// steps of at most this size as bytes actually arrive, so a peer cannot make
// the server reserve 8 MiB per connection by sending 6 bytes.
const readChunk = 64 << 10

// keepBuffer is the largest buffer a Reader keeps between frames. Nearly all
// control messages are far smaller; the occasional large one (an avatar, an
// image in a chat message) gets a buffer of its own that is released on the
// next Read instead of being pinned for the life of the connection.
const keepBuffer = 64 << 10

// Reader reads frames from a stream, reusing one buffer; the returned payload
// is valid until the next Read.
//
// A Reader is not safe for concurrent use. Errors are sticky: once Read has
// failed, the stream position is unknown and every later Read returns the
// same error.
type Reader struct {
	r   io.Reader
	hdr [HeaderSize]byte
	buf []byte
	err error
}

// NewReader returns a Reader for r. The caller should pass a buffered reader
// (or a TLS connection, which buffers records itself): Read issues one small
// read for the header and then reads the body.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// Read returns the next frame's type and payload.
//
// It returns io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside a frame, and ErrTooLarge (with the
// frame's type) for a length above MaxPayload; the caller should disconnect
// on all of them. Unknown types are returned like any other: it is for the
// caller to ignore them.
func (r *Reader) Read() (Type, []byte, error) {
	if r.err != nil {
		return 0, nil, r.err
	}
	if cap(r.buf) > keepBuffer {
		r.buf = nil
	}
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		r.err = err
		return 0, nil, err
	}
	t := Type(binary.BigEndian.Uint16(r.hdr[0:2]))
	n := binary.BigEndian.Uint32(r.hdr[2:6])
	if n > MaxPayload {
		r.err = ErrTooLarge
		return t, nil, ErrTooLarge
	}
	size := int(n)
	buf := r.buf[:0]
	for len(buf) < size {
		step := min(size-len(buf), readChunk)
		if cap(buf)-len(buf) < step {
			// Double, so the total allocated for a frame stays within a
			// small factor of the bytes received, but never beyond the
			// announced size.
			grown := make([]byte, len(buf), min(max(2*cap(buf), len(buf)+step), size))
			copy(grown, buf)
			buf = grown
		}
		got, err := io.ReadFull(r.r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+got]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.buf = buf[:0]
			r.err = err
			return 0, nil, err
		}
	}
	r.buf = buf
	return t, buf, nil
}

// AppendFrame appends a frame header for t and len(payload), then payload,
// to dst. The caller must keep payload within MaxPayload (Marshal checks
// this); AppendFrame does not, so that forwarding an already validated
// payload costs nothing extra.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}
