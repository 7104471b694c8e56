package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// logCapture collects what a server logs, at every level, for checks.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write takes one record: slog's handlers write each record at once.
func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logCapture) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// mark is where the lines logged from now on begin, for await.
func (l *logCapture) mark() int { return len(l.lines()) }

// await waits until a line logged after mark contains every one of parts,
// and returns it.
func (l *logCapture) await(t *testing.T, mark int, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		lines := l.lines()
		for _, line := range lines[min(mark, len(lines)):] {
			if containsAll(line+" ", parts) { // the space ends the last value too
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; logged since the mark:\n%s", parts, strings.Join(lines[min(mark, len(lines)):], "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// loopback is 127.0.0.n: Linux routes all of 127.0.0.0/8 to the loopback
// interface, so tests can connect from many addresses.
func loopback(n int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(n)}) }

// dialTCPFrom connects to addr from src, with a receive buffer of rcvbuf
// bytes (0: the default).
func dialTCPFrom(t *testing.T, addr string, src netip.Addr, rcvbuf int) *net.TCPConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return serr
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc.(*net.TCPConn)
}

// dialTLSFrom connects to addr from src and completes TLS.
func dialTLSFrom(t *testing.T, addr string, src netip.Addr, rcvbuf int) (*net.TCPConn, *rawConn) {
	t.Helper()
	nc := dialTCPFrom(t, addr, src, rcvbuf)
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return nc, &rawConn{t: t, tc: tc, r: control.NewReader(tc)}
}

// loginSession logs c in as name and returns its session.
func loginSession(c *rawConn, name string) uint32 {
	c.t.Helper()
	c.login(name)
	var session uint32
	c.until("ServerSync", func(_ control.Type, m proto.Message) bool {
		sync, ok := m.(*mumblepb.ServerSync)
		session = sync.GetSession()
		return ok
	})
	return session
}

// from makes a client connect from src.
func from(src netip.Addr, more ...func(*client.Config)) func(*client.Config) {
	return func(c *client.Config) {
		c.LocalAddr = src
		for _, f := range more {
			f(c)
		}
	}
}

// userKey is how a log line names the user with session.
func userKey(session uint32) string { return "user.session=" + strconv.Itoa(int(session)) + " " }

// loopbackInLog finds 127.0.0.x addresses in a log line.
var loopbackInLog = regexp.MustCompile(`\b127\.0\.0\.(\d{1,3})\b`)

// TestDisconnectLogsCarryNoAddresses drives every way a connection to the
// server ends, each from its own loopback address (127.0.0.8 and up), and
// reads every line the server logged at debug level. With the default
// log_ips = false no line may contain any of those addresses, and each
// ending must have been logged with its reason; with log_ips = true the
// same lines must carry the client's address, which shows that the check
// would see one. The endings, by the reason logged:
//
//   - eof: a user disconnects cleanly (close_notify, then FIN)
//   - reset: a user's connection is reset (SO_LINGER 0)
//   - too_large: a user announces a message above the size limit
//   - timeout: a user sends nothing within timeout (idle)
//   - handshake_timeout: a TCP connection that never starts TLS, and a
//     TLS connection that never authenticates
//   - tls: a client that speaks no TLS (the detail names crypto/tls's
//     complaint), and one that resets the connection during the TLS
//     handshake (detail "reset": the network error's text, with both
//     addresses, is not logged)
//   - stuck: a user stops reading and a write to it times out
//   - queue_overflow: a user stops reading and its control queue
//     overflows
//   - rejected: a login refused (invalid user name)
//   - replaced: a user's old session, when the same certificate logs in
//     again
//   - kicked: a user kicked by a moderator
//   - banned: a user kicked with a ban, and the banned address connecting
//     again (refused after TLS)
//   - autobanned: an address that failed three times is autobanned (the
//     autoban warning) and its next connection is refused at accept
//   - shutdown: at server shutdown, a user who hangs up when told and a
//     connection that had not logged in yet
//   - shutdown_cut: at server shutdown, a user who does not hang up
//     within shutdown_timeout
func TestDisconnectLogsCarryNoAddresses(t *testing.T) {
	// A client that stops reading is stuck after half a second, not 10 s.
	server.ShortWriteTimeout(t, 500*time.Millisecond)
	for _, logIPs := range []bool{false, true} {
		t.Run(fmt.Sprintf("log_ips=%v", logIPs), func(t *testing.T) {
			logs := &logCapture{}
			used := driveDisconnects(t, logs, logIPs)
			lines := logs.lines()
			leaks := 0
			for _, line := range lines {
				for _, m := range loopbackInLog.FindAllStringSubmatch(line, -1) {
					n, _ := strconv.Atoi(m[1])
					if used[n] {
						leaks++
						if !logIPs {
							t.Errorf("client address %s in a log line: %s", m[0], line)
						}
					}
				}
			}
			t.Logf("%d log lines from %d client addresses; %d addresses in them", len(lines), len(used), leaks)
			if t.Failed() {
				t.Log("the log:\n" + strings.Join(lines, "\n"))
			}
			if logIPs && leaks == 0 {
				t.Error("no client address in the log although log_ips = true")
			}
		})
	}
}

// driveDisconnects runs the endings of TestDisconnectLogsCarryNoAddresses
// on servers that log into logs, and returns the last bytes of the
// addresses it used.
func driveDisconnects(t *testing.T, logs *logCapture, logIPs bool) map[int]bool {
	cfg := conf.Default()
	cfg.Server.LogIPs = logIPs
	cfg.Server.HandshakeTimeout.Duration = time.Second
	cfg.Server.ShutdownTimeout.Duration = time.Second
	cfg.Server.MessageLimit, cfg.Server.MessageBurst = 100000, 100000
	cfg.Server.TextMessageLength, cfg.Server.ImageMessageLength = 0, 0
	cfg.Server.AutobanAttempts = 2 // the third failure bans
	s := startTestServer(t, testOpts{config: cfg, policy: grantAll{}, logger: logs.logger()})
	// The idle timeout gets a server of its own: with a 1 s timeout the
	// other clients (which ping every 5 s) would time out too.
	idleCfg := conf.Default()
	idleCfg.Server.LogIPs = logIPs
	idleCfg.Server.Timeout.Duration = time.Second
	idle := startTestServer(t, testOpts{config: idleCfg, logger: logs.logger()})

	used := map[int]bool{}
	next := 8
	source := func() netip.Addr {
		used[next] = true
		next++
		return loopback(next - 1)
	}
	// expect waits for the line logged after mark with msg, reason and
	// the other parts, and with log_ips on also the client's address.
	expect := func(mark int, src netip.Addr, msg, reason string, parts ...string) string {
		t.Helper()
		parts = append(parts, "msg=\""+msg, "reason="+reason+" ")
		if logIPs {
			parts = append(parts, "addr="+src.String())
		}
		return logs.await(t, mark, parts...)
	}

	t.Run("eof", func(t *testing.T) {
		src, mark := source(), logs.mark()
		p := s.join(t, "eof", from(src))
		p.Close()
		expect(mark, src, "user left", "eof", userKey(p.Session()))
	})
	t.Run("reset", func(t *testing.T) {
		src, mark := source(), logs.mark()
		nc, raw := dialTLSFrom(t, s.addr, src, 0)
		session := loginSession(raw, "reset")
		nc.SetLinger(0)
		nc.Close()
		expect(mark, src, "user left", "reset", userKey(session))
	})
	t.Run("too_large", func(t *testing.T) {
		src, mark := source(), logs.mark()
		_, raw := dialTLSFrom(t, s.addr, src, 0)
		session := loginSession(raw, "large")
		var header [control.HeaderSize]byte
		binary.BigEndian.PutUint16(header[:], uint16(control.TextMessage))
		binary.BigEndian.PutUint32(header[2:], control.MaxPayload+1)
		raw.tc.Write(header[:])
		expect(mark, src, "user left", "too_large", userKey(session))
	})
	t.Run("timeout", func(t *testing.T) {
		src, mark := source(), logs.mark()
		_, raw := dialTLSFrom(t, idle.addr, src, 0)
		session := loginSession(raw, "idle")
		expect(mark, src, "user left", "timeout", userKey(session))
	})
	t.Run("handshake_timeout", func(t *testing.T) {
		src, mark := source(), logs.mark()
		dialTCPFrom(t, s.addr, src, 0) // and never a byte
		expect(mark, src, "connection closed", "handshake_timeout")
		src, mark = source(), logs.mark()
		dialTLSFrom(t, s.addr, src, 0) // and never Authenticate
		expect(mark, src, "connection closed", "handshake_timeout")
	})
	t.Run("tls", func(t *testing.T) {
		src, mark := source(), logs.mark()
		dialTCPFrom(t, s.addr, src, 0).Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		expect(mark, src, "connection closed", "tls", `detail="tls: first record does not look like a TLS handshake"`)
		src, mark = source(), logs.mark()
		nc := dialTCPFrom(t, s.addr, src, 0)
		nc.SetLinger(0)
		nc.Close()
		expect(mark, src, "connection closed", "tls", "detail=reset")
	})
	sender := s.join(t, "sender", from(source()))
	t.Run("stuck", func(t *testing.T) {
		src, mark := source(), logs.mark()
		_, raw := dialTLSFrom(t, s.addr, src, 4096)
		session := loginSession(raw, "stuck")
		// Keep writing to it, slower than the control queue could
		// overflow within the write timeout, until the server gives up.
		stop, sent := make(chan struct{}), make(chan int)
		go func() {
			n := 0
			defer func() { sent <- n }()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
					sender.SendText(strings.Repeat("x", 4000), []uint32{session}, nil, nil)
					n++
				}
			}
		}()
		expect(mark, src, "user left", "stuck", userKey(session))
		close(stop)
		t.Logf("stuck after %d messages of 4000 bytes", <-sent)
	})
	t.Run("queue_overflow", func(t *testing.T) {
		src, mark := source(), logs.mark()
		_, raw := dialTLSFrom(t, s.addr, src, 4096)
		session := loginSession(raw, "overflow")
		sender.SendText(strings.Repeat("y", 1100<<10), []uint32{session}, nil, nil) // above the 1 MB queue
		expect(mark, src, "user left", "queue_overflow", userKey(session))
	})
	t.Run("rejected", func(t *testing.T) {
		src, mark := source(), logs.mark()
		wantReject(t, dialErr(s, from(src, func(c *client.Config) { c.Username = "no\ttabs" })), mumblepb.Reject_InvalidUsername)
		expect(mark, src, "connection closed", "rejected")
	})
	t.Run("replaced", func(t *testing.T) {
		src, cert := source(), withCert(t)
		old := s.join(t, "twin", from(src, cert))
		mark := logs.mark()
		s.join(t, "twin", from(source(), cert))
		expect(mark, src, "connection closed", "replaced", userKey(old.Session()))
	})
	moderator := s.join(t, "moderator", from(source()))
	t.Run("kicked", func(t *testing.T) {
		src := source()
		p := s.join(t, "kicked", from(src))
		mark := logs.mark()
		moderator.Send(&mumblepb.UserRemove{Session: proto.Uint32(p.Session()), Reason: proto.String("out")})
		expect(mark, src, "connection closed", "kicked", userKey(p.Session()))
	})
	t.Run("banned", func(t *testing.T) {
		src := source()
		p := s.join(t, "banned", from(src))
		mark := logs.mark()
		moderator.Send(&mumblepb.UserRemove{Session: proto.Uint32(p.Session()), Ban: proto.Bool(true)})
		expect(mark, src, "connection closed", "banned", userKey(p.Session()))
		mark = logs.mark()
		if err := dialErr(s, from(src, func(c *client.Config) { c.Username = "again" })); err == nil {
			t.Fatal("a banned address logged in")
		}
		expect(mark, src, "connection closed", "banned")
	})
	t.Run("autobanned", func(t *testing.T) {
		src, mark := source(), logs.mark()
		for range 3 {
			m := logs.mark()
			dialTCPFrom(t, s.addr, src, 0).Write([]byte("not TLS\r\n"))
			expect(m, src, "connection closed", "tls")
		}
		warn := []string{`msg="autoban: `}
		if logIPs {
			warn = append(warn, "addr="+src.String())
		}
		logs.await(t, mark, warn...)
		mark = logs.mark()
		// The kernel completes the connection; the server resets it at
		// accept, sometimes before the dial has returned.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		if nc, err := d.Dial("tcp", s.addr); err == nil {
			nc.Close()
		}
		expect(mark, src, "connection refused", "autobanned")
	})
	t.Run("shutdown", func(t *testing.T) {
		polite, hung, pending := source(), source(), source()
		p := s.join(t, "polite", from(polite))
		_, raw := dialTLSFrom(t, s.addr, hung, 0)
		hungSession := loginSession(raw, "hung") // and then reads and sends nothing
		// Connections of earlier paths may still be ending: wait for them,
		// so that the count below is this one.
		waitUntil(t, "no connection of earlier paths still logging in", func() bool {
			return s.Stats().Unauthenticated == 0
		})
		dialTCPFrom(t, s.addr, pending, 0)
		waitUntil(t, "the server has the unauthenticated connection", func() bool {
			return s.Stats().Unauthenticated == 1
		})
		mark := logs.mark()
		s.stop()
		expect(mark, polite, "user left", "shutdown", userKey(p.Session()))
		expect(mark, hung, "user left", "shutdown_cut", userKey(hungSession))
		expect(mark, pending, "connection closed", "shutdown")
	})
	return used
}

// waitUntil waits up to 5 s for cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestLogsNameOnlyRegisteredUsers: with the defaults the log names
// unregistered users by session number only, whether they are the subject
// of a line or the one who acted ("by"), and registered users and
// SuperUser by name; log_names = true names the unregistered too.
func TestLogsNameOnlyRegisteredUsers(t *testing.T) {
	for _, logNames := range []bool{false, true} {
		t.Run(fmt.Sprintf("log_names=%v", logNames), func(t *testing.T) {
			logs := &logCapture{}
			dataDir := t.TempDir()
			certs := registerUsers(t, dataDir, "Registrada")
			cfg := conf.Default()
			cfg.Server.LogNames = logNames
			s := startTestServer(t, testOpts{config: cfg, dataDir: dataDir, policy: grantAll{}, logger: logs.logger()})
			if err := s.openStore(t).SetPassword(0, "su-secret"); err != nil {
				t.Fatal(err)
			}
			s.join(t, "SuperUser", func(c *client.Config) { c.Password = "su-secret" })
			registered := s.join(t, "Registrada", as(certs["Registrada"]))
			guest := s.join(t, "Gastname", withCert(t)) // creating a channel needs a certificate
			other := s.join(t, "Zweitgast", nil)
			guests := map[string]uint32{"Gastname": guest.Session(), "Zweitgast": other.Session()}

			mark := logs.mark()
			guest.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Nebenraum")})
			logs.await(t, mark, `msg="channel created"`, "by.session="+strconv.Itoa(int(guest.Session())))
			registered.Send(&mumblepb.UserRemove{Session: proto.Uint32(other.Session())})
			logs.await(t, mark, `msg="user removed"`, userKey(other.Session()), "by.session="+strconv.Itoa(int(registered.Session()))+" by.name=Registrada ")
			guest.Close()
			logs.await(t, mark, `msg="user left"`, userKey(guest.Session()))
			s.stop()

			lines := strings.Join(logs.lines(), " \n") + " " // a space ends every value
			for _, name := range []string{"Registrada", "SuperUser"} {
				if !strings.Contains(lines, "user.name="+name+" ") {
					t.Errorf("%s is not named", name)
				}
			}
			for name, session := range guests {
				named := strings.Count(lines, name)
				switch {
				case !logNames && named > 0:
					t.Errorf("the unregistered %s (session %d) is named %d times with log_names off", name, session, named)
				case logNames && !strings.Contains(lines, userKey(session)+"user.name="+name+" "):
					t.Errorf("the unregistered %s (session %d) is not named with log_names on", name, session)
				}
			}
			if logNames && !strings.Contains(lines, "by.name=Gastname ") {
				t.Error("an unregistered user who acted is not named with log_names on")
			}
			if t.Failed() {
				t.Log("the log:\n" + lines)
			}
		})
	}
}

// TestPrivateLoggerHidesAddresses: the filter the process puts on the
// cluster's log lines hides an address in a message, a text value and a
// network error while log_ips is off, and follows log_ips as it changes.
func TestPrivateLoggerHidesAddresses(t *testing.T) {
	var buf bytes.Buffer
	logIPs := false
	log := server.PrivateLogger(slog.New(slog.NewTextHandler(&buf, nil)), func() bool { return logIPs })
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 4222}, Err: syscall.ECONNREFUSED}
	logLines := func() string {
		buf.Reset()
		log.Warn("NATS server 10.9.8.7:4222 unreachable", "url", "nats://10.9.8.7:4222", "err", dialErr)
		return buf.String()
	}
	if out := logLines(); strings.Contains(out, "10.9.8.7") {
		t.Errorf("an address in the log with log_ips off: %s", out)
	}
	logIPs = true
	if out := logLines(); strings.Count(out, "10.9.8.7") != 3 {
		t.Errorf("with log_ips on, want the address three times: %s", out)
	}
}
