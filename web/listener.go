package web

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsRecordHandshake is the first byte of every TLS connection (a
// handshake record); no HTTP request starts with it.
const tlsRecordHandshake = 0x16

// sniffTimeout bounds how long a new connection may take to send its
// first byte before it is closed.
const sniffTimeout = 10 * time.Second

// DualListener accepts TCP connections and serves each as TLS or as plain
// HTTP according to its first byte, so one port answers
// https://host:port and http://localhost:port alike. The sniffing happens
// on the connection's first Read, in the HTTP server's goroutine for that
// connection, never in Accept.
type DualListener struct {
	net.Listener
	TLS *tls.Config
}

// Accept returns the next connection, wrapped so that it decides on its
// first read.
func (l DualListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, tlsConfig: l.TLS}, nil
}

// sniffConn becomes a TLS server connection or stays plain on its first
// Read.
type sniffConn struct {
	net.Conn
	tlsConfig *tls.Config
	once      sync.Once
	inner     net.Conn // set by the first Read: a *tls.Conn or a peeked plain conn
	err       error
}

// IsTLS reports whether c turned out to be a TLS connection. Only
// meaningful after its first Read.
func IsTLS(c net.Conn) bool {
	sc, ok := c.(*sniffConn)
	if !ok {
		_, isTLS := c.(*tls.Conn)
		return isTLS
	}
	_, isTLS := sc.inner.(*tls.Conn)
	return isTLS
}

func (c *sniffConn) decide() {
	c.Conn.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c.Conn, 16)
	first, err := br.Peek(1)
	c.Conn.SetReadDeadline(time.Time{})
	if err != nil {
		c.err = err
		return
	}
	peeked := &peekedConn{Conn: c.Conn, r: br}
	if first[0] == tlsRecordHandshake && c.tlsConfig != nil {
		c.inner = tls.Server(peeked, c.tlsConfig)
		return
	}
	c.inner = peeked
}

func (c *sniffConn) Read(b []byte) (int, error) {
	c.once.Do(c.decide)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Read(b)
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.once.Do(c.decide)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Write(b)
}

func (c *sniffConn) Close() error {
	if tc, ok := c.inner.(*tls.Conn); ok {
		return tc.Close()
	}
	return c.Conn.Close()
}

// peekedConn reads through the buffer that holds the sniffed byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(b)
	}
	return c.Conn.Read(b)
}
