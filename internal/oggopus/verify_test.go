package oggopus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// This file reads recordings back for the tests: an Ogg reader written
// from RFC 3533 and 7845 that checks every rule a file of ours must keep,
// and wrappers around opus-tools' opusinfo and opusdec.

// oggPage is one page as read back.
type oggPage struct {
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
	ends    int // packets that end on the page
	size    int
}

// oggFile is one Ogg Opus file as read back.
type oggFile struct {
	pages   []oggPage
	packets [][]byte // every whole packet, headers included
	torn    int      // bytes after the last whole page (a write cut short)
}

// audio returns the audio packets (those after the two headers).
func (f *oggFile) audio() [][]byte { return f.packets[min(2, len(f.packets)):] }

// preSkip is the pre-skip OpusHead gives.
func (f *oggFile) preSkip() int { return int(binary.LittleEndian.Uint16(f.packets[0][10:])) }

// samples is the total length of the audio packets, by their TOC bytes.
func (f *oggFile) samples() int64 {
	var n int64
	for _, p := range f.audio() {
		n += int64(packetSamples(p))
	}
	return n
}

// last is the last whole page.
func (f *oggFile) last() oggPage { return f.pages[len(f.pages)-1] }

// readPages splits data into pages, checking each page's capture
// pattern, version, CRC and that the pages of the one stream are numbered
// from 0 without a gap, and reassembles the packets. Bytes after the last
// whole page are counted as torn, not an error: that is what a crash in
// the middle of a write leaves.
func readPages(data []byte) (*oggFile, error) {
	f := &oggFile{}
	var partial []byte // a packet continued on the next page
	for len(data) > 0 {
		p, body, lacing, err := splitPage(data)
		if errors.Is(err, errShort) {
			f.torn = len(data)
			break
		}
		if err != nil {
			return f, fmt.Errorf("page %d: %w", len(f.pages), err)
		}
		if len(f.pages) > 0 && p.serial != f.pages[0].serial {
			return f, fmt.Errorf("page %d: serial %08x, the stream's is %08x", len(f.pages), p.serial, f.pages[0].serial)
		}
		if p.seq != uint32(len(f.pages)) {
			return f, fmt.Errorf("page %d has sequence number %d", len(f.pages), p.seq)
		}
		if continued := p.flags&flagContinued != 0; continued != (partial != nil) {
			return f, fmt.Errorf("page %d: continued flag %v, but a packet was left open: %v", len(f.pages), continued, partial != nil)
		}
		for _, l := range lacing {
			partial = append(partial, body[:l]...)
			body = body[l:]
			if l < maxLacing {
				f.packets = append(f.packets, partial)
				partial = nil
				p.ends++
			}
		}
		f.pages = append(f.pages, p)
		data = data[p.size:]
	}
	return f, nil
}

var errShort = errors.New("incomplete page")

// splitPage reads the page at the start of data.
func splitPage(data []byte) (p oggPage, body, lacing []byte, err error) {
	if len(data) < headerSize {
		return p, nil, nil, errShort
	}
	if string(data[:4]) != "OggS" || data[4] != 0 {
		return p, nil, nil, fmt.Errorf("no capture pattern and version 0: % x", data[:5])
	}
	p.flags = data[5]
	p.granule = int64(binary.LittleEndian.Uint64(data[6:]))
	p.serial = binary.LittleEndian.Uint32(data[14:])
	p.seq = binary.LittleEndian.Uint32(data[18:])
	if p.flags&^(flagContinued|flagBOS|flagEOS) != 0 {
		return p, nil, nil, fmt.Errorf("unknown flags %02x", p.flags)
	}
	hdr := headerSize + int(data[26])
	if len(data) < hdr {
		return p, nil, nil, errShort
	}
	lacing = data[headerSize:hdr]
	p.size = hdr
	for _, l := range lacing {
		p.size += int(l)
	}
	if len(data) < p.size {
		return p, nil, nil, errShort
	}
	check := bytes.Clone(data[:p.size])
	clear(check[22:26])
	if got, want := crc(check), binary.LittleEndian.Uint32(data[22:]); got != want {
		return p, nil, nil, fmt.Errorf("CRC %08x, the page says %08x", got, want)
	}
	return p, data[hdr:p.size], lacing, nil
}

// readOpus reads an Ogg Opus file and checks what RFC 7845 asks of it,
// beyond the pages readPages checks: OpusHead alone on a BOS page,
// OpusTags ending the page it ends on, header pages at granule 0, no
// granule on a page where no packet ends, and on every other page the
// granule the audio so far adds up to. With complete, it must also end
// with an EOS page and nothing torn after it.
func readOpus(path string, complete bool) (*oggFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := readPages(data)
	if err != nil {
		return f, err
	}
	if err := checkOpus(f); err != nil {
		return f, err
	}
	if complete && (f.torn > 0 || f.last().flags&flagEOS == 0) {
		return f, fmt.Errorf("no EOS flag on the last page, or %d torn bytes after it", f.torn)
	}
	return f, nil
}

func checkOpus(f *oggFile) error {
	if len(f.pages) < 2 || len(f.packets) < 2 {
		return fmt.Errorf("only %d pages, %d packets: no headers", len(f.pages), len(f.packets))
	}
	first := f.pages[0]
	if first.flags != flagBOS || first.ends != 1 || first.granule != 0 || !bytes.HasPrefix(f.packets[0], []byte("OpusHead")) {
		return fmt.Errorf("first page: flags %02x, %d packets, granule %d: want OpusHead alone on a BOS page", first.flags, first.ends, first.granule)
	}
	if !bytes.HasPrefix(f.packets[1], []byte("OpusTags")) {
		return errors.New("the second packet is not OpusTags")
	}
	var ended, granule int64
	for i, p := range f.pages {
		if i > 0 && p.flags&flagBOS != 0 {
			return fmt.Errorf("page %d: BOS again", i)
		}
		if i < len(f.pages)-1 && p.flags&flagEOS != 0 {
			return fmt.Errorf("page %d: EOS before the last page", i)
		}
		packets := f.packets[ended : ended+int64(p.ends)]
		ended += int64(p.ends)
		switch {
		case p.ends == 0:
			if p.granule != noGranule {
				return fmt.Errorf("page %d: no packet ends on it, but granule %d", i, p.granule)
			}
			continue
		case ended <= 2:
			if p.granule != 0 {
				return fmt.Errorf("header page %d: granule %d", i, p.granule)
			}
			continue
		case ended-int64(p.ends) < 2:
			return fmt.Errorf("page %d: audio on the page where OpusTags ends", i)
		}
		for _, pkt := range packets {
			granule += int64(packetSamples(pkt))
		}
		if p.granule != granule {
			return fmt.Errorf("page %d: granule %d, its audio adds up to %d", i, p.granule, granule)
		}
	}
	return nil
}

// needOpusTools skips a test when opus-tools is not installed.
func needOpusTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"opusinfo", "opusdec"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install Debian's opus-tools to check recordings with it (scripts/test does)", tool)
		}
	}
}

// opusinfo runs opusinfo on a file and fails the test if it reports any
// warning or error, except, for a file a crash cut short (crashed), the
// missing end of stream that comes with it.
func opusinfo(t *testing.T, path string, crashed bool) string {
	t.Helper()
	out, err := exec.Command("opusinfo", path).CombinedOutput()
	var complaints []string
	for line := range strings.Lines(string(out)) {
		lower := strings.ToLower(line)
		if !strings.Contains(lower, "warning") && !strings.Contains(lower, "error") {
			continue
		}
		if crashed && strings.Contains(line, "EOS not set") {
			continue
		}
		complaints = append(complaints, strings.TrimSpace(line))
	}
	if complaints != nil || (err != nil && !crashed) {
		t.Fatalf("opusinfo %s (%v) complains: %q\n%s", filepath.Base(path), err, complaints, out)
	}
	return string(out)
}

// opusdec decodes a file with opusdec to 48 kHz mono samples.
func opusdec(t *testing.T, path string) []int16 {
	t.Helper()
	wav := filepath.Join(t.TempDir(), "decoded.wav")
	out, err := exec.Command("opusdec", "--rate", "48000", "--force-wav", "--quiet", path, wav).CombinedOutput()
	if err != nil {
		t.Fatalf("opusdec %s: %v\n%s", filepath.Base(path), err, out)
	}
	data, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := wavSamples(data)
	if err != nil {
		t.Fatalf("opusdec's output: %v", err)
	}
	return pcm
}

// wavSamples returns the samples of a 16-bit mono WAV file.
func wavSamples(data []byte) ([]int16, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, errors.New("not a WAV file")
	}
	for data = data[12:]; len(data) >= 8; {
		id, size := string(data[:4]), int(binary.LittleEndian.Uint32(data[4:]))
		data = data[8:]
		switch {
		case id == "fmt " && size >= 16:
			channels, bits := binary.LittleEndian.Uint16(data[2:]), binary.LittleEndian.Uint16(data[14:])
			if channels != 1 || bits != 16 {
				return nil, fmt.Errorf("%d channels of %d bits, want mono 16-bit", channels, bits)
			}
		case id == "data":
			size = min(size, len(data)) // opusdec may leave the size unset when it streams
			pcm := make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
			}
			return pcm, nil
		}
		data = data[min(len(data), size+size&1):]
	}
	return nil, errors.New("no data chunk")
}
