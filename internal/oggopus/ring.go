package oggopus

import "sync/atomic"

// maxPacket is the largest packet a Recorder takes: one Opus frame at
// most (RFC 6716 section 3.2.1), which is what a 20 ms tick produces.
const maxPacket = 1275

// slot holds one packet in the ring.
type slot struct {
	n       int // bytes of data in use
	samples int
	data    [maxPacket]byte
}

func (s *slot) packet() []byte { return s.data[:s.n] }

// ring is a queue of packets in storage allocated once, between one
// producer (Recorder.Write) and one consumer (the recorder's goroutine).
// The producer fills the slot at tail, then publishes it by advancing
// tail; the consumer reads the slots from head to tail, then frees them
// by advancing head. Neither ever waits for the other: the atomic loads
// and stores order the copies, and a full ring is simply reported back to
// the producer, which drops the packet.
type ring struct {
	slots []slot
	head  atomic.Uint64 // the oldest waiting packet; stored by the consumer only
	_     [56]byte      // keeps head and tail on separate cache lines
	tail  atomic.Uint64 // where the next packet goes; stored by the producer only
}

func newRing(n int) *ring { return &ring{slots: make([]slot, n)} }

// push copies packet into the ring, or reports false if it is full.
// Only the producer calls it.
func (q *ring) push(packet []byte, samples int) bool {
	t := q.tail.Load()
	if t-q.head.Load() == uint64(len(q.slots)) {
		return false
	}
	s := q.at(t)
	s.n = copy(s.data[:], packet)
	s.samples = samples
	q.tail.Store(t + 1)
	return true
}

// waiting returns the index of the oldest waiting packet and how many
// wait. Only the consumer calls it; the slots it names stay untouched by
// the producer until the consumer frees them.
func (q *ring) waiting() (head uint64, n int) {
	head = q.head.Load()
	return head, int(q.tail.Load() - head)
}

// at is the slot of packet index i.
func (q *ring) at(i uint64) *slot { return &q.slots[i%uint64(len(q.slots))] }

// free gives the n oldest slots back to the producer.
func (q *ring) free(n int) { q.head.Store(q.head.Load() + uint64(n)) }

// prerollSamples is how much audio a file after the first begins with
// again from the end of the one before, as its pre-skip, so that the
// decoder, starting from nothing, has settled by the time the player plays
// its output, and the files join without a gap or a glitch. RFC 7845
// (section 5.1) recommends at least 80 ms for a stream cropped from
// another; a 40 kbit/s SILK stream still differs from the uncut one by a
// tenth of its level after 80 ms, and by no more than dither after 200.
const prerollSamples = 9600

// maxPrerollPackets bounds the packets kept for the pre-roll, and the
// memory: 64 of the shortest (2.5 ms) still make 160 ms.
const maxPrerollPackets = 64

// lastPackets keeps copies of the newest packets written, as few as make
// up prerollSamples, for the next file to begin with.
type lastPackets struct {
	slots   [maxPrerollPackets]slot
	start   int
	n       int
	samples int
	bytes   int // in the packets
	segs    int // lacing values they take
}

// add keeps a copy of s, and forgets the oldest packets not needed to
// make up prerollSamples.
func (l *lastPackets) add(s *slot) {
	if l.n == maxPrerollPackets {
		l.forgetOldest()
	}
	d := l.at(l.n)
	d.n, d.samples = copy(d.data[:], s.packet()), s.samples
	l.n++
	l.samples, l.bytes, l.segs = l.samples+s.samples, l.bytes+s.n, l.segs+segmentCount(s.n)
	for l.n > 1 && l.samples-l.at(0).samples >= prerollSamples {
		l.forgetOldest()
	}
}

func (l *lastPackets) forgetOldest() {
	s := l.at(0)
	l.samples, l.bytes, l.segs = l.samples-s.samples, l.bytes-s.n, l.segs-segmentCount(s.n)
	l.start = (l.start + 1) % len(l.slots)
	l.n--
}

// at is the i-th oldest packet kept.
func (l *lastPackets) at(i int) *slot { return &l.slots[(l.start+i)%len(l.slots)] }
