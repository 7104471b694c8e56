//go:build linux

package netdelay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxQueued is how many packets the kernel holds for a Delayer; beyond
// it the kernel drops them, as netem does beyond its limit. At 20 ms it
// allows some 400,000 packets a second.
const MaxQueued = 8192

const (
	initialRcvBuf = 1 << 20
	maxRcvBuf     = 64 << 20
	ackTimeout    = 5 * time.Second
	// verdictsPerSend bounds the verdicts written with one system call.
	verdictsPerSend = 256
)

// A Delayer holds the packets of one netfilter queue for a fixed delay,
// dropping a share of them. It runs two goroutines: a reader, which
// receives the queued packets, drops its share and hands the others on,
// and a releaser, which accepts each when its delay is up. Close stops
// both.
type Delayer struct {
	queue       uint16
	delay       time.Duration
	dropPercent float64

	file *os.File
	conn syscall.RawConn
	held chan heldPacket // reader to releaser, in arrival order; closed by the reader
	acks chan message    // acknowledgements of config requests, reader to configure
	seq  atomic.Uint32   // of config requests; verdicts use 0
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	accepted, dropped, overruns, errs atomic.Uint64
	mu                                sync.Mutex
	firstErr                          error
}

type heldPacket struct {
	id  uint32
	due time.Time
}

// Stats counts what a Delayer did.
type Stats struct {
	Accepted uint64 // packets accepted after the delay (or by Close)
	Dropped  uint64 // packets dropped as the drop share
	// Overruns counts the times the socket's receive buffer was full
	// (ENOBUFS); the kernel dropped the packets it could not pass on.
	// Each one doubles the buffer, up to 64 MiB.
	Overruns uint64
	Errors   uint64 // malformed messages, refused verdicts, failed reads or writes
}

// Start binds netfilter queue queue in the network namespace at
// netnsPath (a file such as /run/netns/NAME, or "" for the caller's own)
// and delays every packet queued to it by delay, dropping dropPercent
// percent of them (0 to 100) instead. It needs CAP_NET_ADMIN there, and
// fails if another socket has bound the queue.
//
// The packets come from an nftables rule such as
//
//	oifname "veth0" queue num 3 bypass
//
// where bypass lets packets pass while no Delayer is bound (without it
// the kernel drops them).
func Start(netnsPath string, queue uint16, delay time.Duration, dropPercent float64) (*Delayer, error) {
	if delay < 0 {
		return nil, fmt.Errorf("netdelay: negative delay %v", delay)
	}
	if !(dropPercent >= 0 && dropPercent <= 100) {
		return nil, fmt.Errorf("netdelay: drop share %v%% is not between 0 and 100", dropPercent)
	}
	fd, err := socketIn(netnsPath)
	if err != nil {
		return nil, err
	}
	setRcvBuf(fd, initialRcvBuf)
	d := &Delayer{
		queue: queue, delay: delay, dropPercent: dropPercent,
		file: os.NewFile(uintptr(fd), "nfqueue"),
		held: make(chan heldPacket, 256),
		acks: make(chan message, 4),
	}
	if d.conn, err = d.file.SyscallConn(); err == nil {
		// The reader is stopped with a deadline, which needs the poller.
		err = d.file.SetReadDeadline(time.Time{})
	}
	if err != nil {
		d.file.Close()
		return nil, fmt.Errorf("netdelay: netlink socket: %w", err)
	}
	d.wg.Add(2)
	go d.read()
	go d.release()
	// GSO off: the kernel cuts an offloaded super-packet into the
	// datagrams it stands for before it queues them, so the drop share
	// is of datagrams on the wire, as a network loses them, not of
	// batches of them.
	if err := d.configure(queueConfig{bind: true, maxLen: MaxQueued}); err != nil {
		d.stop()
		return nil, fmt.Errorf("netdelay: binding queue %d: %w", queue, err)
	}
	return d, nil
}

// Close lets new packets pass at once, accepts the packets it holds,
// stops its goroutines and releases the queue. It waits for all of this.
func (d *Delayer) Close() error {
	d.closeOnce.Do(func() {
		// A queue of length 0 is always full, and a full fail-open queue
		// accepts: no packet waits for the reader while it stops.
		if err := d.configure(queueConfig{maxLen: 0, flags: flagFailOpen}); err != nil {
			d.closeErr = fmt.Errorf("netdelay: opening queue %d: %w", d.queue, err)
		}
		d.stop()
	})
	return d.closeErr
}

// stop ends the reader with a deadline in the past; it closes held, which
// makes the releaser accept what it holds and end.
func (d *Delayer) stop() {
	d.file.SetReadDeadline(time.Unix(1, 0))
	d.wg.Wait()
	d.file.Close()
}

// Stats returns the counts so far.
func (d *Delayer) Stats() Stats {
	return Stats{Accepted: d.accepted.Load(), Dropped: d.dropped.Load(), Overruns: d.overruns.Load(), Errors: d.errs.Load()}
}

// Err returns the first error the goroutines met, or nil.
func (d *Delayer) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.firstErr
}

func (d *Delayer) fail(err error) {
	d.errs.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firstErr == nil {
		d.firstErr = err
	}
}

// configure sends a config request and waits for the kernel's answer,
// which the reader passes on.
func (d *Delayer) configure(c queueConfig) error {
	seq := d.seq.Add(1)
	if err := d.send(appendConfig(nil, seq, d.queue, c)); err != nil {
		return err
	}
	timeout := time.After(ackTimeout)
	for {
		select {
		case m := <-d.acks:
			if m.seq != seq { // the late answer to an earlier request
				continue
			}
			if m.errno != 0 {
				return m.errno
			}
			return nil
		case <-timeout:
			return errors.New("no answer from the kernel")
		}
	}
}

func (d *Delayer) send(b []byte) error {
	var werr error
	err := d.conn.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// recv reads one datagram, waiting in the poller.
func (d *Delayer) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := d.conn.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// read is the reader goroutine.
func (d *Delayer) read() {
	defer d.wg.Done()
	defer close(d.held)
	buf := make([]byte, 1<<16)
	rcvbuf := initialRcvBuf
	for {
		n, err := d.recv(buf)
		switch {
		case err == nil:
			d.handle(buf[:n])
		case errors.Is(err, unix.ENOBUFS):
			d.overruns.Add(1)
			rcvbuf = min(2*rcvbuf, maxRcvBuf)
			d.conn.Control(func(fd uintptr) { setRcvBuf(int(fd), rcvbuf) })
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, os.ErrClosed):
			d.drain(buf)
			return
		default:
			d.fail(fmt.Errorf("netdelay: reading queue %d: %w", d.queue, err))
			time.Sleep(10 * time.Millisecond) // not a busy loop if it persists
		}
	}
}

// drain handles what is left in the socket once the reader is stopped:
// packets the kernel queued before Close opened the queue.
func (d *Delayer) drain(buf []byte) {
	d.conn.Control(func(fd uintptr) {
		for {
			n, err := unix.Read(int(fd), buf)
			if err == unix.ENOBUFS || err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			d.handle(buf[:n])
		}
	})
}

// handle takes one datagram from the kernel.
func (d *Delayer) handle(b []byte) {
	err := parseMessages(b, func(m message) {
		switch {
		case m.packet:
			d.take(m.id)
		case m.seq != 0:
			select {
			case d.acks <- m:
			default: // nobody waits for it any more
			}
		case m.errno != 0:
			d.fail(fmt.Errorf("netdelay: a verdict on queue %d refused: %w", d.queue, m.errno))
		}
	})
	if err != nil {
		d.fail(err)
	}
}

// take drops packet id or hands it to the releaser.
func (d *Delayer) take(id uint32) {
	if d.dropPercent > 0 && rand.Float64()*100 < d.dropPercent {
		if err := d.send(appendVerdict(make([]byte, 0, verdictLen), d.queue, id, verdictDrop)); err != nil {
			d.fail(fmt.Errorf("netdelay: dropping on queue %d: %w", d.queue, err))
			return
		}
		d.dropped.Add(1)
		return
	}
	d.held <- heldPacket{id: id, due: time.Now().Add(d.delay)}
}

// release is the releaser goroutine. The delay is the same for every
// packet, so the packets fall due in the order they came: a FIFO and one
// timer for its head are enough.
func (d *Delayer) release() {
	defer d.wg.Done()
	var fifo []heldPacket
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	out := make([]byte, 0, verdictsPerSend*verdictLen)
	for {
		var due <-chan time.Time
		if len(fifo) > 0 {
			timer.Reset(time.Until(fifo[0].due))
			due = timer.C
		}
		select {
		case p, ok := <-d.held:
			if !ok {
				d.accept(fifo, out)
				return
			}
			fifo = append(fifo, p)
		case <-due:
			now, n := time.Now(), 0
			for n < len(fifo) && !fifo[n].due.After(now) {
				n++
			}
			d.accept(fifo[:n], out)
			fifo = fifo[:copy(fifo, fifo[n:])]
		}
	}
}

// accept sends the accept verdicts for pkts, several to a system call.
func (d *Delayer) accept(pkts []heldPacket, out []byte) {
	for len(pkts) > 0 {
		k := min(len(pkts), verdictsPerSend)
		out = out[:0]
		for _, p := range pkts[:k] {
			out = appendVerdict(out, d.queue, p.id, verdictAccept)
		}
		if err := d.send(out); err != nil {
			d.fail(fmt.Errorf("netdelay: accepting on queue %d: %w", d.queue, err))
		} else {
			d.accepted.Add(uint64(k))
		}
		pkts = pkts[k:]
	}
}

// setRcvBuf sets the socket's receive buffer, past the system's limit
// where the caller may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
func setRcvBuf(fd, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}
