package web

import (
	"encoding/binary"
	"net"
)

// frameHeader is the Mumble TCP frame header: 2 bytes of type, 4 of
// length, big-endian.
const frameHeader = 6

// FrameConn is a WebSocket's net.Conn on which every Write, whatever the
// buffering above it did, leaves as whole Mumble frames, one per binary
// message: the contract with the page, which hands each message to its
// protobuf decoder as is. Reads pass through (the Mumble reader finds
// the frames in the stream of messages). Writes come from one goroutine.
type FrameConn struct {
	net.Conn
	pending []byte // the start of a frame not yet complete
	// SignInToken is the single sign-on's browser token the upgrade
	// request carried, "" if none (Handler.SignInToken).
	SignInToken string
	// RejoinKey is the page's key for coming back in a new connection
	// (RejoinKey), "" if it sent none or one that is not a key.
	RejoinKey string
}

// NewFrameConn wraps a WebSocket's net.Conn whose Writes are messages.
func NewFrameConn(nc net.Conn) *FrameConn { return &FrameConn{Conn: nc} }

// Write sends every frame b completes; a partial frame waits for the next
// Write.
func (c *FrameConn) Write(b []byte) (int, error) {
	n := len(b)
	if len(c.pending) > 0 {
		c.pending = append(c.pending, b...)
		b = c.pending
	}
	for len(b) >= frameHeader {
		size := frameHeader + int(binary.BigEndian.Uint32(b[2:6]))
		if len(b) < size {
			break
		}
		if _, err := c.Conn.Write(b[:size]); err != nil {
			return 0, err
		}
		b = b[size:]
	}
	if len(b) == 0 {
		c.pending = c.pending[:0]
		return n, nil
	}
	rest := append([]byte(nil), b...)
	c.pending = rest
	return n, nil
}
