package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsCanBeTaken(t *testing.T) {
	tcp := TCP(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(tcp))
	if err != nil {
		t.Fatalf("TCP port %d: %v", tcp, err)
	}
	l.Close()

	udp := UDP(t)
	c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(udp))
	if err != nil {
		t.Fatalf("UDP port %d: %v", udp, err)
	}
	c.Close()

	both := Both(t)
	l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(both))
	if err != nil {
		t.Fatalf("port %d for TCP: %v", both, err)
	}
	defer l.Close()
	c, err = net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(both))
	if err != nil {
		t.Fatalf("port %d for UDP: %v", both, err)
	}
	c.Close()
}
