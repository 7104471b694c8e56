package server

// Outgoing datagrams are collected in an outBatch and sent with one
// sendmmsg. Copies for the same listener that have the same size are
// coalesced into one message sent with UDP generic segmentation offload
// (UDP_SEGMENT): the kernel then walks its UDP/IP send path once for the
// whole run instead of once per datagram, and the listener still receives
// separate datagrams. Mumble encodes Opus at a constant bitrate, so in a
// busy channel the voice packets a listener receives within one batch
// mostly have the same size.

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
)

const (
	// maxSegments bounds the datagrams coalesced into one message; with
	// maxDatagram it keeps a message far below UDP's 64 KB.
	maxSegments = 32

	solUDP       = 17  // SOL_UDP
	udpSegment   = 103 // UDP_SEGMENT
	gsoCmsgSpace = 24  // CMSG_SPACE(sizeof(uint16)) on 64-bit Linux
)

// outBatch collects outgoing datagrams for sendmmsg. The datagrams live in
// a slab owned by the batch, so queuing allocates nothing.
type outBatch struct {
	msgs  []ipv4.Message
	segs  [][maxSegments][]byte // each message's segments; Buffers points here
	oob   []byte                // a UDP_SEGMENT control message per message
	slab  []byte
	slots int // datagram slots in slab

	nMsgs, nSlots int
	// open maps a destination to the message in this batch that may
	// still take more datagrams of its segment size for it.
	open map[*net.UDPAddr]int32
	// closed marks messages whose last segment was shorter than the
	// segment size: nothing may follow it.
	closed []bool
}

// newOutBatch makes a batch of up to msgs messages holding up to slots
// datagrams in all.
func newOutBatch(msgs, slots int) *outBatch {
	b := &outBatch{
		msgs:   make([]ipv4.Message, msgs),
		segs:   make([][maxSegments][]byte, msgs),
		oob:    make([]byte, msgs*gsoCmsgSpace),
		slab:   make([]byte, slots*maxDatagram),
		slots:  slots,
		open:   make(map[*net.UDPAddr]int32, msgs),
		closed: make([]bool, msgs),
	}
	return b
}

// slot returns an empty buffer for the next datagram, flushing to sock
// first when the batch is full.
func (b *outBatch) slot(sock *udpSocket) []byte {
	if b.nSlots == b.slots || b.nMsgs == len(b.msgs) {
		b.flush(sock)
	}
	off := b.nSlots * maxDatagram
	return b.slab[off:off:(off + maxDatagram)]
}

// add queues the datagram built in the current slot for addr, as a further
// segment of addr's open message when the socket can segment and the
// sizes allow it.
func (b *outBatch) add(sock *udpSocket, pkt []byte, addr *net.UDPAddr) {
	b.nSlots++
	if sock.gso.Load() {
		if i, ok := b.open[addr]; ok && b.append(i, pkt) {
			return
		}
	}
	i := b.nMsgs
	b.nMsgs++
	b.segs[i][0] = pkt
	b.msgs[i].Buffers = b.segs[i][:1]
	b.msgs[i].Addr = addr
	b.closed[i] = false
	if sock.gso.Load() {
		b.open[addr] = int32(i)
	}
}

// append adds pkt as the next segment of message i if that keeps the
// message valid for UDP_SEGMENT: every segment the size of the first,
// except that the last may be shorter.
func (b *outBatch) append(i int32, pkt []byte) bool {
	m := &b.msgs[i]
	n := len(m.Buffers)
	size := len(m.Buffers[0])
	if b.closed[i] || n == maxSegments || len(pkt) > size || len(pkt) == 0 {
		return false
	}
	b.segs[i][n] = pkt
	m.Buffers = b.segs[i][:n+1]
	b.closed[i] = len(pkt) < size
	return true
}

// flush sends everything queued. A destination that fails (an ICMP error
// reported on the socket) is skipped; the rest still go out.
func (b *outBatch) flush(sock *udpSocket) {
	for i := 0; i < b.nMsgs; i++ {
		m := &b.msgs[i]
		if len(m.Buffers) > 1 {
			oob := b.oob[i*gsoCmsgSpace : (i+1)*gsoCmsgSpace]
			putSegmentCmsg(oob, len(m.Buffers[0]))
			m.OOB = oob
		} else {
			m.OOB = nil
		}
	}
	for sent := 0; sent < b.nMsgs; {
		k, err := sock.batch.WriteBatch(b.msgs[sent:b.nMsgs], 0)
		k = max(k, 0)
		if err != nil && errors.Is(err, syscall.EIO) && sent+k < b.nMsgs && len(b.msgs[sent+k].Buffers) > 1 {
			// The route's device cannot checksum segmented UDP: stop
			// coalescing on this socket and send this message's
			// datagrams one by one.
			sent += k
			sock.gso.Store(false)
			b.sendSegments(sock, &b.msgs[sent])
			sent++
			continue
		}
		if err != nil || k <= 0 {
			k = 1
		}
		sent += k
	}
	for i := 0; i < b.nMsgs; i++ {
		b.msgs[i].Addr = nil // do not keep departed users' addresses alive
		b.msgs[i].Buffers = nil
		b.msgs[i].OOB = nil
	}
	b.nMsgs, b.nSlots = 0, 0
	clear(b.open)
}

// sendSegments sends a coalesced message's datagrams separately.
func (b *outBatch) sendSegments(sock *udpSocket, m *ipv4.Message) {
	for _, seg := range m.Buffers {
		sock.conn.WriteToUDP(seg, m.Addr.(*net.UDPAddr))
	}
}

// putSegmentCmsg writes a UDP_SEGMENT control message with the segment
// size into oob (gsoCmsgSpace bytes).
func putSegmentCmsg(oob []byte, size int) {
	const hdr = 16 // cmsghdr on 64-bit Linux: len uint64, level int32, type int32
	clear(oob)
	binary.NativeEndian.PutUint64(oob, hdr+2)
	binary.NativeEndian.PutUint32(oob[8:], solUDP)
	binary.NativeEndian.PutUint32(oob[12:], udpSegment)
	binary.NativeEndian.PutUint16(oob[hdr:], uint16(size))
}
