package udpbatch

// Outgoing datagrams are collected in a Batch and sent with one sendmmsg.
// Datagrams for the same address that have the same size are coalesced
// into one message sent with UDP generic segmentation offload
// (UDP_SEGMENT): the kernel then walks its UDP/IP send path once for the
// whole run instead of once per datagram, and the receiver still gets
// separate datagrams. Mumble encodes Opus at a constant bitrate, so in a
// busy channel the voice packets a listener receives within one batch
// mostly have the same size.

import "net/netip"

const (
	// maxSegments bounds the datagrams coalesced into one message (the
	// kernel takes up to 64).
	maxSegments = 32
	// maxCoalesced bounds the bytes of a coalesced message, which the
	// kernel must fit into one UDP datagram before it cuts it.
	maxCoalesced = 65000
)

// A Batch collects outgoing datagrams and sends them to its Sender in one
// WriteBatch. The datagrams live in slots owned by the batch, so queuing
// allocates nothing. A Batch belongs to one goroutine at a time.
type Batch struct {
	to       Sender
	msgs     []Message
	segs     [][]byte // maxSegs per message; msgs[i].Datagrams is a slice of it
	slab     []byte   // the slots, slotSize bytes each
	slotSize int
	slots    int
	maxSegs  int

	nMsgs, nSlots int
	// open maps a destination to the message in this batch that may
	// still take more datagrams of its segment size for it.
	open map[netip.AddrPort]int32
	// closed marks messages whose last segment was shorter than the
	// segment size: nothing may follow it.
	closed []bool
	// sealers[i*maxSegs+k] seals segment k of message i when the batch
	// is sent (AddSealed); nil for a datagram queued sealed (Add).
	sealers []Sealer
	sealing bool // some datagram queued waits to be sealed
}

// A Sealer seals (encrypts) a datagram in place, keeping its length.
type Sealer interface {
	Seal(pkt []byte)
}

// NewBatch makes a batch for to of up to msgs messages holding up to
// slots datagrams of up to slotSize bytes in all.
func NewBatch(to Sender, msgs, slots, slotSize int) *Batch {
	maxSegs := max(min(maxSegments, maxCoalesced/slotSize), 1)
	return &Batch{
		to:       to,
		msgs:     make([]Message, msgs),
		segs:     make([][]byte, msgs*maxSegs),
		slab:     make([]byte, slots*slotSize),
		slotSize: slotSize,
		slots:    slots,
		maxSegs:  maxSegs,
		open:     make(map[netip.AddrPort]int32, msgs),
		closed:   make([]bool, msgs),
		sealers:  make([]Sealer, msgs*maxSegs),
	}
}

// Slot returns an empty buffer with room for the next datagram, sending
// what is queued first when the batch is full. Append the datagram to it
// and queue it with Add; a slot that is not added is handed out again.
func (b *Batch) Slot() []byte {
	if b.nSlots == b.slots || b.nMsgs == len(b.msgs) {
		b.Flush()
	}
	off := b.nSlots * b.slotSize
	return b.slab[off:off:(off + b.slotSize)]
}

// Add queues the datagram built in the buffer the last Slot returned, for
// to: as a further segment of to's open message when the sender can
// segment and the sizes allow it.
func (b *Batch) Add(pkt []byte, to netip.AddrPort) { b.add(pkt, to, nil) }

func (b *Batch) add(pkt []byte, to netip.AddrPort, by Sealer) {
	b.nSlots++
	b.sealing = b.sealing || by != nil
	gso := b.to.GSO()
	if gso {
		if i, ok := b.open[to]; ok && b.append(i, pkt) {
			b.sealers[int(i)*b.maxSegs+len(b.msgs[i].Datagrams)-1] = by
			return
		}
	}
	i := b.nMsgs
	b.nMsgs++
	end := (i + 1) * b.maxSegs
	segs := b.segs[i*b.maxSegs : end : end]
	segs[0] = pkt
	b.sealers[i*b.maxSegs] = by
	b.msgs[i] = Message{To: to, Datagrams: segs[:1]}
	b.closed[i] = false
	if gso {
		b.open[to] = int32(i)
	}
}

// AddSealed is Add for a datagram that by seals when the batch is sent,
// not now. A stream cipher with a nonce per datagram, such as Mumble's
// CryptState, then numbers a peer's datagrams in the order they leave:
// when several goroutines, each with its own batch, send to one peer, a
// batch held for a while (an overloaded core) does not send datagrams
// numbered before those that other batches sent meanwhile, which the
// peer would drop as too late once they are more than its window (30 for
// Mumble) behind. pkt must have its final length, with any room the
// sealer writes into already reserved.
func (b *Batch) AddSealed(pkt []byte, to netip.AddrPort, by Sealer) { b.add(pkt, to, by) }

// append adds pkt as the next segment of message i if that keeps the
// message valid for UDP_SEGMENT: every segment the size of the first,
// except that the last may be shorter.
func (b *Batch) append(i int32, pkt []byte) bool {
	m := &b.msgs[i]
	n := len(m.Datagrams)
	size := len(m.Datagrams[0])
	if b.closed[i] || n == b.maxSegs || len(pkt) > size || len(pkt) == 0 {
		return false
	}
	m.Datagrams = m.Datagrams[:n+1]
	m.Datagrams[n] = pkt
	b.closed[i] = len(pkt) < size
	return true
}

// sealChunk is how many messages Flush seals before it sends them. A
// datagram is sealed a chunk's sending before it leaves, not a whole
// batch's: on a core so busy that the sending thread waits its turn for
// long, another batch could otherwise send 30 newer datagrams to the same
// peer meanwhile.
const sealChunk = 64

// Flush seals what waits to be sealed, sends everything queued and
// empties the batch. A peer's datagrams are sealed in the order they
// were queued, since its messages are.
func (b *Batch) Flush() {
	if !b.sealing {
		if b.nMsgs > 0 {
			b.to.WriteBatch(b.msgs[:b.nMsgs])
		}
	} else {
		for from := 0; from < b.nMsgs; from += sealChunk {
			to := min(from+sealChunk, b.nMsgs)
			b.seal(from, to)
			b.to.WriteBatch(b.msgs[from:to])
		}
	}
	b.nMsgs, b.nSlots, b.sealing = 0, 0, false
	if len(b.open) > 0 {
		clear(b.open)
	}
}

// seal seals the datagrams of messages [from, to) that wait for it, and
// forgets their sealers, which a batch at rest does not keep alive.
func (b *Batch) seal(from, to int) {
	for i := from; i < to; i++ {
		sealers := b.sealers[i*b.maxSegs : (i+1)*b.maxSegs]
		for k, d := range b.msgs[i].Datagrams {
			if sealers[k] != nil {
				sealers[k].Seal(d)
				sealers[k] = nil
			}
		}
	}
}
