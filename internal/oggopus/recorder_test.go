package oggopus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

// page is one parsed Ogg page.
type page struct {
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
	packets [][]byte // packets that end on this page (the recorder never splits one)
}

// parsePages reads every page of an Ogg file and checks its CRC.
func parsePages(t *testing.T, data []byte) []page {
	t.Helper()
	var pages []page
	for len(data) > 0 {
		if len(data) < 27 || string(data[:4]) != "OggS" {
			t.Fatalf("page %d: no capture pattern", len(pages))
		}
		nseg := int(data[26])
		hdr := 27 + nseg
		size := hdr
		for _, l := range data[27:hdr] {
			size += int(l)
		}
		p := page{flags: data[5], granule: int64(binary.LittleEndian.Uint64(data[6:])),
			serial: binary.LittleEndian.Uint32(data[14:]), seq: binary.LittleEndian.Uint32(data[18:])}
		want := binary.LittleEndian.Uint32(data[22:])
		check := bytes.Clone(data[:size])
		clear(check[22:26])
		if got := crc(check); got != want {
			t.Fatalf("page %d: CRC %08x, header says %08x", len(pages), got, want)
		}
		body, pkt := data[hdr:size], 0
		for _, l := range data[27:hdr] {
			pkt += int(l)
			if l < 255 {
				p.packets = append(p.packets, body[:pkt])
				body, pkt = body[pkt:], 0
			}
		}
		pages = append(pages, p)
		data = data[size:]
	}
	return pages
}

// record writes d of a 440 Hz tone in 20 ms frames through a recorder.
func record(t *testing.T, r *Recorder, d time.Duration) {
	t.Helper()
	sp, err := audiotest.NewSpeaker(440, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	for range int(d / (20 * time.Millisecond)) {
		pkt, err := sp.Next()
		if err != nil {
			t.Fatal(err)
		}
		r.Write(pkt, 960)
	}
}

// decode runs opusinfo and opusdec on a file and returns the decoded
// samples (48 kHz mono) and what opusinfo said. A file a crash cut short
// (crashed) lacks only its end-of-stream flag, which opusinfo warns of.
func decode(t *testing.T, path string, crashed bool) ([]int16, string) {
	t.Helper()
	if _, err := exec.LookPath("opusdec"); err != nil {
		t.Skip("opus-tools not installed (apt-get install opus-tools); scripts/test installs it")
	}
	info, err := exec.Command("opusinfo", path).CombinedOutput()
	complaints := string(info)
	if crashed {
		complaints = strings.Replace(complaints, "WARNING: EOS not set on stream 1", "", 1)
		err = nil // opusinfo exits 1 for the missing EOS
	}
	if err != nil || strings.Contains(strings.ToLower(complaints), "warning") || strings.Contains(complaints, "ERROR") {
		t.Fatalf("opusinfo complains about %s (%v):\n%s", path, err, info)
	}
	wav := filepath.Join(t.TempDir(), "out.raw")
	out, err := exec.Command("opusdec", "--rate", "48000", "--force-wav", "--quiet", path, wav).CombinedOutput()
	if err != nil {
		t.Fatalf("opusdec %s: %v\n%s", path, err, out)
	}
	data, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	data = data[44:] // the WAV header opusdec writes
	pcm := make([]int16, len(data)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return pcm, string(info)
}

// TestRecordingIsValidOggOpus records five seconds and checks the file
// with our page parser and with opus-tools: every CRC right, one BOS and
// one EOS page, granules rising, and the tone decodes back.
func TestRecordingIsValidOggOpus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec", "hall.opus")
	r := NewRecorder(Options{Name: func(int) string { return path }, Comments: []string{"TITLE=Hall"}})
	record(t, r, 5*time.Second)
	r.Close()
	if r.Dropped() != 0 {
		t.Fatalf("%d packets dropped", r.Dropped())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := parsePages(t, data)
	if pages[0].flags != flagBOS || !bytes.HasPrefix(pages[0].packets[0], []byte("OpusHead")) ||
		!bytes.HasPrefix(pages[1].packets[0], []byte("OpusTags")) {
		t.Fatal("the headers are not OpusHead on a BOS page, then OpusTags")
	}
	last := pages[len(pages)-1]
	if last.flags != flagEOS || last.granule != 250*960 {
		t.Fatalf("last page: flags %x granule %d, want EOS and %d", last.flags, last.granule, 250*960)
	}
	packets := 0
	for i, p := range pages[2:] {
		packets += len(p.packets)
		if i > 0 && p.granule <= pages[i+1].granule {
			t.Fatalf("granule did not rise at page %d", i+2)
		}
	}
	if packets != 250 {
		t.Fatalf("%d audio packets in the file, wrote 250", packets)
	}
	t.Logf("%d bytes for 5 s (%.1f kbit/s), %d audio pages", len(data), float64(len(data))*8/5/1000, len(pages)-2)

	pcm, _ := decode(t, path, false)
	if want := 5*48000 - DefaultPreSkip; len(pcm) < want-960 || len(pcm) > want+960 {
		t.Errorf("decoded %d samples, want about %d", len(pcm), want)
	}
	if lvl := audiotest.Level(pcm[48000:], 440); lvl < 0.2 {
		t.Errorf("the tone decodes at %.3f, recorded at 0.3", lvl)
	}
}

// TestRecordingSurvivesACrash: what a recorder has synced is a valid file
// even if the process dies without Close. The child process records in
// real time and is killed with SIGKILL after three seconds.
func TestRecordingSurvivesACrash(t *testing.T) {
	if path := os.Getenv("OGGOPUS_CRASH_CHILD"); path != "" {
		r := NewRecorder(Options{Name: func(int) string { return path }})
		sp, _ := audiotest.NewSpeaker(440, 0.3, 20)
		tick := time.NewTicker(20 * time.Millisecond)
		for range tick.C {
			pkt, _ := sp.Next()
			r.Write(pkt, 960)
		}
	}
	path := filepath.Join(t.TempDir(), "crash.opus")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingSurvivesACrash$")
	cmd.Env = append(os.Environ(), "OGGOPUS_CRASH_CHILD="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	cmd.Process.Kill()
	cmd.Wait()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := parsePages(t, data) // every page whole, every CRC right
	pcm, _ := decode(t, path, true)
	got := time.Duration(len(pcm)) * time.Second / 48000
	t.Logf("killed after 3 s of recording: %d pages, %v decodes", len(pages), got)
	if got < 1800*time.Millisecond { // the child needs ~0.5 s to start; at most SyncEvery is lost
		t.Errorf("only %v of about 2.5 s survived the crash", got)
	}
}

// TestRecordingRotates: with a small size limit the recording goes on in
// new files, each valid on its own, with nothing lost between them.
func TestRecordingRotates(t *testing.T) {
	dir := t.TempDir()
	name := func(seq int) string { return filepath.Join(dir, fmt.Sprintf("hall-%03d.opus", seq)) }
	r := NewRecorder(Options{Name: name, MaxBytes: 20000, SyncEvery: 50 * time.Millisecond})
	for range 10 {
		record(t, r, time.Second)
		time.Sleep(60 * time.Millisecond) // let it flush: pages of a few packets
	}
	r.Close()
	total := 0
	for seq := 0; ; seq++ {
		data, err := os.ReadFile(name(seq))
		if err != nil {
			if seq < 3 {
				t.Fatalf("only %d files for 10 s at 20 kB each", seq)
			}
			break
		}
		if len(data) > 20000+8000 {
			t.Errorf("file %d is %d bytes, limit 20000 (plus one page)", seq, len(data))
		}
		pages := parsePages(t, data)
		last := pages[len(pages)-1]
		if last.flags != flagEOS {
			t.Errorf("file %d does not end with an EOS page", seq)
		}
		n := 0
		for _, p := range pages[2:] {
			n += len(p.packets)
		}
		if last.granule != int64(n*960) {
			t.Errorf("file %d: granule %d for %d packets", seq, last.granule, n)
		}
		total += n
		decode(t, name(seq), false)
	}
	if total != 500 {
		t.Errorf("%d packets in all files, wrote 500", total)
	}
}

// TestWriteNeitherBlocksNorAllocates: Write copies into the ring; when
// the ring is full it drops and counts.
func TestWriteNeitherBlocksNorAllocates(t *testing.T) {
	r := NewRecorder(Options{Name: func(int) string { return filepath.Join(t.TempDir(), "x.opus") }, SyncEvery: time.Hour})
	defer r.Close()
	pkt := make([]byte, 100)
	if allocs := testing.AllocsPerRun(100, func() { r.Write(pkt, 960) }); allocs != 0 {
		t.Errorf("Write allocated %.1f times", allocs)
	}
	for range 2 * ringSlots {
		r.Write(pkt, 960)
	}
	if got := r.Dropped(); got < ringSlots {
		t.Errorf("dropped %d of %d packets beyond a full ring", got, 2*ringSlots)
	}
}
