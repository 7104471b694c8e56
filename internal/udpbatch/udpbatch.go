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

// Limits of a Backoff's waits.
const (
	MinBackoff = time.Millisecond
	MaxBackoff = 100 * time.Millisecond
)

// A Backoff paces a read loop whose reads keep failing, so that an error
// that persists (the system out of buffers, a socket in a bad state)
// does not turn the loop into a spin: the first failure is retried at
// once, then the waits double from MinBackoff up to MaxBackoff until a
// read succeeds. The zero value is ready to use.
type Backoff struct {
	failures int
	wait     time.Duration
}

// Failed records a failed read and returns how long to wait before the
// next one.
func (b *Backoff) Failed() time.Duration {
	b.failures++
	if b.failures == 1 {
		return 0
	}
	b.wait = min(max(2*b.wait, MinBackoff), MaxBackoff)
	return b.wait
}

// Failures is how many reads in a row have failed.
func (b *Backoff) Failures() int { return b.failures }

// Succeeded records a read that worked and returns how many reads in a
// row had failed before it.
func (b *Backoff) Succeeded() int {
	n := b.failures
	*b = Backoff{}
	return n
}
