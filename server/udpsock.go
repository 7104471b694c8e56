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
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one recvmmsg moves, and the size of the
// small out batches of routers that forward little (tunnelled voice, the
// stage clock).
const batchSize = 64

// A UDP reader's out batch holds the copies of several incoming packets,
// so that copies for the same listener can be coalesced (see outbatch.go):
// up to readerBatchSlots datagrams in up to readerBatchMsgs messages
// (about 1 MB of buffers per reader).
const (
	readerBatchMsgs  = 256
	readerBatchSlots = 1024
)

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
	gso   atomic.Bool // the kernel segments UDP_SEGMENT messages for this socket
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
			// Linux 4.18+ knows UDP_SEGMENT; older kernels refuse to read it.
			_, err := syscall.GetsockoptInt(int(fd), solUDP, udpSegment)
			s.gso.Store(err == nil && !noGSO)
		})
	}
	return s
}

// noGSO turns UDP segmentation offload off (PLENUM_NO_GSO=1), to compare.
var noGSO = os.Getenv("PLENUM_NO_GSO") != ""

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
