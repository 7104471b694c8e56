// Package oggopus records a stream of Opus packets to Ogg Opus files: Ogg
// pages as RFC 3533 lays them out, carrying Opus as RFC 7845 maps it.
//
// A Recorder is fed from a real-time goroutine (the server's voice tick)
// that must never wait for a disk, so Write only copies the packet into a
// ring allocated up front and returns; when the ring is full the packet is
// dropped and counted. A goroutine of the Recorder's own turns the waiting
// packets into pages, appends them to the file and syncs it, twice a
// second by default. Each page is written whole in one call, so a process
// that dies (kill -9, a crash) leaves a valid Ogg Opus file that players
// read up to its last page, and a power cut one up to its last sync: at
// most half a second is lost, and the newest packet, which always waits
// for the next page so that at Close the last page has a packet to carry
// the end-of-stream flag. Files carry the Opus stream as RFC 7845 wants:
// OpusHead alone on the first page, OpusTags on the next, granule
// positions counting 48 kHz samples from the start of each file, pre-skip
// included.
package oggopus

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Recorder. The zero value is usable: it records into
// the current directory without a size limit.
type Options struct {
	// Name returns the path of the seq-th file (seq 0, 1, 2, ...) of the
	// recording. A new file begins when the current one reaches MaxBytes
	// or could not be written to. Its directory is created (mode 0700) if
	// needed; the file is created with mode 0600 and never overwrites
	// anything: a path that exists is reported and the next seq is tried,
	// so each seq must give a path of its own. The default is
	// recording-YYYYMMDD-HHMMSS-NNN.opus in the current directory, with
	// the time the recorder was made, in UTC, and NNN the seq.
	Name func(seq int) string

	// MaxBytes limits the size of each file; 0 means no limit. The page
	// that would take a file past it is not written there: the file ends
	// with an end-of-stream page and the recording goes on in the next
	// file, which starts afresh with its own headers and granule
	// positions (and 200 ms of pre-roll, see PreSkip). A file always gets
	// its headers, pre-roll and at least one packet, so a limit below
	// that (about 2.5 kB at 40 kbit/s) is exceeded by what they need.
	MaxBytes int64

	// PreSkip is the number of samples (at 48 kHz) a player drops from the
	// start of each file: the encoder's lookahead. 0 (or a value that does
	// not fit the header's 16 bits) means DefaultPreSkip, libopus's at 48
	// kHz. It is the first file's: each file after it begins with the last
	// 200 ms of the one before again, and has them as its pre-skip, so
	// that a player's fresh decoder has settled when the new audio begins
	// and the files play on from one another without a gap or a glitch.
	PreSkip int

	// Comments go into each file's OpusTags header as NAME=value, such as
	// "TITLE=Plenary" or "DATE=2026-11-24T03:00:00Z". A comment with no
	// '=' or a name outside ASCII 0x20 to 0x7D is left out and reported
	// to OnError.
	Comments []string

	// SyncEvery is how often the waiting packets are written out as pages
	// and the file is synced to disk, and so the most audio a crash can
	// lose; 0 means half a second. Pages never hold more than a second of
	// audio whatever it is.
	SyncEvery time.Duration

	// OnError is told, from the recorder's goroutine, when creating,
	// writing or syncing a file fails; a failure that goes on is told
	// again at most once a minute. The recorder does not stop: a page
	// that could not be written is cut off the file again, so the file
	// stays valid, and its packets wait in the ring to be tried again at
	// the next sync (new packets are dropped while the ring is full). A
	// file that cannot be cut back or synced is closed as it is and the
	// recording goes on in the next file. Err tells whether the recorder
	// is failing now. Nil means failures are only told by Err.
	OnError func(error)

	// openFile creates a file for writing; tests replace it to slow the
	// disk down or make it fail.
	openFile func(name string) (file, error)
}

// file is what a Recorder needs of an *os.File.
type file interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Tuning of the recorder.
const (
	// ringSlots is how many packets can wait for the recorder's goroutine:
	// ten seconds of 20 ms packets, so a disk that stalls for a few seconds
	// costs nothing. It takes 650 kB.
	ringSlots = 512
	// defaultSyncEvery bounds what a crash loses.
	defaultSyncEvery = 500 * time.Millisecond
	// maxPageSamples is the most audio on one page: a second, so a player
	// seeking in the file, or a crash cutting it, never has far to go.
	maxPageSamples = SampleRate
	// errorRepeat is how often a failure that goes on is told again.
	errorRepeat = time.Minute
	// maxNameSkips bounds how many existing paths one attempt to start a
	// file passes over.
	maxNameSkips = 100
)

// A Recorder writes a stream of Opus packets, 48 kHz mono, to Ogg Opus
// files. Write is for one goroutine at a time (the one producing the
// audio); Close, Dropped and Err may be called from anywhere, also while
// Write runs.
type Recorder struct {
	opts       Options
	comments   []string // Options.Comments that are well formed
	commentErr error    // what was wrong with the others
	headerLen  int64    // bytes of the header pages each file begins with
	q          *ring
	dropped    atomic.Uint64
	closed     atomic.Bool
	writers    atomic.Int32 // Write calls under way: Close waits for them
	closeOnce  sync.Once
	stop       chan struct{} // closed by Close: write what is left and end
	done       chan struct{} // closed when the goroutine has ended

	errMu sync.Mutex
	err   error // the current failure, nil once a page was written again

	out output // the goroutine's own
}

// output is the state of the recorder's goroutine: the file being
// written and where it stands.
type output struct {
	f        file // nil between files
	name     string
	seq      int    // the seq of the next file to begin
	serial   uint32 // the current file's stream serial number
	pageSeq  uint32 // the sequence number of its next page
	size     int64  // bytes of whole pages written to it
	granule  int64  // samples in its audio pages so far
	unsynced bool   // pages were written since the last sync
	failing  bool   // the last attempt failed
	reported time.Time
	page     []byte // the page being built, reused
	lacing   []byte
	batch    [][]byte
	last     lastPackets // the end of the audio so far, for the next file
}

// NewRecorder starts a recorder and its goroutine; the first file is
// created when the first page is written, half a second after the first
// packet. Close must be called to end the goroutine and the file.
func NewRecorder(opts Options) *Recorder {
	if opts.Name == nil {
		start := time.Now().UTC().Format("20060102-150405")
		opts.Name = func(seq int) string { return fmt.Sprintf("recording-%s-%03d.opus", start, seq) }
	}
	if opts.PreSkip <= 0 || opts.PreSkip > math.MaxUint16 {
		opts.PreSkip = DefaultPreSkip
	}
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = defaultSyncEvery
	}
	if opts.OnError == nil {
		opts.OnError = func(error) {}
	}
	if opts.openFile == nil {
		opts.openFile = createFile
	}
	r := &Recorder{
		opts: opts,
		q:    newRing(ringSlots),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	r.comments, r.commentErr = checkComments(opts.Comments)
	headers, _ := r.headers(0, r.opts.PreSkip)
	r.headerLen = int64(len(headers))
	go r.run()
	return r
}

// createFile creates a new file, failing if the path exists.
func createFile(name string) (file, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// Write queues one packet lasting samples samples at 48 kHz. It never
// blocks and allocates nothing: it copies the packet into the ring and
// returns. The packet is dropped, and counted by Dropped, when the ring is
// full (the disk has fallen ten seconds behind), when the recorder is
// closed, or when the packet is not one Opus packet of at most 1275 bytes
// whose TOC says it lasts samples.
func (r *Recorder) Write(packet []byte, samples int) {
	r.writers.Add(1)
	defer r.writers.Add(-1)
	if r.closed.Load() || len(packet) > maxPacket || packetSamples(packet) != samples ||
		samples == 0 || !r.q.push(packet, samples) {
		r.dropped.Add(1)
	}
}

// Dropped is the number of packets that are not in the files: refused by
// Write, or lost because the disk failed until Close.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Err returns the last failure to create, write or sync a file, or nil if
// a page has been written since (or nothing ever failed).
func (r *Recorder) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Close writes out every waiting packet, ends the file with an
// end-of-stream page, syncs and closes it, and waits for the recorder's
// goroutine to end; being disk I/O, that is for a goroutine that may
// wait. It returns Err: nil if the recording ended well. Packets written
// during or after Close are dropped; calling Close again only returns
// Err.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		// A Write that began before closed was set may still be pushing;
		// it returns within microseconds.
		for r.writers.Load() != 0 {
			runtime.Gosched()
		}
		close(r.stop)
	})
	<-r.done
	return r.Err()
}

// run is the recorder's goroutine: every SyncEvery it writes what waits
// and syncs; at Close it writes the rest, ends the file and returns.
func (r *Recorder) run() {
	defer close(r.done)
	if err := r.commentErr; err != nil {
		r.opts.OnError(err)
	}
	tick := time.NewTicker(r.opts.SyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.drain(false)
			r.sync()
		case <-r.stop:
			r.drain(true)
			r.finish()
			return
		}
	}
}

// drain writes the waiting packets as pages. Unless final it leaves the
// newest packet waiting: the last page of a file must carry the
// end-of-stream flag, and so at Close there is always a packet left to
// put on it. It stops at the first page that fails; its packets wait for
// the next try.
func (r *Recorder) drain(final bool) {
	for {
		head, n := r.q.waiting()
		avail := n
		if !final {
			avail--
		}
		if avail <= 0 {
			return
		}
		k, eos := r.nextPage(head, avail, n, final)
		if !r.writePage(head, k, eos) {
			return
		}
		r.q.free(k)
	}
}

// nextPage decides the next page: how many of the avail packets from head
// on it holds, and whether it ends the file (it is the last page at Close,
// or the packet after it would take the file past MaxBytes). n is how
// many packets wait in all.
func (r *Recorder) nextPage(head uint64, avail, n int, final bool) (k int, eos bool) {
	size := r.out.size
	if r.out.f == nil { // a file yet to begin: its headers and pre-roll
		size = r.headerLen
		if l := &r.out.last; l.n > 0 {
			size += int64(pageSize(l.bytes, l.segs))
		}
	}
	budget := int64(math.MaxInt64)
	if r.opts.MaxBytes > 0 {
		budget = r.opts.MaxBytes - size
	}
	body, segs, samples := 0, 0, 0
	for ; k < avail; k++ {
		s := r.q.at(head + uint64(k))
		sg := segmentCount(s.n)
		full := segs+sg > maxSegments || samples+s.samples > maxPageSamples ||
			int64(pageSize(body+s.n, segs+sg)) > budget
		if k > 0 && full {
			break
		}
		body, segs, samples = body+s.n, segs+sg, samples+s.samples
	}
	eos = final && k == n
	if r.opts.MaxBytes > 0 && k < n {
		next := r.q.at(head + uint64(k))
		after := size + int64(pageSize(body, segs)) + int64(pageSize(next.n, segmentCount(next.n)))
		eos = eos || after > r.opts.MaxBytes
	}
	return k, eos
}

// writePage writes the k packets from head on as one audio page, which
// ends the file if eos, beginning a file first if none is open. It
// reports whether the page was written.
func (r *Recorder) writePage(head uint64, k int, eos bool) bool {
	if r.out.f == nil && !r.begin() {
		return false
	}
	o := &r.out
	o.batch, o.lacing = o.batch[:0], o.lacing[:0]
	granule := o.granule
	for i := range k {
		s := r.q.at(head + uint64(i))
		o.batch = append(o.batch, s.packet())
		o.lacing = appendLacing(o.lacing, s.n)
		granule += int64(s.samples)
	}
	h := pageHeader{serial: o.serial, seq: o.pageSeq, granule: granule}
	if eos {
		h.flags = flagEOS
	}
	o.page = appendPage(o.page[:0], h, o.lacing, o.batch...)
	if err := r.writeOut(o.page); err != nil {
		r.fail(err)
		return false
	}
	o.pageSeq++
	o.granule = granule
	for i := range k {
		o.last.add(r.q.at(head + uint64(i)))
	}
	r.succeed()
	if eos {
		r.endFile()
	}
	return true
}

// writeOut adds whole pages to the file. If they cannot all be written, the
// file is cut back to where it was, so that it never ends in part of a
// page; if even that fails, the file is given up as it is.
func (r *Recorder) writeOut(pages []byte) error {
	o := &r.out
	_, err := o.f.WriteAt(pages, o.size)
	if err == nil {
		o.size += int64(len(pages))
		o.unsynced = true
		return nil
	}
	err = fmt.Errorf("recording: write %s: %w", o.name, err)
	if terr := o.f.Truncate(o.size); terr != nil {
		err = fmt.Errorf("%w; cutting it back failed too (%v), so it ends there and the recording goes on in a new file", err, terr)
		r.abandon()
	}
	return err
}

// begin creates the next file and writes its header pages: OpusHead alone
// on the first page, then OpusTags, on pages of their own as RFC 7845
// wants. A file after the first then repeats the last 200 ms of the one
// before on a page of their own, and its pre-skip is what they last, so
// that it plays on from where that one stopped. A file whose first pages
// could not be written is removed again, so that failing attempts leave
// nothing behind.
func (r *Recorder) begin() bool {
	o := &r.out
	f, name, err := r.create()
	if err != nil {
		r.fail(err)
		return false
	}
	serial := rand.Uint32()
	preSkip := r.opts.PreSkip
	if o.last.n > 0 {
		preSkip = o.last.samples
	}
	headers, pageSeq := r.headers(serial, preSkip)
	o.page = append(o.page[:0], headers...)
	granule := int64(0)
	if o.last.n > 0 {
		o.page, granule = r.appendPreroll(o.page, pageHeader{serial: serial, seq: pageSeq})
		pageSeq++
	}
	if _, err := f.WriteAt(o.page, 0); err != nil {
		f.Close()
		os.Remove(name)
		r.fail(fmt.Errorf("recording: write %s: %w", name, err))
		return false
	}
	o.f, o.name, o.seq, o.serial, o.pageSeq = f, name, o.seq+1, serial, pageSeq
	o.size, o.granule, o.unsynced = int64(len(o.page)), granule, true
	return true
}

// appendPreroll appends a page of the packets kept from the end of the
// previous file and returns its granule position.
func (r *Recorder) appendPreroll(dst []byte, h pageHeader) ([]byte, int64) {
	o := &r.out
	o.batch, o.lacing = o.batch[:0], o.lacing[:0]
	for i := range o.last.n {
		s := o.last.at(i)
		o.batch = append(o.batch, s.packet())
		o.lacing = appendLacing(o.lacing, s.n)
	}
	h.granule = int64(o.last.samples)
	return appendPage(dst, h, o.lacing, o.batch...), h.granule
}

// create makes the directory if needed and creates the file of the next
// seq, passing over paths that exist.
func (r *Recorder) create() (file, string, error) {
	for range maxNameSkips {
		name := r.opts.Name(r.out.seq)
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			return nil, name, fmt.Errorf("recording: %w", err)
		}
		f, err := r.opts.openFile(name)
		if errors.Is(err, fs.ErrExist) {
			r.fail(fmt.Errorf("recording: %s exists; trying the next name", name))
			r.out.seq++
			continue
		}
		if err != nil {
			return nil, name, fmt.Errorf("recording: %w", err)
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("recording: %d file names in a row exist", maxNameSkips)
}

// headers returns the header pages of a file with the given serial and
// pre-skip, and the sequence number of the page after them: OpusTags
// takes more than one page when the comments are long.
func (r *Recorder) headers(serial uint32, preSkip int) ([]byte, uint32) {
	var seq uint32
	b := appendPacketPages(nil, serial, &seq, opusHead(preSkip), flagBOS, 0)
	return appendPacketPages(b, serial, &seq, opusTags(Vendor, r.comments), 0, 0), seq
}

// sync makes the pages written since the last sync durable. A file whose
// sync failed may have lost pages the kernel could not write, and a later
// sync would not say so; it is closed as it is and the recording goes on
// in the next file.
func (r *Recorder) sync() {
	o := &r.out
	if o.f == nil || !o.unsynced {
		return
	}
	if err := o.f.Sync(); err != nil {
		r.fail(fmt.Errorf("recording: sync %s: %w; going on in a new file", o.name, err))
		r.abandon()
		return
	}
	o.unsynced = false
}

// endFile syncs and closes a file whose end-of-stream page is written.
func (r *Recorder) endFile() {
	o := &r.out
	if err := errors.Join(o.f.Sync(), o.f.Close()); err != nil {
		r.fail(fmt.Errorf("recording: close %s: %w", o.name, err))
	}
	o.f = nil
}

// abandon closes a file that failed; the next page begins a new one.
func (r *Recorder) abandon() {
	r.out.f.Close()
	r.out.f = nil
}

// finish ends the recording after the last drain. If a file is still open
// its end-of-stream page could not be written: it is synced and closed
// valid but unfinished. Packets still waiting are lost, and counted.
func (r *Recorder) finish() {
	if r.out.f != nil {
		r.endFile()
	}
	if _, n := r.q.waiting(); n > 0 {
		r.dropped.Add(uint64(n))
		r.q.free(n)
	}
}

// fail records a failure and tells OnError, unless the same run of
// failures was told less than errorRepeat ago.
func (r *Recorder) fail(err error) {
	r.errMu.Lock()
	r.err = err
	r.errMu.Unlock()
	o := &r.out
	now := time.Now()
	if o.failing && now.Sub(o.reported) < errorRepeat {
		return
	}
	o.failing, o.reported = true, now
	r.opts.OnError(err)
}

// succeed ends a run of failures.
func (r *Recorder) succeed() {
	if !r.out.failing {
		return
	}
	r.out.failing = false
	r.errMu.Lock()
	r.err = nil
	r.errMu.Unlock()
}
