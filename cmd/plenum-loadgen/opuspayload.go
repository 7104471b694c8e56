package main

import (
	"errors"
	"fmt"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

// With -opus the voice payload is real Opus, for servers that decode it
// (a loudest-N or mixing channel). The generator's header then travels in
// the Opus packet's padding, which every decoder skips (RFC 6716 section
// 3.2.5): the frame is rewritten as a code 3 packet of one frame with
// payloadHeader bytes of padding at its end.
//
//	TOC (code 3) | 0x41 (padding, one frame) | payloadHeader | frame | header
//
// Each speaker sends a loop of pre-encoded frames of its own tone, so the
// run spends no CPU on encoding; the tones' loudness is spread over 28 dB
// so that loudest-N has a clear order to choose by.

// opusLoopFrames is how many distinct frames each speaker loops through.
const opusLoopFrames = 25

// padOpus rewrites a single-frame Opus packet (code 0, or code 3 with one
// frame, which is how libopus pads to a constant bit rate) into a code 3
// packet carrying trailer as its only padding.
func padOpus(pkt, trailer []byte) ([]byte, error) {
	frame, err := singleFrame(pkt)
	if err != nil {
		return nil, err
	}
	if len(trailer) > 254 {
		return nil, errors.New("padOpus: trailer longer than one padding length byte")
	}
	out := make([]byte, 0, len(frame)+3+len(trailer))
	out = append(out, pkt[0]|3, 0x40|1, byte(len(trailer)))
	out = append(out, frame...)
	return append(out, trailer...), nil
}

// singleFrame returns the one frame of a code 0 packet or of a code 3
// packet that holds one frame (RFC 6716 section 3.2).
func singleFrame(pkt []byte) ([]byte, error) {
	switch {
	case len(pkt) >= 1 && pkt[0]&3 == 0:
		return pkt[1:], nil
	case len(pkt) >= 2 && pkt[0]&3 == 3 && pkt[1]&0x3f == 1:
		body := pkt[2:]
		pad := 0
		if pkt[1]&0x40 != 0 {
			for {
				if len(body) == 0 {
					return nil, errors.New("padOpus: truncated padding length")
				}
				n := int(body[0])
				body = body[1:]
				if n < 255 {
					pad += n
					break
				}
				pad += 254
			}
		}
		if pad > len(body) {
			return nil, errors.New("padOpus: padding longer than the packet")
		}
		return body[:len(body)-pad], nil
	}
	return nil, errors.New("padOpus: not a single-frame Opus packet")
}

// opusTrailer returns the padding of a packet made by padOpus, or nil.
func opusTrailer(pkt []byte) []byte {
	if len(pkt) < 3 || pkt[0]&3 != 3 || pkt[1] != 0x41 {
		return nil
	}
	n := int(pkt[2])
	if n == 255 || len(pkt) < 3+n {
		return nil
	}
	return pkt[len(pkt)-n:]
}

// opusLoops pre-encodes each speaker's loop of padded frames, sized so
// that a packet is about payload bytes (CBR, as Mumble sends).
func opusLoops(speakers, payload int) ([][][]byte, error) {
	frameBytes := payload - 3 - payloadHeader // TOC and padding bytes, trailer
	if frameBytes < 10 {
		return nil, fmt.Errorf("-payload %d leaves no room for an Opus frame", payload)
	}
	loops := make([][][]byte, speakers)
	for i := range loops {
		amp := 0.02 + 0.5*float64(i)/float64(max(speakers-1, 1))
		// An even frequency fits whole periods into the 0.5 s loop, so
		// the loop plays as one continuous tone, without a click.
		sp, err := audiotest.NewSpeaker(200+float64(i%40)*38, amp, 20)
		if err != nil {
			return nil, err
		}
		if err := sp.SetBitrate(frameBytes * 8 * 50); err != nil {
			return nil, err
		}
		// The first loop's frames carry the encoder's start from
		// silence; the second's continue where the loop wraps to.
		for f := range 2 * opusLoopFrames {
			pkt, err := sp.Next()
			if err != nil {
				return nil, err
			}
			if f < opusLoopFrames {
				continue
			}
			padded, err := padOpus(pkt, make([]byte, payloadHeader))
			if err != nil {
				return nil, err
			}
			loops[i] = append(loops[i], padded)
		}
	}
	return loops, nil
}
