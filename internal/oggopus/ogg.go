// Package oggopus writes Opus packets to Ogg Opus files (RFC 3533 pages,
// RFC 7845 mapping) for recordings: a Recorder takes packets from a
// real-time goroutine without blocking or allocating, and a goroutine of
// its own writes them out in pages, syncing to disk twice a second, so a
// crash loses at most the last half second.
package oggopus

import (
	"encoding/binary"
)

// Page header flags (RFC 3533 section 6).
const (
	flagContinued = 0x01
	flagBOS       = 0x02
	flagEOS       = 0x04
)

// SampleRate is the rate granule positions count in for Opus (RFC 7845).
const SampleRate = 48000

// DefaultPreSkip is libopus's encoder delay at 48 kHz: the samples a
// player drops at the start.
const DefaultPreSkip = 312

// crcTable is the Ogg CRC-32: polynomial 0x04c11db7, no reflection, initial
// value 0, no final xor.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func crc(b []byte) uint32 {
	var c uint32
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// pager builds the pages of one logical stream.
type pager struct {
	serial uint32
	seq    uint32
	buf    []byte // the page being built, reused
}

// page appends to dst one page holding packets (each whole: the
// recorder never splits a packet across pages) and returns it.
func (p *pager) page(dst []byte, flags byte, granule int64, packets [][]byte) []byte {
	start := len(dst)
	var segs int
	for _, pkt := range packets {
		segs += len(pkt)/255 + 1
	}
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(granule))
	dst = binary.LittleEndian.AppendUint32(dst, p.serial)
	dst = binary.LittleEndian.AppendUint32(dst, p.seq)
	dst = append(dst, 0, 0, 0, 0) // CRC, filled in below
	dst = append(dst, byte(segs))
	for _, pkt := range packets {
		n := len(pkt)
		for ; n >= 255; n -= 255 {
			dst = append(dst, 255)
		}
		dst = append(dst, byte(n))
	}
	for _, pkt := range packets {
		dst = append(dst, pkt...)
	}
	binary.LittleEndian.PutUint32(dst[start+22:], crc(dst[start:]))
	p.seq++
	return dst
}

// segments is how many lacing values a packet takes.
func segments(n int) int { return n/255 + 1 }

// maxSegments is the most lacing values one page holds.
const maxSegments = 255

// opusHead is the identification header of a mono stream.
func opusHead(preSkip int) []byte {
	h := []byte("OpusHead")
	h = append(h, 1, 1) // version 1, one channel
	h = binary.LittleEndian.AppendUint16(h, uint16(preSkip))
	h = binary.LittleEndian.AppendUint32(h, SampleRate) // what the input was
	h = binary.LittleEndian.AppendUint16(h, 0)          // output gain
	return append(h, 0)                                 // channel mapping family 0
}

// opusTags is the comment header.
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
