package server

// The UDP socket layer: one socket per core on the same port
// (SO_REUSEPORT), read and written in batches with recvmmsg/sendmmsg
// through golang.org/x/net. The kernel hashes each client address to one
// socket, so a sender's packets are always handled by the same goroutine,
// in order.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one recvmmsg or sendmmsg moves.
const batchSize = 64

// maxDatagram is the largest datagram the voice path sends: a full
// plaintext plus the crypt header.
const maxDatagram = 1024 + 4

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common
// (their Message types are the same type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpSocket is one of the server's UDP sockets.
type udpSocket struct {
	conn  *net.UDPConn
	batch batchConn
}

func newUDPSocket(c *net.UDPConn) *udpSocket {
	s := &udpSocket{conn: c}
	if a := c.LocalAddr().(*net.UDPAddr); a.IP.To4() != nil && !a.IP.IsUnspecified() {
		s.batch = ipv4.NewPacketConn(c)
	} else {
		s.batch = ipv6.NewPacketConn(c) // also carries IPv4 on a dual-stack socket
	}
	// A roomy receive buffer keeps bursts (and the pings that tell clients
	// UDP works) from being dropped by the kernel; it cannot turn into
	// queued, stale voice, because voice that waited too long is shed by
	// its kernel arrival time.
	c.SetReadBuffer(1 << 20)
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soTimestampNS, 1)
		})
	}
	return s
}

// listenUDP opens n sockets on addr sharing one port.
func listenUDP(addr string, n int) ([]*udpSocket, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var socks []*udpSocket
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, fmt.Errorf("listen udp: %w", err)
		}
		socks = append(socks, newUDPSocket(pc.(*net.UDPConn)))
		addr = pc.LocalAddr().String() // the others join the port the first one got
	}
	return socks, nil
}

// Linux socket options and control messages used here.
const (
	soReusePort    = 0xf  // SO_REUSEPORT
	soTimestampNS  = 0x23 // SO_TIMESTAMPNS (old form: 64-bit time on amd64/arm64)
	scmTimestampNS = soTimestampNS
	oobSize        = 64 // room for one SCM_TIMESTAMPNS control message
)

// arrival returns the kernel receive time carried in oob (a control
// message buffer filled by recvmmsg), or zero when there is none.
func arrival(oob []byte) time.Time {
	const hdr = 16 // cmsghdr on 64-bit Linux: len uint64, level int32, type int32
	for len(oob) >= hdr {
		n := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if n < hdr || n > len(oob) {
			return time.Time{}
		}
		if level == syscall.SOL_SOCKET && typ == scmTimestampNS && n >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return time.Unix(sec, nsec)
		}
		oob = oob[(n+7)&^7:]
	}
	return time.Time{}
}

// udpReaders is how many sockets (and reader goroutines) to open: one per
// core, since each reader decrypts, routes and encrypts its packets itself.
func udpReaders() int {
	return min(max(runtime.GOMAXPROCS(0), 1), 8)
}

// outBatch collects outgoing datagrams for one sendmmsg. The buffers are a
// slab owned by the batch, so queuing allocates nothing.
type outBatch struct {
	msgs []ipv4.Message
	bufs [][1][]byte
	slab []byte
	n    int
}

func newOutBatch() *outBatch {
	b := &outBatch{msgs: make([]ipv4.Message, batchSize), bufs: make([][1][]byte, batchSize), slab: make([]byte, batchSize*maxDatagram)}
	for i := range b.msgs {
		b.msgs[i].Buffers = b.bufs[i][:]
	}
	return b
}

// slot returns an empty buffer for the next datagram, flushing to sock
// first when the batch is full.
func (b *outBatch) slot(sock *udpSocket) []byte {
	if b.n == len(b.msgs) {
		b.flush(sock)
	}
	return b.slab[b.n*maxDatagram : b.n*maxDatagram : (b.n+1)*maxDatagram]
}

// add queues the datagram built in the current slot for addr.
func (b *outBatch) add(pkt []byte, addr *net.UDPAddr) {
	b.bufs[b.n][0] = pkt
	b.msgs[b.n].Addr = addr
	b.n++
}

// flush sends everything queued. A destination that fails (an ICMP error
// reported on the socket) is skipped; the rest still go out.
func (b *outBatch) flush(sock *udpSocket) {
	for sent := 0; sent < b.n; {
		k, err := sock.batch.WriteBatch(b.msgs[sent:b.n], 0)
		if err != nil || k <= 0 {
			k = 1
		}
		sent += k
	}
	for i := 0; i < b.n; i++ {
		b.msgs[i].Addr = nil // do not keep departed users' addresses alive
	}
	b.n = 0
}
