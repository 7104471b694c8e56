package oggopus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/internal/fulldisk"
)

// frame is the length of the test packets: 20 ms, as the server ticks.
const frame = 960

// tone returns n 20 ms Opus packets of a 440 Hz tone, encoded by libopus
// as a Mumble client would (40 kbit/s, constant bit rate).
func tone(t testing.TB, n int) [][]byte {
	t.Helper()
	sp, err := audiotest.NewSpeaker(440, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	packets := make([][]byte, n)
	for i := range packets {
		if packets[i], err = sp.Next(); err != nil {
			t.Fatal(err)
		}
	}
	return packets
}

// fixedName names every file path; for recordings that stay in one file.
func fixedName(path string) func(int) string { return func(int) string { return path } }

// seqNames names the files of a recording dir/hall-000.opus and on.
func seqNames(dir string) func(int) string {
	return func(seq int) string { return filepath.Join(dir, fmt.Sprintf("hall-%03d.opus", seq)) }
}

// recorded reads back every file of a recording, checking each with our
// reader, and returns their audio packets in order, leaving out those a
// file after the first repeats from the one before (its pre-skip), and
// the files.
func recorded(t *testing.T, name func(int) string, complete bool) ([][]byte, []*oggFile) {
	t.Helper()
	var packets [][]byte
	var files []*oggFile
	for seq := 0; ; seq++ {
		_, err := os.Stat(name(seq))
		if errors.Is(err, os.ErrNotExist) || seq > 0 && name(seq) == name(0) {
			return packets, files
		}
		f, err := readOpus(name(seq), complete)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(name(seq)), err)
		}
		audio := f.audio()
		if seq > 0 {
			for repeated := 0; repeated < f.preSkip(); audio = audio[1:] {
				repeated += packetSamples(audio[0])
			}
		}
		packets = append(packets, audio...)
		files = append(files, f)
	}
}

// hookFile is a real file whose writes and syncs a test watches, slows
// down or makes fail.
type hookFile struct {
	*os.File
	h *hooks
}

type hooks struct {
	mu        sync.Mutex
	syncTimes []time.Time
	pageSizes []int // audio pages written, in samples
	// beforeWrite runs before each write; an error fails it, after
	// writing partial bytes of it as a full disk would.
	beforeWrite func(off int64, b []byte) (partial int, err error)
}

func (h *hooks) open(name string) (file, error) {
	f, err := createFile(name)
	if err != nil {
		return nil, err
	}
	return &hookFile{f.(*os.File), h}, nil
}

func (f *hookFile) WriteAt(b []byte, off int64) (int, error) {
	if f.h.beforeWrite != nil {
		if partial, err := f.h.beforeWrite(off, b); err != nil {
			n, _ := f.File.WriteAt(b[:partial], off)
			return n, err
		}
	}
	if off > 0 { // an audio page: how long is it?
		if _, body, lacing, err := splitPage(b); err == nil {
			samples, n := 0, 0 // n: bytes of the packet so far
			for _, l := range lacing {
				if n += int(l); l < maxLacing {
					samples += packetSamples(body)
					body, n = body[n:], 0
				}
			}
			f.h.mu.Lock()
			f.h.pageSizes = append(f.h.pageSizes, samples)
			f.h.mu.Unlock()
		}
	}
	return f.File.WriteAt(b, off)
}

func (f *hookFile) Sync() error {
	f.h.mu.Lock()
	f.h.syncTimes = append(f.h.syncTimes, time.Now())
	f.h.mu.Unlock()
	return f.File.Sync()
}

// TestRecordingIsValidOggOpus records five seconds of a tone and reads
// the file back: our reader finds every page and header as RFC 3533 and
// 7845 want them, opusinfo has nothing to complain of, and opusdec
// decodes the tone at its length less the pre-skip.
func TestRecordingIsValidOggOpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recordings") // created by the recorder
	path := filepath.Join(dir, "hall.opus")
	r := NewRecorder(Options{Name: fixedName(path), Comments: []string{"TITLE=Hall", "DATE=2026-11-24T03:00:00Z"}})
	packets := tone(t, 250)
	for _, p := range packets {
		r.Write(p, frame)
	}
	if err := r.Close(); err != nil || r.Dropped() != 0 {
		t.Fatalf("Close: %v, %d dropped", err, r.Dropped())
	}
	f, err := readOpus(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(f.audio(), packets, bytes.Equal) || f.last().granule != 250*frame {
		t.Fatalf("%d packets, granule %d; wrote 250 packets, %d samples", len(f.audio()), f.last().granule, 250*frame)
	}
	for path, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		if st, err := os.Stat(path); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode(), err, want)
		}
	}
	t.Logf("5 s at 40 kbit/s: %d bytes in %d audio pages", fileSize(t, path), len(f.pages)-2)

	needOpusTools(t)
	info := opusinfo(t, path, false)
	for _, want := range []string{"Encoded with " + Vendor, "TITLE=Hall", "DATE=2026-11-24T03:00:00Z", "Pre-skip: 312"} {
		if !strings.Contains(info, want) {
			t.Errorf("opusinfo does not say %q:\n%s", want, info)
		}
	}
	pcm := opusdec(t, path)
	if want := 250*frame - DefaultPreSkip; len(pcm) < want-frame || len(pcm) > want+frame {
		t.Errorf("decoded %d samples, want %d within a frame", len(pcm), want)
	}
	if lvl := audiotest.Level(pcm[SampleRate:], 440); lvl < 0.2 {
		t.Errorf("the tone decodes at level %.3f, recorded at 0.3", lvl)
	}
	t.Logf("opusdec: %d samples (%.3f s), 440 Hz at %.3f", len(pcm), float64(len(pcm))/SampleRate, audiotest.Level(pcm[SampleRate:], 440))
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestSyncsAtLeastEverySecond records three seconds at the pace of the
// server's tick and watches the file: it is synced every SyncEvery (half
// a second), never more than a second apart, and no page holds more than
// a second of audio.
func TestSyncsAtLeastEverySecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	h := &hooks{}
	r := NewRecorder(Options{Name: fixedName(path), openFile: h.open})
	packets := tone(t, 150)
	tick := time.NewTicker(20 * time.Millisecond)
	start := time.Now()
	for _, p := range packets {
		<-tick.C
		r.Write(p, frame)
	}
	tick.Stop()
	elapsed := time.Since(start)
	h.mu.Lock()
	syncs := slices.Clone(h.syncTimes)
	pages := slices.Clone(h.pageSizes)
	h.mu.Unlock()
	r.Close()
	if len(syncs) < 2 {
		t.Fatalf("%d syncs in %v", len(syncs), elapsed)
	}
	var longest time.Duration
	for i := 1; i < len(syncs); i++ {
		longest = max(longest, syncs[i].Sub(syncs[i-1]))
	}
	if longest > time.Second {
		t.Errorf("%v between two syncs", longest)
	}
	if m := slices.Max(pages); m > SampleRate {
		t.Errorf("a page of %d samples", m)
	}
	total := 0
	for _, n := range pages {
		total += n
	}
	t.Logf("%v of real-time recording: %d syncs (%.1f/s, longest gap %v), %d audio pages (%.1f/s, %.0f ms of audio each on average), %d bytes (%.0f B/s)",
		elapsed.Round(time.Millisecond), len(syncs), float64(len(syncs))/elapsed.Seconds(), longest.Round(time.Millisecond),
		len(pages), float64(len(pages))/elapsed.Seconds(), 1000*float64(total)/float64(len(pages))/SampleRate,
		fileSize(t, path), float64(fileSize(t, path))/elapsed.Seconds())
}

// crashChild is the environment variable that makes the test binary the
// child of TestRecordingSurvivesKill: it records there until killed.
const crashChild = "OGGOPUS_CRASH_CHILD"

// TestRecordingSurvivesKill: a process that records and is killed with
// SIGKILL just before a sync, so that nothing is closed or flushed and
// half a second waits in the ring, leaves a file that is valid up to its
// last page (every CRC right, granules adding up) and decodes to all but
// at most the last 1.2 s of what it recorded.
func TestRecordingSurvivesKill(t *testing.T) {
	if path := os.Getenv(crashChild); path != "" {
		recordUntilKilled(path)
	}
	path := filepath.Join(t.TempDir(), "crash.opus")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingSurvivesKill$")
	cmd.Env = append(os.Environ(), crashChild+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64 // packets the child says it has written
	started, read := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.Atoi(sc.Text()); err == nil {
				if written.Swap(int64(n)) == 0 {
					close(started)
				}
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the child never started recording")
	}
	// The child's recorder syncs every 0.5 s from its start, 20 ms before
	// its first packet: killing it 3.45 s after that packet comes just
	// before a sync, when the most is at stake.
	time.Sleep(3450 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	<-read
	recorded := time.Duration(written.Load()) * 20 * time.Millisecond

	f, err := readOpus(path, false) // every page whole, every CRC right
	if err != nil {
		t.Fatal(err)
	}
	inFile := time.Duration(f.samples()) * time.Second / SampleRate
	t.Logf("killed after recording %v: %d pages and %d torn bytes; %v of audio in the file", recorded, len(f.pages), f.torn, inFile)
	if inFile < recorded-1200*time.Millisecond {
		t.Errorf("only %v of %v recorded is in the file", inFile, recorded)
	}
	needOpusTools(t)
	opusinfo(t, path, true)
	pcm := opusdec(t, path)
	decoded := time.Duration(len(pcm)) * time.Second / SampleRate
	t.Logf("opusdec decodes %v: %v lost", decoded, recorded-decoded)
	if decoded < recorded-1200*time.Millisecond {
		t.Errorf("opusdec decodes %v of %v recorded", decoded, recorded)
	}
	if lvl := audiotest.Level(pcm, 440); lvl < 0.2 {
		t.Errorf("the tone decodes at level %.3f", lvl)
	}
}

// recordUntilKilled is the child: it records a tone at the tick's pace and
// prints how many packets it has written after each. It gives up after a
// minute, should its parent be gone.
func recordUntilKilled(path string) {
	r := NewRecorder(Options{Name: fixedName(path)})
	sp, err := audiotest.NewSpeaker(440, 0.3, 20)
	if err != nil {
		panic(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for n := 1; n < 3000; n++ {
		<-tick.C
		p, err := sp.Next()
		if err != nil {
			panic(err)
		}
		r.Write(p, frame)
		fmt.Println(n)
	}
	os.Exit(1)
}

// TestRecordingRotates: with a small MaxBytes the recording goes on in
// new files, each under the limit, valid on its own (headers, granules
// from 0, EOS at its end), and together holding every packet in order.
func TestRecordingRotates(t *testing.T) {
	dir := t.TempDir()
	const limit = 20000
	r := NewRecorder(Options{Name: seqNames(dir), MaxBytes: limit, SyncEvery: 20 * time.Millisecond})
	packets := tone(t, 500)
	for i, p := range packets {
		r.Write(p, frame)
		if i < 250 && i%10 == 9 {
			time.Sleep(30 * time.Millisecond) // small pages; the rest come in pages of a second
		}
	}
	if err := r.Close(); err != nil || r.Dropped() != 0 {
		t.Fatalf("Close: %v, %d dropped", err, r.Dropped())
	}
	got, files := recorded(t, seqNames(dir), true)
	if len(files) < 3 {
		t.Fatalf("%d files for 10 s at 40 kbit/s with a limit of %d bytes", len(files), limit)
	}
	if !slices.EqualFunc(got, packets, bytes.Equal) {
		t.Fatalf("the files hold %d packets, not the 500 written in order", len(got))
	}
	serials := map[uint32]bool{}
	for seq, f := range files {
		if size := fileSize(t, seqNames(dir)(seq)); size > limit {
			t.Errorf("file %d: %d bytes, over the limit", seq, size)
		}
		serials[f.pages[0].serial] = true
	}
	if len(serials) != len(files) {
		t.Errorf("%d serial numbers for %d files", len(serials), len(files))
	}
	needOpusTools(t)
	var decoded []int16
	for seq, f := range files {
		opusinfo(t, seqNames(dir)(seq), false)
		pcm := opusdec(t, seqNames(dir)(seq))
		if want := int(f.samples()) - f.preSkip(); len(pcm) != want {
			t.Errorf("file %d decodes to %d samples, want %d", seq, len(pcm), want)
		}
		if seq > 0 && f.preSkip() < 80*SampleRate/1000 {
			t.Errorf("file %d: pre-skip %d, want at least 80 ms", seq, f.preSkip())
		}
		decoded = append(decoded, pcm...)
	}
	// The files decode one after the other as one decoder decodes the
	// whole stream: no gap and no glitch where they join.
	whole := decodeAll(t, packets)[DefaultPreSkip:]
	if len(decoded) != len(whole) {
		t.Fatalf("the files decode to %d samples, the stream to %d", len(decoded), len(whole))
	}
	worst := 0
	for i := range whole {
		worst = max(worst, abs(int(decoded[i])-int(whole[i])))
	}
	if worst > 32768/100 { // 1% of full scale
		t.Errorf("the files' audio differs from the stream's by up to %d", worst)
	}
	t.Logf("%d files of at most %d bytes; they decode to %d samples as the whole stream does (written %d, less one pre-skip), differing by at most %d",
		len(files), limit, len(decoded), 500*frame, worst)
}

// decodeAll decodes packets with one decoder, as a player would a stream
// that was never split.
func decodeAll(t *testing.T, packets [][]byte) []int16 {
	pcm, err := audiotest.Decode(packets)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestWriteAllocatesNothing: Write copies into the ring and nothing
// else, whether it keeps the packet or drops it.
func TestWriteAllocatesNothing(t *testing.T) {
	r := NewRecorder(Options{Name: fixedName(filepath.Join(t.TempDir(), "x.opus")), SyncEvery: time.Hour})
	defer r.Close()
	p := tone(t, 1)[0]
	if allocs := testing.AllocsPerRun(100, func() { r.Write(p, frame) }); allocs != 0 {
		t.Errorf("Write allocated %.1f times", allocs)
	}
	for range ringSlots {
		r.Write(p, frame)
	}
	if allocs := testing.AllocsPerRun(100, func() { r.Write(p, frame) }); allocs != 0 {
		t.Errorf("Write to a full ring allocated %.1f times", allocs)
	}
}

// TestFullRingDropsInsteadOfBlocking: while the disk hangs, Write goes on
// returning at once; once the ring is full it drops packets and counts
// them, and what it kept is written when the disk comes back.
func TestFullRingDropsInsteadOfBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	hung, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := &hooks{beforeWrite: func(int64, []byte) (int, error) {
		once.Do(func() { close(hung); <-release })
		return 0, nil
	}}
	r := NewRecorder(Options{Name: fixedName(path), SyncEvery: 10 * time.Millisecond, openFile: h.open})
	packets := tone(t, 2+ringSlots+88)
	r.Write(packets[0], frame)
	r.Write(packets[1], frame) // the first can now be written: the disk hangs on it
	<-hung
	var slowest time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range packets[2:] {
			start := time.Now()
			r.Write(p, frame)
			slowest = max(slowest, time.Since(start))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked while the disk hung")
	}
	if got := r.Dropped(); got != 90 {
		t.Errorf("dropped %d packets, want the 90 beyond %d slots", got, ringSlots)
	}
	close(release)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := recorded(t, fixedName(path), true)
	if !slices.EqualFunc(got, packets[:ringSlots], bytes.Equal) {
		t.Errorf("the file holds %d packets, want the first %d", len(got), ringSlots)
	}
	t.Logf("%d writes while the disk hung, the slowest took %v", len(packets)-2, slowest)
}

// TestWriteFailureKeepsTheFileValid: writes that fail half-way (a full
// disk) are cut off the file again and retried; OnError hears of the run
// of failures once, Err clears when writing works again, and nothing is
// lost while the ring has room.
func TestWriteFailureKeepsTheFileValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	var writes, failures atomic.Int32
	h := &hooks{beforeWrite: func(_ int64, b []byte) (int, error) {
		if n := writes.Add(1); n >= 4 && n < 10 {
			failures.Add(1)
			return len(b) / 2, syscall.ENOSPC
		}
		return 0, nil
	}}
	var told []error
	var mu sync.Mutex
	onError := func(err error) { mu.Lock(); told = append(told, err); mu.Unlock() }
	r := NewRecorder(Options{Name: fixedName(path), SyncEvery: 10 * time.Millisecond, OnError: onError, openFile: h.open})
	packets := tone(t, 200)
	sawErr := false
	for i, p := range packets {
		r.Write(p, frame)
		if i%5 == 4 {
			time.Sleep(15 * time.Millisecond)
			sawErr = sawErr || errors.Is(r.Err(), syscall.ENOSPC)
		}
	}
	if err := r.Close(); err != nil || r.Dropped() != 0 {
		t.Fatalf("Close: %v, %d dropped", err, r.Dropped())
	}
	if failures.Load() != 6 || !sawErr {
		t.Fatalf("%d writes failed, Err told: %v; the test meant 6 to", failures.Load(), sawErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || !errors.Is(told[0], syscall.ENOSPC) {
		t.Errorf("OnError heard %v, want one ENOSPC", told)
	}
	got, _ := recorded(t, fixedName(path), true)
	if !slices.EqualFunc(got, packets, bytes.Equal) {
		t.Errorf("the file holds %d packets, want all %d", len(got), len(packets))
	}
	needOpusTools(t)
	opusinfo(t, path, false)
}

// TestCloseOnAFailedDisk: when the disk fails for good, Close reports it,
// the file stays valid up to its last good page, and every packet is
// either in it or counted as dropped.
func TestCloseOnAFailedDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	h := &hooks{beforeWrite: func(off int64, b []byte) (int, error) {
		if off > 2000 {
			return 7, syscall.EIO
		}
		return 0, nil
	}}
	r := NewRecorder(Options{Name: fixedName(path), SyncEvery: 10 * time.Millisecond, openFile: h.open})
	packets := tone(t, 100)
	for i, p := range packets {
		r.Write(p, frame)
		if i%10 == 9 {
			time.Sleep(15 * time.Millisecond)
		}
	}
	if err := r.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close: %v, want EIO", err)
	}
	got, _ := recorded(t, fixedName(path), false)
	if len(got)+int(r.Dropped()) != len(packets) || !slices.EqualFunc(got, packets[:len(got)], bytes.Equal) {
		t.Errorf("%d packets in the file and %d dropped, of %d", len(got), r.Dropped(), len(packets))
	}
	t.Logf("%d packets in the file, %d dropped", len(got), r.Dropped())
}

// TestDiskFull fills a real (tmpfs) file system during a recording, then
// frees it: the recording goes on in the same file, valid throughout, and
// every packet is in it or counted as dropped. Needs root to mount.
func TestDiskFull(t *testing.T) {
	dir := fulldisk.Mount(t, 1<<20)
	var failing atomic.Bool
	r := NewRecorder(Options{Name: seqNames(dir), SyncEvery: 10 * time.Millisecond,
		OnError: func(err error) { failing.Store(errors.Is(err, syscall.ENOSPC)) }})
	packets := tone(t, 1000)
	feed := func(ps [][]byte) {
		for i, p := range ps {
			r.Write(p, frame)
			if i%10 == 9 {
				time.Sleep(10 * time.Millisecond) // 5 times the real pace
			}
		}
	}
	feed(packets[:100])
	free := fulldisk.Fill(t, dir)
	feed(packets[100:800])
	if !failing.Load() {
		t.Fatalf("no ENOSPC reported with the disk full (%d bytes free)", fulldisk.Avail(t, dir))
	}
	free()
	feed(packets[800:])
	if err := r.Close(); err != nil {
		t.Fatalf("Close after the disk was freed: %v", err)
	}
	got, files := recorded(t, seqNames(dir), true)
	if len(got)+int(r.Dropped()) != len(packets) {
		t.Errorf("%d packets in %d files and %d dropped, of %d", len(got), len(files), r.Dropped(), len(packets))
	}
	t.Logf("disk full for 700 packets: %d packets in %d file(s), %d dropped", len(got), len(files), r.Dropped())
	needOpusTools(t)
	for seq := range files {
		opusinfo(t, seqNames(dir)(seq), false)
	}
}

// TestBadPacketsAreDropped: Write refuses what would make a file
// players reject (an empty packet, one over 1275 bytes, a duration that
// is not the packet's) and counts it.
func TestBadPacketsAreDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	r := NewRecorder(Options{Name: fixedName(path)})
	good := tone(t, 3)
	r.Write(good[0], frame)
	r.Write(nil, frame)
	r.Write(make([]byte, maxPacket+1), frame)
	r.Write(good[1], frame/2)
	r.Write(good[1], 0)
	r.Write(good[2], frame)
	if err := r.Close(); err != nil || r.Dropped() != 4 {
		t.Fatalf("Close: %v; %d dropped, want 4", err, r.Dropped())
	}
	r.Write(good[1], frame)
	if r.Dropped() != 5 {
		t.Errorf("a packet written after Close was not counted as dropped")
	}
	got, _ := recorded(t, fixedName(path), true)
	if !slices.EqualFunc(got, [][]byte{good[0], good[2]}, bytes.Equal) {
		t.Errorf("the file holds %d packets, want the 2 good ones", len(got))
	}
}

// TestCloseWhileWriting: Close may come while the producer is still
// writing (the tick stops only after it); every packet ends up in the
// file or counted, and the race detector sees no race.
func TestCloseWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	r := NewRecorder(Options{Name: fixedName(path), SyncEvery: 5 * time.Millisecond})
	packets := tone(t, 50)
	var stop atomic.Bool
	var written int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			r.Write(packets[written%len(packets)], frame)
			written++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	r.Close()
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	<-done
	got, _ := recorded(t, fixedName(path), true)
	if len(got)+int(r.Dropped()) != written {
		t.Errorf("%d packets in the file and %d dropped, of %d written", len(got), r.Dropped(), written)
	}
	t.Logf("%d written, %d in the file, %d dropped", written, len(got), r.Dropped())
}

// TestExistingFilesAreKept: a path that exists is never overwritten; the
// recorder says so and moves on to the next name.
func TestExistingFilesAreKept(t *testing.T) {
	dir := t.TempDir()
	name := seqNames(dir)
	if err := os.WriteFile(name(0), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	var told atomic.Int32
	r := NewRecorder(Options{Name: name, OnError: func(error) { told.Add(1) }})
	for _, p := range tone(t, 10) {
		r.Write(p, frame)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v (a later page was written, so Err should have cleared)", err)
	}
	if b, _ := os.ReadFile(name(0)); string(b) != "precious" || told.Load() != 1 {
		t.Errorf("the existing file holds %q; OnError told %d times", b, told.Load())
	}
	if _, err := readOpus(name(1), true); err != nil {
		t.Errorf("the recording: %v", err)
	}
}

// TestDefaultName: with no Name the recording goes to the current
// directory as recording-YYYYMMDD-HHMMSS-000.opus.
func TestDefaultName(t *testing.T) {
	t.Chdir(t.TempDir())
	r := NewRecorder(Options{})
	for _, p := range tone(t, 5) {
		r.Write(p, frame)
	}
	r.Close()
	names, _ := filepath.Glob("recording-*-000.opus")
	if len(names) != 1 || len(names[0]) != len("recording-20261124-030000-000.opus") {
		t.Fatalf("files %q", names)
	}
	if _, err := readOpus(names[0], true); err != nil {
		t.Error(err)
	}
}

// TestNoPacketsNoFile: a recording that never got a packet leaves no
// file; one packet makes a file of one audio page.
func TestNoPacketsNoFile(t *testing.T) {
	dir := t.TempDir()
	if err := NewRecorder(Options{Name: seqNames(dir)}).Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d files for a recording without packets", len(entries))
	}
	r := NewRecorder(Options{Name: seqNames(dir)})
	r.Write(tone(t, 1)[0], frame)
	r.Close()
	f, err := readOpus(seqNames(dir)(0), true)
	if err != nil || len(f.pages) != 3 {
		t.Fatalf("one packet: %v, %d pages", err, len(f.pages))
	}
	needOpusTools(t)
	opusinfo(t, seqNames(dir)(0), false)
}

// TestLongCommentsSpanPages: comments too long for one page make
// OpusTags span pages, which players read; a malformed comment is left
// out and reported.
func TestLongCommentsSpanPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.opus")
	long := "DESCRIPTION=" + strings.Repeat("minutes of the meeting ", 5000)
	var told atomic.Int32
	r := NewRecorder(Options{Name: fixedName(path), Comments: []string{"TITLE=Hall", long, "no name"}, PreSkip: 120,
		OnError: func(error) { told.Add(1) }})
	for _, p := range tone(t, 100) {
		r.Write(p, frame)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := readOpus(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if f.pages[1].ends != 0 || f.pages[2].ends != 1 || f.pages[2].flags != flagContinued ||
		!strings.Contains(string(f.packets[1]), long) || told.Load() != 1 {
		t.Errorf("OpusTags (%d bytes) should span pages 1 and 2, ending on 2; OnError told %d times",
			len(f.packets[1]), told.Load())
	}
	needOpusTools(t)
	info := opusinfo(t, path, false)
	if !strings.Contains(info, "Pre-skip: 120") || strings.Contains(info, "no name") {
		t.Errorf("opusinfo:\n%.500s", info)
	}
	if pcm := opusdec(t, path); len(pcm) != 100*frame-120 {
		t.Errorf("decoded %d samples, want %d", len(pcm), 100*frame-120)
	}
}

// TestPrerollKeepsTheNewestPackets: the pre-roll is the fewest newest
// packets that make up 200 ms, and no more than 64 packets however short.
func TestPrerollKeepsTheNewestPackets(t *testing.T) {
	var l lastPackets
	for i := range 100 {
		s := &slot{samples: frame, n: 1 + i%300}
		s.data[0] = byte(i)
		l.add(s)
	}
	if l.n != 10 || l.samples != prerollSamples || l.at(0).data[0] != 90 || l.at(9).data[0] != 99 {
		t.Errorf("after 100 packets of 20 ms: %d kept, %d samples, from packet %d to %d",
			l.n, l.samples, l.at(0).data[0], l.at(l.n - 1).data[0])
	}
	for range 100 {
		l.add(&slot{samples: 120, n: 300})
	}
	if l.n != maxPrerollPackets || l.samples != maxPrerollPackets*120 || l.bytes != 300*l.n || l.segs != 2*l.n {
		t.Errorf("after 2.5 ms packets: %d kept, %d samples, %d bytes, %d segments", l.n, l.samples, l.bytes, l.segs)
	}
}
