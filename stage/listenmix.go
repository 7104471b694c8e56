package stage

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/hraban/opus"
	"github.com/plenum-voice/plenum/proto/voice"
)

// ListenerMix makes, every tick, the one stream each of its listeners
// hears (a browser, which takes one track and no per-speaker streams):
// the router hands it each listener's copies of what a Mumble client in
// its place would get (Deliver), and Tick mixes, for each listener, the
// speakers it got copies from, never its own voice. Listeners who hear
// the same set of speakers in a tick share one encode.
//
// A speaker's packet reaches Deliver once per listener; it is decoded
// once. Copies of one sender that differ (a stage's mix-minus streams
// carry the same sender and frame with other audio) become sources of
// their own.
type ListenerMix struct {
	codecs *CodecPool // the tick goroutine's

	mu        sync.Mutex
	tick      uint64
	listeners map[uint32]*mixListener
	bySender  map[uint32][]*source
	nextID    uint32
	seed      maphash.Seed
	joined    chan struct{} // capacity 1: a listener was added

	// Tick goroutine only.
	sources   []*source // every source, for decoding
	groups    map[string]*mixGroup
	key       []byte
	sum       []int32
	pcm       []int16
	packet    [maxOpusBytes]byte
	decodes   uint64
	listenBuf []*mixListener // this tick's listeners, reused

	stats MixStats // under mu
}

// MixOutput takes a listener's mixed stream: one Opus frame of 20 ms per
// tick with audio, numbered by tick (ticks without audio send nothing).
// Called from the tick goroutine; it must not block.
type MixOutput interface {
	WriteMix(opus []byte, tick uint64)
}

// MixStats are a ListenerMix's totals.
type MixStats struct {
	Ticks   uint64 // ticks that mixed anything
	Encodes uint64 // Opus encodes: one per distinct set of speakers heard in a tick
	Frames  uint64 // frames written to listeners
	Decodes uint64 // packets decoded
	// MostEncodes is the most encodes one tick needed.
	MostEncodes int
	Late        uint64 // ticks given up because the clock fell behind
}

type mixListener struct {
	session uint32
	out     MixOutput
	heard   map[*source]uint64 // the tick each source last reached this listener (under mu)
	set     []*source          // this tick's sources (tick goroutine)
}

// source is one stream of one sender: decoded once, heard by many.
type source struct {
	id     uint32
	sender uint32
	// Under mu.
	lastFrame uint64
	lastHash  uint64
	fed       bool
	inbox     []inPacket
	spare     []inPacket // the other half of the inbox, decoded by the tick goroutine (taken)
	lastIn    uint64     // tick of the last packet
	// Tick goroutine only.
	taken  []inPacket // this tick's packets
	dec    *opus.Decoder
	jb     jitterBuffer
	have   bool // jb.frame holds this tick's audio
	long   int  // ticks in a row the jitter buffer held too much
	closed bool
}

// sourceIdle is how long a source may get nothing before it is dropped,
// and how long a listener counts as hearing a source after its last copy.
const (
	sourceIdleTicks = 50 // 1 s
	hearingTicks    = 10 // 200 ms: a moved or deafened listener stops hearing within this
)

// NewListenerMix returns an empty mix that takes codecs from codecs; its
// Tick must run on the goroutine that owns codecs.
func NewListenerMix(codecs *CodecPool) *ListenerMix {
	return &ListenerMix{
		codecs:    codecs,
		listeners: map[uint32]*mixListener{},
		bySender:  map[uint32][]*source{},
		seed:      maphash.MakeSeed(),
		joined:    make(chan struct{}, 1),
		groups:    map[string]*mixGroup{},
		sum:       make([]int32, tickSamples),
		pcm:       make([]int16, maxFrameSamp),
	}
}

// Add makes session a listener whose stream goes to out.
func (m *ListenerMix) Add(session uint32, out MixOutput) {
	m.mu.Lock()
	m.listeners[session] = &mixListener{session: session, out: out, heard: map[*source]uint64{}}
	m.mu.Unlock()
	select {
	case m.joined <- struct{}{}:
	default:
	}
}

// Joined is signalled when a listener was added, so that a clock can
// sleep while the mix has none.
func (m *ListenerMix) Joined() <-chan struct{} { return m.joined }

// Remove ends session's stream if it goes to out (a session number may
// have been given to someone else since).
func (m *ListenerMix) Remove(session uint32, out MixOutput) {
	m.mu.Lock()
	if l, ok := m.listeners[session]; ok && l.out == out {
		delete(m.listeners, session)
	}
	m.mu.Unlock()
}

// Listeners is how many listeners the mix has.
func (m *ListenerMix) Listeners() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.listeners)
}

// Deliver takes listener's copy of a packet (a.Sender is the speaker). It
// copies what it keeps; called from the voice goroutines. It reports
// false when listener is not in the mix.
func (m *ListenerMix) Deliver(listener uint32, a *voice.Audio) bool {
	h := maphash.Bytes(m.seed, a.Opus)
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.listeners[listener]
	if !ok {
		return false
	}
	if a.Sender == listener {
		return true // never their own voice
	}
	var src *source
	for _, s := range m.bySender[a.Sender] {
		if s.fed && s.lastFrame == a.Frame && s.lastHash == h {
			src = s // another listener's copy of this very packet
			break
		}
	}
	if src == nil {
		src = m.feedable(l, a.Sender, a.Frame)
		if src == nil {
			src = m.newSourceLocked(a.Sender)
		}
		src.lastFrame, src.lastHash, src.fed, src.lastIn = a.Frame, h, true, m.tick
		if len(src.inbox) < cap(src.inbox) {
			p := &src.inbox[:len(src.inbox)+1][len(src.inbox)]
			p.frame, p.term, p.n = a.Frame, a.Terminator, copy(p.opus[:], a.Opus)
			src.inbox = src.inbox[:len(src.inbox)+1]
		}
	}
	l.heard[src] = m.tick
	return true
}

// feedable returns the source of sender that l heard last, if it has not
// had frame yet: l's stream goes on.
func (m *ListenerMix) feedable(l *mixListener, sender uint32, frame uint64) *source {
	var best *source
	var bestTick uint64
	for s, t := range l.heard {
		if s.sender == sender && !s.closed && (best == nil || t > bestTick) {
			best, bestTick = s, t
		}
	}
	if best != nil && best.fed && best.lastFrame == frame {
		return nil // it has this frame with other audio: a stream of its own
	}
	return best
}

func (m *ListenerMix) newSourceLocked(sender uint32) *source {
	m.nextID++
	s := &source{id: m.nextID, sender: sender, inbox: make([]inPacket, 0, inboxSlots), spare: make([]inPacket, 0, inboxSlots)}
	s.jb.init()
	// A browser hears a speaker as soon as one frame is in: a tick of
	// jitter then costs one concealed tick, after which the buffer holds
	// that tick more (as a stage's does from the start), and keepShort
	// cuts back what a stall left. Waiting a tick up front would add
	// 20 ms to every talk burst of a plenary that has 60 ms in all.
	s.jb.lead = 0
	m.bySender[sender] = append(m.bySender[sender], s)
	m.sources = append(m.sources, s)
	return s
}

// mixGroup is the listeners who hear one set of sources this tick, and
// the encoder of that set, kept while the set is heard.
type mixGroup struct {
	sources   []*source
	listeners []*mixListener
	enc       *opus.Encoder
	used      uint64 // the tick it was last used
}

// Skip lets n ticks pass without mixing, because nobody listens or
// because the clock fell behind (late): the listeners' streams show the
// gap in time. Tick goroutine only.
func (m *ListenerMix) Skip(n int, late bool) {
	m.mu.Lock()
	m.tick += uint64(n)
	if late {
		m.stats.Late += uint64(n)
	}
	sources := m.sources[:len(m.sources):len(m.sources)]
	m.mu.Unlock()
	if late {
		// The audio of the ticks given up is dropped, not kept to
		// delay everything after it.
		for _, s := range sources {
			s.jb.trim()
		}
	}
}

// Tick mixes one tick for every listener and writes it. It returns the
// number of encodes it did. Tick goroutine only.
func (m *ListenerMix) Tick() int {
	m.mu.Lock()
	m.tick++
	tick := m.tick
	// Take what arrived, and each listener's current sources.
	// Deliver adds sources under mu: this tick works on those there now.
	sources := m.sources[:len(m.sources):len(m.sources)]
	for _, s := range sources {
		// The inbox's halves swap: Deliver fills one while this tick
		// decodes the other, without the lock.
		s.taken, s.inbox = s.inbox, s.spare[:0]
		s.spare = s.taken
	}
	listeners := m.listenBuf[:0]
	for _, l := range m.listeners {
		l.set = l.set[:0]
		for s, t := range l.heard {
			if tick-t > hearingTicks || s.closed {
				delete(l.heard, s)
				continue
			}
			l.set = append(l.set, s)
		}
		listeners = append(listeners, l)
	}
	m.listenBuf = listeners
	m.mu.Unlock()

	for _, s := range sources {
		m.decode(s, s.taken)
		s.have = s.jb.next(s.dec)
		s.keepShort()
	}
	m.retireIdle(tick)

	// Group the listeners by what they hear.
	for _, l := range listeners {
		kept := l.set[:0]
		for _, s := range l.set {
			if s.have {
				kept = append(kept, s)
			}
		}
		l.set = kept
		if len(kept) == 0 {
			continue
		}
		slices.SortFunc(kept, func(a, b *source) int { return int(a.id) - int(b.id) })
		m.key = m.key[:0]
		for _, s := range kept {
			m.key = append(m.key, byte(s.id), byte(s.id>>8), byte(s.id>>16), byte(s.id>>24))
		}
		g, ok := m.groups[string(m.key)]
		if !ok {
			g = &mixGroup{sources: append([]*source(nil), kept...)}
			m.groups[string(m.key)] = g
		}
		if g.used != tick {
			g.used, g.listeners = tick, g.listeners[:0]
		}
		g.listeners = append(g.listeners, l)
	}
	encodes, frames := 0, uint64(0)
	for key, g := range m.groups {
		if g.used != tick {
			if g.enc != nil {
				m.codecs.putEncoder(g.enc)
			}
			delete(m.groups, key)
			continue
		}
		if n, ok := m.encode(g); ok {
			encodes++
			for _, l := range g.listeners {
				l.out.WriteMix(m.packet[:n], tick)
			}
			frames += uint64(len(g.listeners))
		}
	}
	m.mu.Lock()
	if encodes > 0 {
		m.stats.Ticks++
		m.stats.Encodes += uint64(encodes)
	}
	m.stats.Frames += frames
	m.stats.MostEncodes = max(m.stats.MostEncodes, encodes)
	m.stats.Decodes += m.decodes
	m.decodes = 0
	m.mu.Unlock()
	return encodes
}

// A source's jitter buffer holds what arrived in a burst until it is
// played; after a stall of the sender or the network it would keep the
// extra delay for good. Once it has held more than a tick beyond what a
// start leaves for shortenAfter ticks in a row (the tick a jitter of the
// network added is kept), it is cut back to a start: browsers' audio stays within the 60 ms a plenary
// allows, at the price of a concealed tick when a network that jitters
// more than that delivers late.
const (
	maxHeldTicks = 1
	shortenAfter = 25 // half a second
)

func (s *source) keepShort() {
	if s.jb.n <= s.jb.startResidue()+maxHeldTicks*tickSamples {
		s.long = 0
		return
	}
	if s.long++; s.long >= shortenAfter {
		s.jb.trim()
		s.jb.playing = true
		s.long = 0
	}
}

// decode feeds a source's packets of this tick into its jitter buffer.
func (m *ListenerMix) decode(s *source, packets []inPacket) {
	for i := range packets {
		p := &packets[i]
		if p.n == 0 {
			continue
		}
		if s.dec == nil {
			d, err := m.codecs.decoder(sampleRate)
			if err != nil {
				return
			}
			s.dec = d
		}
		n, err := s.dec.Decode(p.opus[:p.n], m.pcm)
		if err != nil || n == 0 {
			continue
		}
		m.decodes++
		s.jb.push(m.pcm[:n])
	}
}

// retireIdle drops the sources that got nothing for sourceIdleTicks and
// have played out.
func (m *ListenerMix) retireIdle(tick uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.sources[:0]
	for _, s := range m.sources {
		if tick-s.lastIn <= sourceIdleTicks || s.have {
			kept = append(kept, s)
			continue
		}
		s.closed = true
		if s.dec != nil {
			m.codecs.putDecoder(s.dec, sampleRate)
			s.dec = nil
		}
		list := slices.DeleteFunc(m.bySender[s.sender], func(o *source) bool { return o == s })
		if len(list) == 0 {
			delete(m.bySender, s.sender)
		} else {
			m.bySender[s.sender] = list
		}
	}
	clear(m.sources[len(kept):])
	m.sources = kept
}

// encode mixes a group's sources and encodes the mix with the group's
// encoder, into m.packet.
func (m *ListenerMix) encode(g *mixGroup) (int, bool) {
	if g.enc == nil {
		e, err := m.codecs.encoder()
		if err != nil {
			return 0, false
		}
		g.enc = e
	}
	clear(m.sum)
	for _, s := range g.sources {
		for i, v := range s.jb.frame {
			m.sum[i] += int32(v)
		}
	}
	pcm := m.pcm[:tickSamples]
	for i, v := range m.sum {
		pcm[i] = clip16(v)
	}
	n, err := g.enc.Encode(pcm, m.packet[:])
	if err != nil {
		return 0, false
	}
	return n, true
}

// Stats returns the totals so far.
func (m *ListenerMix) Stats() MixStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
