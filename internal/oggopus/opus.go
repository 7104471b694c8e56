package oggopus

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// SampleRate is what Ogg Opus granule positions count in: 48 kHz samples,
// whatever rate the audio was encoded at (RFC 7845 section 4).
const SampleRate = 48000

// DefaultPreSkip is libopus's encoder delay at 48 kHz (its lookahead, 6.5
// ms), which a player drops from the start of the decoded audio. A caller
// whose encoder reports another lookahead passes that as Options.PreSkip.
const DefaultPreSkip = 312

// Vendor names the writer in every file's OpusTags header.
const Vendor = "Plenum"

// maxPacketSamples is the longest an Opus packet can last: 120 ms (RFC
// 6716 section 3.2.5).
const maxPacketSamples = 5760

// opusHead is the identification header of a mono stream with channel
// mapping family 0 (RFC 7845 section 5.1).
func opusHead(preSkip int) []byte {
	h := []byte("OpusHead")
	h = append(h, 1, 1) // version 1, one channel
	h = binary.LittleEndian.AppendUint16(h, uint16(preSkip))
	h = binary.LittleEndian.AppendUint32(h, SampleRate) // the rate the input had, for players that care
	h = binary.LittleEndian.AppendUint16(h, 0)          // output gain: none
	return append(h, 0)                                 // mapping family 0: mono or stereo, no table
}

// opusTags is the comment header (RFC 7845 section 5.2): the vendor
// string and the user comments, each NAME=value.
func opusTags(vendor string, comments []string) []byte {
	h := []byte("OpusTags")
	h = binary.LittleEndian.AppendUint32(h, uint32(len(vendor)))
	h = append(h, vendor...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(comments)))
	for _, c := range comments {
		h = binary.LittleEndian.AppendUint32(h, uint32(len(c)))
		h = append(h, c...)
	}
	return h
}

// checkComments returns the comments that are well formed, NAME=value
// with a name of ASCII 0x20 to 0x7D other than '=' (the Vorbis comment
// rules RFC 7845 adopts), with values made valid UTF-8, and an error
// naming those it left out, which players would reject or misread.
func checkComments(comments []string) ([]string, error) {
	var ok, bad []string
	for _, c := range comments {
		name, value, found := strings.Cut(c, "=")
		if !found || name == "" || strings.IndexFunc(name, badNameRune) >= 0 {
			bad = append(bad, c)
			continue
		}
		ok = append(ok, name+"="+strings.ToValidUTF8(value, "\uFFFD"))
	}
	if bad != nil {
		return ok, fmt.Errorf("recording: comments left out, not NAME=value: %q", bad)
	}
	return ok, nil
}

func badNameRune(r rune) bool { return r < 0x20 || r > 0x7d || r == '=' }

// packetSamples is how long an Opus packet lasts in 48 kHz samples, read
// from its TOC byte and, for code 3 packets, its frame count (RFC 6716
// section 3.1). It returns 0 for a packet that cannot be valid: empty, no
// frames, or longer than 120 ms.
func packetSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int(p[1] & 0x3f)
	}
	n := frames * frameSamples(p[0]>>3)
	if n > maxPacketSamples {
		return 0
	}
	return n
}

// frameSamples is the length of one frame of TOC configuration config.
func frameSamples(config byte) int {
	switch {
	case config < 12: // SILK: 10, 20, 40 or 60 ms
		if config&3 == 3 {
			return 2880
		}
		return 480 << (config & 3)
	case config < 16: // hybrid: 10 or 20 ms
		return 480 << (config & 1)
	default: // CELT: 2.5, 5, 10 or 20 ms
		return 120 << (config & 3)
	}
}
