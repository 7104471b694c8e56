// Package freeport finds loopback ports that nothing listens on, for tests
// that must tell a program its port before it starts. A port found is
// only free when it is found: another process may take it before the
// program does, which on a test machine is rare enough.
package freeport

import (
	"net"
	"testing"
)

// TCP returns a loopback TCP port that was free a moment ago.
func TCP(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// UDP returns a loopback UDP port that was free a moment ago.
func UDP(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Both returns a loopback port that was free for TCP and UDP alike a
// moment ago, as a Mumble server uses one number for both.
func Both(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return 0
}
