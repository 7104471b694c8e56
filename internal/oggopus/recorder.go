// Package oggopus writes Opus packets to Ogg Opus files (RFC 3533 pages,
// RFC 7845 mapping) for recordings: a Recorder takes packets from a
// real-time goroutine without blocking or allocating, and a goroutine of
// its own writes them out in pages, syncing to disk twice a second, so a
// crash loses at most the last half second.
package oggopus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure a Recorder.
type Options struct {
	// Name returns the path of the seq-th file (0, 1, ...) of the
	// recording. Directories are created as needed; files get mode 0600.
	Name func(seq int) string
	// MaxBytes starts a new file when the current one would grow past it;
	// 0 means no limit.
	MaxBytes int64
	// PreSkip is the encoder's delay in samples; 0 means DefaultPreSkip.
	PreSkip int
	// Comments go into the OpusTags header, e.g. "TITLE=Plenary".
	Comments []string
	// SyncEvery is how often written pages are synced to disk, and so the
	// most a crash can lose; 0 means half a second.
	SyncEvery time.Duration
	// OnError is told of every failure to create, write or sync a file
	// (from the recorder's goroutine). The recorder goes on: it retries
	// with a new file at the next flush, and packets that could not be
	// written are counted as dropped.
	OnError func(error)
}

// ringSlots is how many packets wait between flushes: ten seconds of 20 ms
// frames, so a disk that stalls for a few seconds loses nothing.
const ringSlots = 512

// maxPacket is the largest Opus packet (RFC 6716: 1275 bytes a frame).
const maxPacket = 1275

type slot struct {
	n       int
	samples int
	data    [maxPacket]byte
}

// A Recorder writes a stream of Opus packets to Ogg Opus files.
type Recorder struct {
	opts Options

	mu      sync.Mutex
	ring    []slot
	head, n int // oldest waiting packet and how many wait
	dropped uint64
	closed  bool

	wake chan struct{} // capacity 1: Close wants a last flush
	done chan struct{} // closed when the writer goroutine has ended

	// The writer goroutine's.
	file      *os.File
	seq       int    // files begun
	serial    uint32 // the current file's stream serial number
	pageSeq   uint32 // the sequence number of its next page
	lacing    []byte
	granule   int64 // samples written since the recording began
	fileStart int64 // granule when the current file began
	size      int64
	page      []byte
	batch     [][]byte
	hold      *slot // the newest packet, kept back for the final (EOS) page
	holdBuf   slot
}

// NewRecorder starts a recorder. Its first file is created with the first
// flush that has packets to write.
func NewRecorder(opts Options) *Recorder {
	if opts.PreSkip == 0 {
		opts.PreSkip = DefaultPreSkip
	}
	if opts.SyncEvery == 0 {
		opts.SyncEvery = 500 * time.Millisecond
	}
	if opts.OnError == nil {
		opts.OnError = func(error) {}
	}
	r := &Recorder{
		opts: opts,
		ring: make([]slot, ringSlots),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go r.run()
	return r
}

// Write queues one packet holding samples samples (at 48 kHz). It never
// blocks on the disk and allocates nothing; when the queue is full, or the
// recorder is closed, the packet is dropped and counted.
func (r *Recorder) Write(packet []byte, samples int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.n == len(r.ring) || len(packet) > maxPacket || len(packet) == 0 {
		r.dropped++
		return
	}
	s := &r.ring[(r.head+r.n)%len(r.ring)]
	s.n = copy(s.data[:], packet)
	s.samples = samples
	r.n++
}

// Dropped is the number of packets that were not recorded.
func (r *Recorder) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Close writes what waits, ends the file with an end-of-stream page,
// syncs and closes it, and waits for the recorder's goroutine to end.
// Packets written after Close are dropped.
func (r *Recorder) Close() {
	r.mu.Lock()
	already := r.closed
	r.closed = true
	r.mu.Unlock()
	if !already {
		r.wake <- struct{}{}
	}
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.opts.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.flush(false)
		case <-r.wake:
			r.flush(true)
			r.closeFile()
			return
		}
	}
}

// flush writes the waiting packets as pages and syncs the file. All but the
// newest are written; that one waits for the next flush, so that the last
// page of a file, which must carry the end-of-stream flag, is never empty.
func (r *Recorder) flush(final bool) {
	for {
		r.mu.Lock()
		n := r.n
		r.mu.Unlock()
		if n == 0 {
			break
		}
		r.writePackets(n, final)
	}
	if final && r.hold != nil {
		g := r.granule + int64(r.hold.samples)
		r.writePage(g, [][]byte{r.hold.data[:r.hold.n]}, true)
		r.granule, r.hold = g, nil
	}
	if r.file != nil {
		if err := r.file.Sync(); err != nil {
			r.opts.OnError(fmt.Errorf("recording: sync %s: %w", r.file.Name(), err))
		}
	}
}

// writePackets writes up to n waiting packets in pages of at most one
// second (and 255 lacing values).
func (r *Recorder) writePackets(n int, final bool) {
	for n > 0 {
		r.batch = r.batch[:0]
		segs, samples, granule := 0, 0, r.granule
		if r.hold != nil {
			r.batch = append(r.batch, r.hold.data[:r.hold.n])
			segs += segmentCount(r.hold.n)
			granule += int64(r.hold.samples)
			samples += r.hold.samples
		}
		r.mu.Lock()
		var taken int
		for taken < n && samples < SampleRate {
			s := &r.ring[(r.head+taken)%len(r.ring)]
			if segs+segmentCount(s.n) > maxSegments {
				break
			}
			segs += segmentCount(s.n)
			samples += s.samples
			taken++
		}
		first := r.head
		r.mu.Unlock()
		if taken == 0 {
			return // cannot happen: a page always has room for two packets
		}
		// The slots taken stay untouched until head moves past them.
		for i := range taken {
			s := &r.ring[(first+i)%len(r.ring)]
			r.batch = append(r.batch, s.data[:s.n])
		}
		last := &r.ring[(first+taken-1)%len(r.ring)]
		keepBack := !final || taken < n
		if keepBack && taken > 0 {
			// Hold the newest packet back for the next page.
			r.batch = r.batch[:len(r.batch)-1]
			samples -= last.samples
		}
		granule = r.granule + int64(samples)
		if len(r.batch) > 0 {
			r.writePage(granule, r.batch, final && !keepBack)
		}
		r.granule = granule
		if keepBack && taken > 0 {
			r.holdBuf.n = copy(r.holdBuf.data[:], last.data[:last.n])
			r.holdBuf.samples = last.samples
			r.hold = &r.holdBuf
		} else {
			r.hold = nil
		}
		r.mu.Lock()
		r.head = (r.head + taken) % len(r.ring)
		r.n -= taken
		r.mu.Unlock()
		n -= taken
	}
}

// writePage writes one audio page, starting a file first if none is open.
// A page that takes the file past MaxBytes ends it (the limit is passed by
// at most one page, about a second), and the next page begins a new one.
func (r *Recorder) writePage(granule int64, packets [][]byte, eos bool) {
	if r.file == nil && !r.openFile() {
		r.countDropped(len(packets))
		return
	}
	full := r.opts.MaxBytes > 0 && r.size+int64(packetsSize(packets)) > r.opts.MaxBytes
	flags := byte(0)
	if eos || full {
		flags = flagEOS
	}
	r.page = r.appendAudioPage(r.page[:0], flags, granule-r.fileStart, packets)
	if _, err := r.file.Write(r.page); err != nil {
		r.opts.OnError(fmt.Errorf("recording: write %s: %w", r.file.Name(), err))
		r.countDropped(len(packets))
		r.abandonFile()
		return
	}
	r.size += int64(len(r.page))
	if full && !eos {
		r.closeFile()
	}
}

// openFile begins the next file with its two header pages.
func (r *Recorder) openFile() bool {
	name := r.opts.Name(r.seq)
	r.seq++
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		r.opts.OnError(fmt.Errorf("recording: %w", err))
		return false
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		r.opts.OnError(fmt.Errorf("recording: %w", err))
		return false
	}
	r.serial, r.pageSeq = rand.Uint32(), 0
	r.page = appendPacketPages(r.page[:0], r.serial, &r.pageSeq, opusHead(r.opts.PreSkip), flagBOS, 0)
	r.page = appendPacketPages(r.page, r.serial, &r.pageSeq, opusTags(Vendor, r.opts.Comments), 0, 0)
	if _, err := f.Write(r.page); err != nil {
		f.Close()
		r.opts.OnError(fmt.Errorf("recording: write %s: %w", name, err))
		return false
	}
	r.file, r.size, r.fileStart = f, int64(len(r.page)), r.granule
	return true
}

// closeFile syncs and closes the current file, whose last page carries
// the end-of-stream flag.
func (r *Recorder) closeFile() {
	if r.file == nil {
		return
	}
	err := errors.Join(r.file.Sync(), r.file.Close())
	if err != nil {
		r.opts.OnError(fmt.Errorf("recording: close %s: %w", r.file.Name(), err))
	}
	r.file = nil
}

// abandonFile closes a file that failed; the next page starts a new one.
func (r *Recorder) abandonFile() {
	r.file.Close()
	r.file = nil
}

// appendAudioPage appends the next page of the file, holding whole
// packets.
func (r *Recorder) appendAudioPage(dst []byte, flags byte, granule int64, packets [][]byte) []byte {
	r.lacing = r.lacing[:0]
	for _, p := range packets {
		r.lacing = appendLacing(r.lacing, len(p))
	}
	h := pageHeader{flags: flags, granule: granule, serial: r.serial, seq: r.pageSeq}
	r.pageSeq++
	return appendPage(dst, h, r.lacing, packets...)
}

func packetsSize(packets [][]byte) int {
	body, segs := 0, 0
	for _, p := range packets {
		body, segs = body+len(p), segs+segmentCount(len(p))
	}
	return pageSize(body, segs)
}

func (r *Recorder) countDropped(n int) {
	r.mu.Lock()
	r.dropped += uint64(n)
	r.mu.Unlock()
}
