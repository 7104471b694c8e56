package main

import (
	"encoding/binary"
	"time"
)

// The voice payload stands in for a 20 ms Opus frame. Its first bytes carry
// what a listener needs to check and time it; the rest is a pattern derived
// from the sequence number, so that a corrupted or misrouted packet shows.
//
//	0..3   magic "PLG1"
//	4..11  send time: nanoseconds since the generator's start (monotonic)
//	12..15 speaker index
//	16..23 sequence number (also sent as the voice frame number)
//	24..   filler: byte(seq + i) at offset i
const (
	payloadHeader  = 24
	defaultPayload = 100 // a typical 20 ms Opus frame at ~40 kbit/s
)

var payloadMagic = [4]byte{'P', 'L', 'G', '1'}

// encodePayload fills b (len >= payloadHeader) for one packet. It does not
// allocate.
func encodePayload(b []byte, speaker uint32, seq uint64, sent time.Duration) {
	copy(b[0:4], payloadMagic[:])
	binary.LittleEndian.PutUint64(b[4:12], uint64(sent))
	binary.LittleEndian.PutUint32(b[12:16], speaker)
	binary.LittleEndian.PutUint64(b[16:24], seq)
	for i := payloadHeader; i < len(b); i++ {
		b[i] = byte(seq + uint64(i))
	}
}

// decodePayload checks b and returns its fields; ok is false for anything
// the generator did not send intact.
func decodePayload(b []byte) (speaker uint32, seq uint64, sent time.Duration, ok bool) {
	if len(b) < payloadHeader || [4]byte(b[0:4]) != payloadMagic {
		return 0, 0, 0, false
	}
	sent = time.Duration(binary.LittleEndian.Uint64(b[4:12]))
	speaker = binary.LittleEndian.Uint32(b[12:16])
	seq = binary.LittleEndian.Uint64(b[16:24])
	for i := payloadHeader; i < len(b); i++ {
		if b[i] != byte(seq+uint64(i)) {
			return 0, 0, 0, false
		}
	}
	return speaker, seq, sent, true
}
