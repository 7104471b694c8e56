package udpbatch

import (
	"net/netip"
	"time"
)

// A Datagram is one entry of a ReadBatch: a buffer the caller provides,
// and what was read into it.
type Datagram struct {
	// Buf is where the datagram is read to. The caller sets it and
	// ReadBatch leaves it; a longer datagram is cut to len(Buf), so a
	// spare byte tells an oversized datagram from one that fits exactly.
	Buf  []byte
	N    int            // the datagram's length in Buf
	From netip.AddrPort // its sender; invalid if the system gave an address of another family
	At   time.Time      // when the kernel received it; zero where the system does not say
}

// Bytes returns the datagram read: Buf[:N].
func (d *Datagram) Bytes() []byte { return d.Buf[:d.N] }

// A Message is one entry of a sendmmsg: a datagram for an address, or,
// coalesced, several datagrams for it that the kernel sends separately.
type Message struct {
	To netip.AddrPort
	// Datagrams holds at least one datagram. With more than one, every
	// datagram but the last has the size of the first and the last is no
	// longer (what UDP_SEGMENT requires).
	Datagrams [][]byte
}

// A Sender sends messages in batches: a *Conn, or a stand-in in tests.
// A Batch writes to one.
type Sender interface {
	// WriteBatch sends msgs. A message that cannot be sent (an ICMP
	// error pending on the socket, an address of the wrong family) is
	// dropped and the others still go out.
	WriteBatch(msgs []Message)
	// GSO reports whether a message may carry more than one datagram.
	GSO() bool
}

// Options are the socket options Listen sets.
type Options struct {
	// ReadBuffer is the receive buffer to ask for (SO_RCVBUF), in bytes;
	// 0 keeps the system's default.
	ReadBuffer int
	// GSO lets a Batch coalesce datagrams for one address into one
	// UDP_SEGMENT message where the kernel supports it.
	GSO bool
}

// An OptionError says which socket option Listen could not put in effect,
// why, and what the sockets do without it. The sockets work anyway.
type OptionError struct {
	Option string // e.g. "SO_RCVBUF"
	Err    error  // usually the errno of setsockopt or getsockopt
	Effect string // what is missing without it
}

func (e *OptionError) Error() string {
	return e.Option + ": " + e.Err.Error() + " (" + e.Effect + ")"
}

func (e *OptionError) Unwrap() error { return e.Err }
