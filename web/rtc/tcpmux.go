package rtc

import (
	"net"

	"github.com/pion/ice/v4"
)

// pion's TCP mux files each browser's ICE-TCP connection under the local
// address it arrived on, and each of the server's candidates under the
// interface address it was gathered from. Behind a NAT, or with the
// listener on all addresses and web_addresses announced, those differ:
// every interface's candidate is rewritten to the one public address, only
// one of these equal candidates is kept, and a browser's connection comes
// in on an address that is not its key. Its checks then go to a
// connection nobody reads, and ICE-TCP fails. The server has one ICE-TCP
// port for all browsers, so the interface is of no interest: oneKeyMux and
// oneKeyListener file everything under the unspecified address of its
// family.

// oneKeyMux is an ice.TCPMux that ignores the local address it is given.
type oneKeyMux struct{ ice.TCPMux }

func (m oneKeyMux) GetConnByUfrag(ufrag string, isIPv6 bool, _ net.IP) (net.PacketConn, error) {
	return m.TCPMux.GetConnByUfrag(ufrag, isIPv6, unspecified(isIPv6))
}

func unspecified(isIPv6 bool) net.IP {
	if isIPv6 {
		return net.IPv6unspecified
	}
	return net.IPv4zero
}

// oneKeyListener hands pion connections whose local address is the
// unspecified address of their family, with the real port.
type oneKeyListener struct{ net.Listener }

func (l oneKeyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return c, nil
	}
	isIPv6 := local.IP.To4() == nil
	return oneKeyConn{Conn: c, local: &net.TCPAddr{IP: unspecified(isIPv6), Port: local.Port}}, nil
}

type oneKeyConn struct {
	net.Conn
	local net.Addr
}

func (c oneKeyConn) LocalAddr() net.Addr { return c.local }
