//go:build !linux

package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// A Conn is one UDP socket. On this system it reads and writes one
// datagram per system call. Several goroutines may write to a Conn at
// once; one at a time may read.
type Conn struct {
	uc     *net.UDPConn
	failed atomic.Uint64
}

// Listen opens one UDP socket on addr, whatever n is: only Linux spreads
// the datagrams of one port over several sockets. It fails if the socket
// cannot be opened. Options it could not set are returned as warnings:
// arrival times always, and segmentation offload when asked for.
func Listen(addr string, n int, opts Options) (conns []*Conn, warnings []*OptionError, err error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen udp: %w", err)
	}
	c := &Conn{uc: pc.(*net.UDPConn)}
	if opts.ReadBuffer > 0 {
		if err := c.uc.SetReadBuffer(opts.ReadBuffer); err != nil {
			warnings = append(warnings, &OptionError{"SO_RCVBUF", err, "bursts may overflow the smaller buffer"})
		}
	}
	warnings = append(warnings, &OptionError{"SO_TIMESTAMPNS", errors.ErrUnsupported, "datagrams have no arrival time"})
	if opts.GSO {
		warnings = append(warnings, &OptionError{"UDP_SEGMENT", errors.ErrUnsupported, "no segmentation offload: datagrams for one address are sent one by one"})
	}
	return []*Conn{c}, warnings, nil
}

// GSO reports false: this system has no UDP segmentation offload.
func (c *Conn) GSO() bool { return false }

// SetGSO does nothing: this system has no UDP segmentation offload.
func (c *Conn) SetGSO(bool) {}

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort {
	return c.uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; a ReadBatch in progress returns an error that
// matches net.ErrClosed.
func (c *Conn) Close() error { return c.uc.Close() }

// ReadBatch waits for a datagram and reads it into ds[0].
func (c *Conn) ReadBatch(ds []Datagram) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	n, from, err := c.uc.ReadFromUDPAddrPort(ds[0].Buf)
	if err != nil {
		return 0, err
	}
	ds[0].N, ds[0].From, ds[0].At = n, from, time.Time{}
	return 1, nil
}

// WriteBatch sends msgs one datagram at a time (see Sender).
func (c *Conn) WriteBatch(msgs []Message) {
	for i := range msgs {
		for _, d := range msgs[i].Datagrams {
			if _, err := c.uc.WriteToUDPAddrPort(d, msgs[i].To); err != nil {
				c.failed.Add(1)
			}
		}
	}
}

// SendFailures counts the datagrams WriteBatch could not send.
func (c *Conn) SendFailures() uint64 { return c.failed.Load() }
