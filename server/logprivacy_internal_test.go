package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/plenum-voice/plenum/proto/control"
)

func TestHideAddresses(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"read tcp 127.0.0.1:64738->127.0.0.8:34273: read: connection reset by peer",
			"read tcp (hidden)->(hidden): read: connection reset by peer"},
		{"write tcp [2001:db8::1]:64738->[2001:db8::7]:5000: i/o timeout", "write tcp (hidden)->(hidden): i/o timeout"},
		{"from ::ffff:192.0.2.1.", "from (hidden)."},
		{"ban prefix 192.0.2.0/24", "ban prefix (hidden)/24"},
		{"fe80::1%eth0 and 2001:db8::", "(hidden)%eth0 and (hidden)"},
		{"abc:192.0.2.1", "abc:(hidden)"},
		{"[192.0.2.1]", "(hidden)"},
		// Not addresses.
		{"version 1.5.735 at 12:30:45", "version 1.5.735 at 12:30:45"},
		{"sha256=bcd25f4c86ed755ad655d0a482848f78c530962c1e0f45d0fb1c70d07ee423cb", "sha256=bcd25f4c86ed755ad655d0a482848f78c530962c1e0f45d0fb1c70d07ee423cb"},
		{"deadbeef:cafe, 1.2.3, 300.1.1.1, a:b", "deadbeef:cafe, 1.2.3, 300.1.1.1, a:b"},
		{"", ""},
	} {
		if got := hideAddresses(tt.in); got != tt.want {
			t.Errorf("hideAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// tcpError is the error Go returns when a client resets its connection.
func tcpError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 64738},
		Addr:   &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 51234},
		Err:    &os.SyscallError{Syscall: op, Err: errno}}
}

func TestCloseReasons(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}, Err: os.ErrDeadlineExceeded}
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}
	for _, tt := range []struct {
		what string
		got  closeReason
		want closeReason
	}{
		{"read EOF", readReason(io.EOF, true), reasonEOF},
		{"read cut inside a frame", readReason(io.ErrUnexpectedEOF, true), reasonEOF},
		{"read reset", readReason(fmt.Errorf("wrapped: %w", tcpError("read", syscall.ECONNRESET)), true), reasonReset},
		{"read timeout, logged in", readReason(timeout, true), reasonTimeout},
		{"read timeout before login", readReason(timeout, false), reasonHandshakeTimeout},
		{"message too large", readReason(control.ErrTooLarge, true), reasonTooLarge},
		{"TLS alert after login", readReason(alert, true), reasonTLS},
		{"write timeout", writeReason(timeout), reasonStuck},
		{"write to a closed peer", writeReason(tcpError("write", syscall.EPIPE)), reasonReset},
		{"handshake timeout", handshakeReason(timeout), reasonHandshakeTimeout},
		{"handshake reset", handshakeReason(tcpError("read", syscall.ECONNRESET)), reasonTLS},
		{"handshake garbage", handshakeReason(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), reasonTLS},
		{"something else", ioReason(tcpError("read", syscall.EHOSTUNREACH)), reasonError},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.what, tt.got, tt.want)
		}
	}
	if got := tlsDetail(tcpError("read", syscall.ECONNRESET)); got != "reset" {
		t.Errorf("TLS detail of a reset: %q, want the reason word alone", got)
	}
	if got := tlsDetail(alert); got != "remote error: tls: bad certificate" {
		t.Errorf("TLS detail of an alert: %q", got)
	}
	names := map[string]bool{}
	for r := reasonNone; r <= reasonError; r++ {
		if name := r.String(); name == "" || names[name] {
			t.Errorf("reason %d has the name %q, empty or taken", r, name)
		}
		names[r.String()] = true
	}
}

// TestPrivacyHandler: with log_ips off, network errors, address values
// and addresses in text never reach the log, however they are passed;
// with log_ips on the handler passes everything as it is.
func TestPrivacyHandler(t *testing.T) {
	var buf bytes.Buffer
	logIPs := false
	log := slog.New(newPrivacyHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), func() bool { return logIPs }))
	peer := netip.MustParseAddrPort("198.51.100.7:51234")
	emit := func() string {
		buf.Reset()
		log.With("conn", peer).WithGroup("g").Debug("closed after 198.51.100.7 went",
			"err", fmt.Errorf("read: %w", tcpError("read", syscall.ECONNRESET)),
			"accept", &net.OpError{Op: "accept", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 64738}, Err: &os.SyscallError{Syscall: "accept4", Err: syscall.EMFILE}},
			"alert", &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")},
			"plain", errors.New("store: ban prefix 198.51.100.0/24"),
			"addr", peer.Addr(),
			"tcp", &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1},
			"nested", slog.GroupValue(slog.String("text", "from [2001:db8::7]:5000")),
			"session", 7)
		return buf.String()
	}

	line := emit()
	for _, leak := range []string{"198.51.100", "192.0.2", "2001:db8"} {
		if strings.Contains(line, leak) {
			t.Errorf("an address (%s) is in the log with log_ips off:\n%s", leak, line)
		}
	}
	for _, want := range []string{
		`msg="closed after (hidden) went"`, "conn=(hidden)", "g.err=reset", `g.accept="error: too many open files"`,
		`g.alert="remote error: tls: bad certificate"`, `g.plain="store: ban prefix (hidden)/24"`,
		"g.addr=(hidden)", "g.tcp=(hidden)", `g.nested.text="from (hidden)"`, "g.session=7",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("%s missing from the log:\n%s", want, line)
		}
	}

	logIPs = true
	line = emit()
	for _, want := range []string{"conn=198.51.100.7:51234", "read tcp 192.0.2.1:64738->198.51.100.7:51234", "g.addr=198.51.100.7"} {
		if !strings.Contains(line, want) {
			t.Errorf("%s missing from the log with log_ips on:\n%s", want, line)
		}
	}
}
