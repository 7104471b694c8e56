package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// fakeServer is a minimal in-process Mumble server for one client: it does
// the login handshake, answers TCP and UDP pings, and hands everything else
// the client sends to the test.
type fakeServer struct {
	t       *testing.T
	addr    string
	version uint64
	reject  *mumblepb.Reject // if set, sent instead of the login sequence
	noSync  bool             // stop before ServerSync

	ln  net.Listener
	udp *net.UDPConn

	wmu  sync.Mutex
	conn *tls.Conn

	cmu      sync.Mutex // guards crypt and peer
	crypt    crypto.CryptState
	peer     *net.UDPAddr
	udpReady chan struct{} // closed when the client's UDP address is known
	udpOnce  sync.Once

	version0 *mumblepb.Version      // what the client announced
	auth     *mumblepb.Authenticate // and how it logged in
	frames   chan fakeFrame         // TCP frames after login, except Ping
	udpIn    chan []byte            // decrypted UDP packets, except pings
	// discard is set while a test counts the client's allocations, which
	// the runtime counts for the whole process: the server then drops
	// frames and packets without copying them.
	discard   atomic.Bool
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type fakeFrame struct {
	t       control.Type
	payload []byte
}

const (
	fakeSession  = 7
	otherSession = 8
)

func newFakeServer(t *testing.T, version uint64) *fakeServer {
	t.Helper()
	s := &fakeServer{
		t:        t,
		version:  version,
		frames:   make(chan fakeFrame, 64),
		udpIn:    make(chan []byte, 64),
		udpReady: make(chan struct{}),
		quit:     make(chan struct{}),
	}
	if err := s.crypt.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	// Same port for TCP and UDP, as Mumble servers do.
	for i := 0; ; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ln.Addr().(*net.TCPAddr).AddrPort()))
		if err == nil {
			s.ln, s.udp = ln, u
			break
		}
		ln.Close()
		if i > 20 {
			t.Fatal(err)
		}
	}
	s.addr = s.ln.Addr().String()
	t.Cleanup(s.close)
	return s
}

// start accepts the one client connection in the background.
func (s *fakeServer) start() {
	s.wg.Add(2)
	go s.serveTCP()
	go s.serveUDP()
}

func (s *fakeServer) close() {
	s.closeOnce.Do(s.doClose)
}

func (s *fakeServer) doClose() {
	close(s.quit)
	s.ln.Close()
	s.udp.Close()
	s.wmu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.wmu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) send(m proto.Message) {
	s.t.Helper()
	b, err := control.Marshal(m)
	if err != nil {
		s.t.Error(err)
		return
	}
	s.sendRaw(b)
}

func (s *fakeServer) sendRaw(frame []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.Write(frame)
}

func (s *fakeServer) serveTCP() {
	defer s.wg.Done()
	raw, err := s.ln.Accept()
	if err != nil {
		return
	}
	conn := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{testCert(s.t)}})
	s.wmu.Lock()
	s.conn = conn
	s.wmu.Unlock()
	defer conn.Close()
	rd := control.NewReader(conn)
	for !s.loggedIn() {
		t, p, err := rd.Read()
		if err != nil {
			return
		}
		m, err := control.Unmarshal(t, p)
		if err != nil {
			continue
		}
		s.cmu.Lock()
		switch m := m.(type) {
		case *mumblepb.Version:
			s.version0 = m
		case *mumblepb.Authenticate:
			s.auth = m
		}
		s.cmu.Unlock()
	}
	s.login()
	for {
		t, p, err := rd.Read()
		if err != nil {
			return
		}
		if t == control.Ping {
			m, _ := control.Unmarshal(t, p)
			s.send(&mumblepb.Ping{Timestamp: m.(*mumblepb.Ping).Timestamp})
			continue
		}
		if s.discard.Load() {
			continue
		}
		select {
		case s.frames <- fakeFrame{t, append([]byte(nil), p...)}:
		case <-s.quit:
			return
		}
	}
}

func (s *fakeServer) loggedIn() bool { _, a := s.login0(); return a != nil }

// login0 returns the client's Version and Authenticate once both arrived.
func (s *fakeServer) login0() (*mumblepb.Version, *mumblepb.Authenticate) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.auth == nil {
		return nil, nil
	}
	return s.version0, s.auth
}

// login sends what Murmur sends after Authenticate (1.6 in the fact sheet),
// shortened to what the client uses.
func (s *fakeServer) login() {
	ver := &mumblepb.Version{Release: proto.String("fake")}
	control.SetVersion(ver, s.version)
	s.send(ver)
	if s.reject != nil {
		s.send(s.reject)
		return
	}
	s.cmu.Lock()
	key, enc, dec := s.crypt.Key(), s.crypt.EncryptIV(), s.crypt.DecryptIV()
	s.cmu.Unlock()
	s.send(&mumblepb.CryptSetup{Key: key[:], ClientNonce: dec[:], ServerNonce: enc[:]})
	s.send(&mumblepb.ChannelState{ChannelId: proto.Uint32(0), Name: proto.String("Root")})
	s.send(&mumblepb.ChannelState{ChannelId: proto.Uint32(1), Parent: proto.Uint32(0), Name: proto.String("Lobby")})
	_, auth := s.login0()
	s.send(&mumblepb.UserState{Session: proto.Uint32(fakeSession), Name: auth.Username, ChannelId: proto.Uint32(0)})
	s.send(&mumblepb.UserState{Session: proto.Uint32(otherSession), Name: proto.String("other"), ChannelId: proto.Uint32(1)})
	if s.noSync {
		return
	}
	s.send(&mumblepb.ServerSync{Session: proto.Uint32(fakeSession), MaxBandwidth: proto.Uint32(558000),
		WelcomeText: proto.String("hi"), Permissions: proto.Uint64(0xB0E)})
}

func (s *fakeServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	var plain, out []byte
	for {
		n, ap, err := s.udp.ReadFromUDPAddrPort(buf) // no allocation per datagram
		if err != nil {
			return
		}
		s.cmu.Lock()
		p, err := s.crypt.Decrypt(plain[:0], buf[:n])
		if err != nil {
			s.cmu.Unlock()
			continue
		}
		plain = p
		if s.peer == nil || s.peer.AddrPort() != ap {
			s.peer = net.UDPAddrFromAddrPort(ap)
		}
		from := s.peer
		f := voice.FormatFor(min(s.version, control.VersionOf(s.version0)))
		if voice.Peek(p, f) == voice.KindPing {
			out = s.crypt.Encrypt(out[:0], p)
			s.udp.WriteToUDP(out, from)
			s.cmu.Unlock()
			s.udpOnce.Do(func() { close(s.udpReady) })
			continue
		}
		s.cmu.Unlock()
		if s.discard.Load() {
			continue
		}
		select {
		case s.udpIn <- append([]byte(nil), p...):
		case <-s.quit:
			return
		}
	}
}

// sendUDP encrypts plain and sends it to the client's learned address.
func (s *fakeServer) sendUDP(plain []byte) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := s.crypt.Encrypt(nil, plain)
	if _, err := s.udp.WriteToUDP(b, s.peer); err != nil {
		s.t.Error(err)
	}
}

// nextFrame returns the next TCP frame of type t the client sent.
func (s *fakeServer) nextFrame(t control.Type) []byte {
	s.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-s.frames:
			if f.t == t {
				return f.payload
			}
		case <-timeout:
			s.t.Fatalf("no %v frame from the client", t)
		}
	}
}

var (
	certOnce sync.Once
	cert     tls.Certificate
	certErr  error
)

// testCert is a throwaway self-signed certificate, like Murmur's generated
// one.
func testCert(t *testing.T) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "Murmur Autogenerated Certificate"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		cert, certErr = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, err
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return cert
}
