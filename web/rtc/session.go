package rtc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Events is what a session tells its owner. Audio and Silence come from
// the session's reader goroutine, one at a time; Ended comes once, from
// any goroutine.
type Events interface {
	// Audio is one RTP packet of the browser's voice, valid during the
	// call; arrival is the time it was read, in Unix nanoseconds.
	Audio(p *rtp.Packet, arrival int64)
	// Silence says no voice came for SilenceGap.
	Silence()
	// Ended says the browser is gone: ICE failed or the connection closed.
	Ended()
}

// SilenceGap is how long the browser may send nothing (or only DTX)
// before its talk burst counts as ended.
const SilenceGap = 100 * time.Millisecond

// Session is one browser's peer connection.
type Session struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	ev    Events
	ended sync.Once

	// The outgoing stream; the writer (the mix clock) is one goroutine.
	wmu      sync.Mutex
	pkt      rtp.Packet
	seq      uint16
	tsBase   uint32
	lastTick uint64
	started  bool
}

// Answer takes a browser's offer and returns the session and the answer,
// with every candidate in it.
func (e *Endpoint) Answer(offer string, ev Events) (*Session, string, error) {
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	s := &Session{pc: pc, ev: ev, tsBase: rand.Uint32(), seq: uint16(rand.Uint32())}
	fail := func(err error) (*Session, string, error) {
		pc.Close()
		return nil, "", err
	}
	s.track, err = webrtc.NewTrackLocalStaticRTP(OpusCodec(), "audio", "plenum")
	if err != nil {
		return fail(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		e.goFn("web audio reader", func() { s.read(tr) })
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			s.end()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("offer: %w", cleanErr(err)))
	}
	if err := s.attachTrack(); err != nil {
		return fail(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("answer: %w", cleanErr(err)))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("answer: %w", cleanErr(err)))
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return fail(errors.New("gathering candidates took too long"))
	}
	return s, pc.LocalDescription().SDP, nil
}

// attachTrack puts the server's track on the offer's audio transceiver
// (pion reuses an offered transceiver of the same kind), so the answer
// is sendrecv on the one m-line the browser offered.
func (s *Session) attachTrack() error {
	_, err := s.pc.AddTrack(s.track)
	return err
}

// cleanErr keeps an SDP error's gist without echoing the whole input.
func cleanErr(err error) error {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return errors.New(strings.ToValidUTF8(msg, "?"))
}

// read hands the browser's RTP to the owner until the connection ends.
func (s *Session) read(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		tr.SetReadDeadline(time.Now().Add(SilenceGap))
		n, _, err := tr.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.ev.Silence()
				continue
			}
			s.end()
			return
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		s.ev.Audio(&p, time.Now().UnixNano())
	}
}

func (s *Session) end() {
	s.ended.Do(func() {
		s.ev.Ended()
	})
}

// WriteOpus sends one 20 ms Opus frame of the tick: its RTP timestamp
// follows the tick, so a gap between bursts is a gap in time for the
// browser's jitter buffer, and the first frame after one is marked.
func (s *Session) WriteOpus(payload []byte, tick uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pkt.Header = rtp.Header{
		Version:        2,
		Marker:         !s.started || tick != s.lastTick+1,
		SequenceNumber: s.seq,
		Timestamp:      s.tsBase + uint32(tick*960),
	}
	s.pkt.Payload = payload
	s.seq++
	s.lastTick, s.started = tick, true
	return s.track.WriteRTP(&s.pkt)
}

// Close ends the peer connection; the reader goroutine ends with it.
func (s *Session) Close() error {
	err := s.pc.Close()
	s.end()
	return err
}
