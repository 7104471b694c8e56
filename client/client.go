// Package client is a small Mumble client: a TLS control connection, OCB2
// encrypted UDP voice and the UDPTunnel fallback. Plenum's integration tests
// use it to drive the server (and, in murmur_test.go, Murmur itself, so that
// the client is known to speak the real protocol), and the load generator
// uses it to simulate many talkers, which is why SendAudio does not allocate.
//
// A Client owns every goroutine it starts; they end when the connection ends
// or Close is called, and Close waits for them.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// Config describes one client connection.
type Config struct {
	Address            string // host:port, used for TCP and UDP alike
	Username, Password string
	Tokens             []string
	Certificate        *tls.Certificate // optional client certificate
	// TLS, if set, is the TLS configuration to connect with: one that
	// verifies the server's certificate (RootCAs, ServerName), as a
	// client that trusts a CA does. Nil accepts any certificate, as
	// Mumble clients do after asking once about a self-signed one.
	TLS *tls.Config
	// LocalAddr is the address to connect from, TCP and UDP alike; the
	// zero Addr lets the system choose. Tests use it to appear as several
	// hosts (all of 127.0.0.0/8 is loopback).
	LocalAddr netip.Addr

	// Version is the announced client version (v2 encoding). 0 means 1.5.0,
	// which selects protobuf UDP when the server is >= 1.5 too. A version
	// below 1.4.0 (e.g. control.MakeVersion(1, 3, 4)) acts as an old client:
	// only version_v1 is sent, CELT versions are announced and voice uses
	// the legacy UDP format.
	Version uint64

	// DisableUDP keeps the client off UDP entirely, like a client on a
	// network that blocks UDP: voice goes through UDPTunnel and no UDP pings
	// are sent.
	DisableUDP bool

	// Conn, if set, is an established stream to the server used instead
	// of dialling TCP and TLS: a browser's WebSocket (internal/webpeer),
	// each Write one message. There is no Mumble UDP with it.
	Conn net.Conn
	// OnUnknown is called from the reader for every control message of a
	// type this client does not know (Plenum's WebRTC signalling, 100).
	// May be nil.
	OnUnknown func(t control.Type, payload []byte)

	// OnAudio is called from the receive goroutines (UDP and TCP) for every
	// voice packet. It must not call Close. May be nil.
	OnAudio func(p *AudioPacket)
	// BorrowAudio lends OnAudio the packet instead of giving it away: the
	// *AudioPacket, its Opus and its Position are valid only during the
	// call and are reused for the next packet, so receiving allocates
	// nothing. The load generator uses it; a callee that keeps a packet
	// must copy it.
	BorrowAudio bool
	// OnMessage is called from the TCP reader for every control message,
	// after the client has applied it to its own state. During Dial it is
	// called from Dial's goroutine. It must not call Close. May be nil.
	OnMessage func(t control.Type, m proto.Message)

	Logger *slog.Logger
}

// AudioPacket is one received voice packet.
type AudioPacket struct {
	Sender     uint32
	Context    uint8 // voice.ContextNormal, ContextShout, ContextWhisper, ContextListen
	Frame      uint64
	Opus       []byte // owned by the callee (borrowed with Config.BorrowAudio)
	Terminator bool
	Position   *[3]float32 // nil when the packet carries no position
	ViaUDP     bool        // false: it came through the TCP tunnel
	Received   time.Time
}

// RejectError is returned by Dial when the server refuses the login.
type RejectError struct {
	Type   mumblepb.Reject_RejectType
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("client: rejected by server: %v: %s", e.Type, e.Reason)
}

var (
	// ErrClosed is what Err reports after Close.
	ErrClosed = errors.New("client: closed")
	// ErrTooLarge is returned by SendAudio when the packet would exceed
	// voice.MaxPacket on the wire (on UDP; the tunnel keeps the same limit
	// so that a packet's fate does not depend on the path).
	ErrTooLarge = errors.New("client: voice packet too large")
	// ErrNotEncodable is returned by SendAudio for a target or Opus frame
	// the voice format cannot express (the legacy format has 5 target bits
	// and 13 length bits).
	ErrNotEncodable = errors.New("client: voice packet not encodable in the server's format")
	// ErrNoUDP is returned by WaitUDP when the client was configured
	// without UDP.
	ErrNoUDP = errors.New("client: UDP disabled")
)

// Timing of the keep-alive and UDP liveness logic. Mumble's client pings
// every 5 s; the fast UDP ping only shortens the wait for the first reply so
// that tests do not sit idle.
const (
	pingInterval     = 5 * time.Second
	fastPingInterval = 500 * time.Millisecond
	udpAliveFor      = 15 * time.Second
	resyncAfter      = 5 * time.Second // no good packet for this long before asking for a resync
	resyncEvery      = 5 * time.Second // and at most this often
	maxTCPPingsOut   = 4               // unanswered TCP pings before giving up, as Mumble does
)

// Versions the protocol behaviour depends on.
var (
	defaultVersion  = control.MakeVersion(1, 5, 0)
	v2FieldsVersion = control.MakeVersion(1, 4, 0)
)

// The CELT bitstream ids a 1.3 client announces (CELT 0.7.0 and 0.11.0).
// Murmur counts them towards its codec vote; with opus=true as well, the
// server keeps Opus enabled.
var legacyCELTVersions = []int32{-2147483637, -2147483632}

// Client is one connected Mumble client. All methods are safe for concurrent
// use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	version uint64 // announced
	start   time.Time

	conn net.Conn // TLS over TCP, or Config.Conn
	rd   *control.Reader
	udp  *net.UDPConn // nil with DisableUDP

	// writeMu serialises TCP writes and owns wbuf, the frame buffer of the
	// tunnel path.
	writeMu sync.Mutex
	wbuf    []byte

	// The crypto state has independent encrypt and decrypt halves, so the
	// UDP sender and receiver never wait on each other. SetKey takes both.
	encMu     sync.Mutex
	decMu     sync.Mutex
	crypt     crypto.CryptState
	encBuf    []byte    // ciphertext, under encMu
	pingPlain []byte    // UDP ping plaintext, under encMu
	keySet    time.Time // when the key was installed, under decMu
	lastReq   time.Time // last resync request, under decMu
	cryptOK   atomic.Bool
	// decryptFailed counts datagrams that arrived but did not decrypt:
	// replays, packets too far behind, forgeries (DecryptFailures).
	decryptFailed atomic.Uint64

	// tcpAudio is the borrowed packet of the TCP reader (BorrowAudio).
	tcpAudio audioScratch

	// sendMu owns the plaintext being built by SendAudio.
	sendMu    sync.Mutex
	sendAudio voice.Audio
	sendPlain []byte

	serverVersion atomic.Uint64
	format        atomic.Uint32 // voice.Format for UDP and tunnel packets

	lastUDPReply atomic.Int64 // unix nanoseconds; 0 = never
	udpUp        chan struct{}
	udpUpOnce    sync.Once

	statsMu     sync.Mutex
	udpRTT      rttStats
	tcpRTT      rttStats
	tcpPingsOut int
	lastPingTS  uint64 // last TCP ping timestamp sent
	lastPongTS  uint64 // last TCP ping timestamp echoed

	mu       sync.Mutex
	session  uint32
	sync     *mumblepb.ServerSync
	channels map[uint32]*mumblepb.ChannelState
	users    map[uint32]*mumblepb.UserState
	changed  chan struct{} // closed and replaced after every control message
	err      error

	banList    *mumblepb.BanList // the last ban list received (under mu)
	banLists   int               // ban lists received
	banDenials int               // refusals of the Ban permission received

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Dial connects, authenticates and returns once the server sent ServerSync.
// A Reject is returned as *RejectError. ctx bounds only the login; the
// connection then lives until Close or until the server ends it.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	c := &Client{
		cfg:       cfg,
		log:       cfg.Logger,
		version:   cfg.Version,
		start:     time.Now(),
		channels:  make(map[uint32]*mumblepb.ChannelState),
		users:     make(map[uint32]*mumblepb.UserState),
		changed:   make(chan struct{}),
		done:      make(chan struct{}),
		udpUp:     make(chan struct{}),
		wbuf:      make([]byte, 0, control.HeaderSize+voice.MaxPacket),
		encBuf:    make([]byte, 0, voice.MaxPacket+crypto.Overhead),
		pingPlain: make([]byte, 0, 32),
		sendPlain: make([]byte, 0, voice.MaxPacket),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.version == 0 {
		c.version = defaultVersion
	}
	c.format.Store(uint32(voice.Legacy)) // until the server says otherwise

	if cfg.Conn != nil {
		c.cfg.DisableUDP = true
		c.conn = cfg.Conn
	} else if err := c.dialTLS(ctx); err != nil {
		return nil, err
	}
	c.rd = control.NewReader(c.conn)

	if err := c.login(ctx); err != nil {
		c.conn.Close()
		return nil, err
	}

	if !c.cfg.DisableUDP {
		// Voice goes to the address the TCP connection actually reached, as
		// Mumble does, so a multi-address host name cannot split the two.
		var localUDP *net.UDPAddr
		if cfg.LocalAddr.IsValid() {
			localUDP = &net.UDPAddr{IP: cfg.LocalAddr.AsSlice()}
		}
		ta := c.conn.RemoteAddr().(*net.TCPAddr)
		u, err := net.DialUDP("udp", localUDP, &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
		if err != nil {
			c.conn.Close()
			return nil, fmt.Errorf("client: UDP: %w", err)
		}
		c.udp = u
	}

	c.wg.Add(2)
	go c.readTCP()
	go c.keepAlive()
	if c.udp != nil {
		c.wg.Add(1)
		go c.readUDP()
	}
	return c, nil
}

// dialTLS connects over TCP and TLS.
func (c *Client) dialTLS(ctx context.Context) error {
	cfg := c.cfg
	var d net.Dialer
	if cfg.LocalAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.LocalAddr.AsSlice()}
	}
	raw, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	tcfg := &tls.Config{
		// Mumble servers present self-signed certificates; identity is not
		// what this client is for.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.TLS != nil {
		tcfg = cfg.TLS.Clone()
	}
	if cfg.Certificate != nil {
		tcfg.Certificates = []tls.Certificate{*cfg.Certificate}
	}
	tc := tls.Client(raw, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return fmt.Errorf("client: TLS handshake: %w", err)
	}
	c.conn = tc
	return nil
}

// login sends Version and Authenticate and handles messages until
// ServerSync or Reject.
func (c *Client) login(ctx context.Context) error {
	// Cancelling ctx must interrupt a blocked read; a past deadline does.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	ver := &mumblepb.Version{
		VersionV1: proto.Uint32(control.VersionV1(c.version)),
		Release:   proto.String("plenum-client"),
		Os:        proto.String("Go"),
	}
	if c.version >= v2FieldsVersion {
		ver.VersionV2 = proto.Uint64(c.version)
	}
	auth := &mumblepb.Authenticate{
		Username: proto.String(c.cfg.Username),
		Tokens:   c.cfg.Tokens,
		Opus:     proto.Bool(true),
	}
	if c.cfg.Password != "" {
		auth.Password = proto.String(c.cfg.Password)
	}
	if c.version < control.ProtobufUDPVersion {
		auth.CeltVersions = legacyCELTVersions
	}
	for _, m := range []proto.Message{ver, auth} {
		if err := c.Send(m); err != nil {
			return c.loginErr(ctx, err)
		}
	}

	for {
		t, payload, err := c.rd.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("connection closed before ServerSync")
			}
			return c.loginErr(ctx, err)
		}
		m := c.handle(t, payload)
		switch m := m.(type) {
		case *mumblepb.Reject:
			return &RejectError{Type: m.GetType(), Reason: m.GetReason()}
		case *mumblepb.ServerSync:
			if !stop() {
				return fmt.Errorf("client: login: %w", ctx.Err())
			}
			c.conn.SetDeadline(time.Time{})
			return nil
		}
	}
}

func (c *Client) loginErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("client: login: %w", ctx.Err())
	}
	return fmt.Errorf("client: login: %w", err)
}

// shutdown ends the connection once; later causes are ignored.
func (c *Client) shutdown(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		c.conn.Close()
		if c.udp != nil {
			c.udp.Close()
		}
	})
}

// Close ends the connection and waits for every goroutine of the client.
// It is idempotent.
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	c.wg.Wait()
	return nil
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err reports why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Session is the client's own session id.
func (c *Client) Session() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// ServerVersion is the version the server announced (v2 encoding), 0 if it
// sent none.
func (c *Client) ServerVersion() uint64 { return c.serverVersion.Load() }

// VoiceFormat is the UDP voice format in use (voice.Legacy until the
// server's Version arrives; voice.Protobuf when both sides are >= 1.5).
func (c *Client) VoiceFormat() voice.Format { return voice.Format(c.format.Load()) }

// NumUsers is the number of users the client currently knows, itself
// included: a cheap alternative to len(Users()).
func (c *Client) NumUsers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.users)
}

// ServerSync is the server's ServerSync message.
func (c *Client) ServerSync() *mumblepb.ServerSync {
	c.mu.Lock()
	defer c.mu.Unlock()
	return proto.CloneOf(c.sync)
}

// Wait blocks until cond holds, checking it now and after every received
// control message, or until ctx ends (ctx.Err()) or the connection ends
// (Err()). cond may call the client's accessors.
func (c *Client) Wait(ctx context.Context, cond func(c *Client) bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond(c) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			if cond(c) {
				return nil
			}
			return c.Err()
		}
	}
}

// notify wakes Wait callers.
func (c *Client) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Send writes any control message.
func (c *Client) Send(m proto.Message) error {
	frame, err := control.Marshal(m)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.write(frame)
}

// write sends one frame; writeMu must be held. A failed write ends the
// connection: a half-written frame cannot be recovered from.
func (c *Client) write(frame []byte) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	if _, err := c.conn.Write(frame); err != nil {
		c.shutdown(fmt.Errorf("client: write: %w", err))
		return c.Err()
	}
	return nil
}

// SendRaw sends a control message of type t with payload as it is (for
// types this client does not know, like Plenum's signalling).
func (c *Client) SendRaw(t control.Type, payload []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.write(control.AppendFrame(nil, t, payload))
}

// SendText sends a text message to sessions, channels and channel trees.
func (c *Client) SendText(msg string, sessions, channels, trees []uint32) error {
	return c.Send(&mumblepb.TextMessage{
		Message:   proto.String(msg),
		Session:   sessions,
		ChannelId: channels,
		TreeId:    trees,
	})
}

// Move asks the server to move this client into a channel.
func (c *Client) Move(channelID uint32) error {
	return c.Send(&mumblepb.UserState{
		Session:   proto.Uint32(c.Session()),
		ChannelId: proto.Uint32(channelID),
	})
}

// SetSelfMute sets the self-mute and self-deaf flags.
func (c *Client) SetSelfMute(mute, deaf bool) error {
	return c.Send(&mumblepb.UserState{
		Session:  proto.Uint32(c.Session()),
		SelfMute: proto.Bool(mute),
		SelfDeaf: proto.Bool(deaf),
	})
}

// SetVoiceTarget defines whisper/shout target id (1..30); no targets
// removes it.
func (c *Client) SetVoiceTarget(id uint32, targets ...*mumblepb.VoiceTarget_Target) error {
	return c.Send(&mumblepb.VoiceTarget{Id: proto.Uint32(id), Targets: targets})
}

// Ping sends a TCP Ping and waits for the server's reply. Servers handle a
// connection's messages in order, so a returned Ping also means everything
// sent before it (a VoiceTarget, say) has been processed.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ts, err := c.sendTCPPing()
	if err != nil {
		return 0, err
	}
	err = c.Wait(ctx, func(c *Client) bool {
		c.statsMu.Lock()
		defer c.statsMu.Unlock()
		return c.lastPongTS >= ts
	})
	return time.Since(start), err
}

// DecryptFailures counts the UDP datagrams that reached the client but
// did not decrypt (the crypt state refused them: replayed, too late, not
// authentic). Datagrams that never arrived show in CryptStats' Lost.
func (c *Client) DecryptFailures() uint64 { return c.decryptFailed.Load() }

// CryptStats are the local decrypt statistics of the UDP channel.
func (c *Client) CryptStats() crypto.Stats {
	c.decMu.Lock()
	defer c.decMu.Unlock()
	return c.crypt.Stats()
}
