package oggopus

import "encoding/binary"

// Header type flags of an Ogg page (RFC 3533 section 6).
const (
	flagContinued = 0x01 // the page begins with the rest of the previous page's last packet
	flagBOS       = 0x02 // first page of a logical bitstream
	flagEOS       = 0x04 // last page of a logical bitstream
)

// Page layout limits (RFC 3533 section 6).
const (
	headerSize  = 27  // fixed part of a page header, before the segment table
	maxSegments = 255 // lacing values a page's segment table can hold
	maxLacing   = 255 // a lacing value below this ends a packet
)

// noGranule is the granule position of a page on which no packet ends:
// the player cannot tell a time for it (RFC 3533 section 6).
const noGranule = -1

// crcTable drives the Ogg CRC-32: generator polynomial 0x04c11db7, bits
// taken most significant first, initial value 0 and no final xor. This is
// not the reflected CRC-32 of zip and Ethernet (hash/crc32), so it has a
// table of its own.
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

// crcUpdate continues an Ogg CRC over b.
func crcUpdate(c uint32, b []byte) uint32 {
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// crc is the Ogg CRC-32 of b.
func crc(b []byte) uint32 { return crcUpdate(0, b) }

// pageHeader is what distinguishes one page of a stream from another.
type pageHeader struct {
	flags   byte
	granule int64 // noGranule when no packet ends on the page
	serial  uint32
	seq     uint32
}

// segmentCount is how many lacing values a packet of n bytes takes: one
// per whole 255 bytes, and one more below 255 (possibly 0) that ends it.
func segmentCount(n int) int { return n/maxLacing + 1 }

// appendLacing appends the lacing values of a whole packet of n bytes.
func appendLacing(lacing []byte, n int) []byte {
	for ; n >= maxLacing; n -= maxLacing {
		lacing = append(lacing, maxLacing)
	}
	return append(lacing, byte(n))
}

// appendPage appends one page to dst: the header h, the segment table
// lacing (at most maxSegments values) and the body, the concatenation of
// bodies, which must hold exactly the bytes the lacing values count. The
// CRC covers the whole page with its own field zeroed.
func appendPage(dst []byte, h pageHeader, lacing []byte, bodies ...[]byte) []byte {
	start := len(dst)
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, h.flags) // stream structure version 0
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.granule))
	dst = binary.LittleEndian.AppendUint32(dst, h.serial)
	dst = binary.LittleEndian.AppendUint32(dst, h.seq)
	dst = append(dst, 0, 0, 0, 0) // the CRC, once the page is complete
	dst = append(dst, byte(len(lacing)))
	dst = append(dst, lacing...)
	for _, b := range bodies {
		dst = append(dst, b...)
	}
	binary.LittleEndian.PutUint32(dst[start+22:], crc(dst[start:]))
	return dst
}

// pageSize is the size of a page holding whole packets whose lengths
// total body bytes and take segs lacing values.
func pageSize(body, segs int) int { return headerSize + segs + body }

// appendPacketPages appends the pages that carry one packet alone,
// spanning as many pages as it needs, to dst, numbering them from *seq
// on. flags go on the first page (BOS) or the last (EOS) as they apply;
// pages after the first are marked continued. Only the last page, where
// the packet ends, has granule as its position; the others have none. A
// packet whose length is a multiple of 255 ends with a lacing value of 0,
// which can be alone on the last page.
func appendPacketPages(dst []byte, serial uint32, seq *uint32, packet []byte, flags byte, granule int64) []byte {
	lacing := appendLacing(make([]byte, 0, segmentCount(len(packet))), len(packet))
	for first := true; len(lacing) > 0; first = false {
		n := min(len(lacing), maxSegments)
		last := n == len(lacing)
		h := pageHeader{serial: serial, seq: *seq, granule: noGranule}
		h.flags = flags &^ (flagBOS | flagEOS)
		if first {
			h.flags |= flags & flagBOS
		} else {
			h.flags |= flagContinued
		}
		if last {
			h.flags |= flags & flagEOS
			h.granule = granule
		}
		body := 0
		for _, l := range lacing[:n] {
			body += int(l)
		}
		dst = appendPage(dst, h, lacing[:n], packet[:body])
		packet, lacing = packet[body:], lacing[n:]
		*seq++
	}
	return dst
}
