// Package webpeer is a simulated browser for tests and the load
// generator: it logs in over the web listener's WebSocket as the join
// page does (Mumble frames, one per message), offers WebRTC with pion
// (ICE, DTLS, SRTP), sends Opus RTP as a microphone would and receives
// the server's mixed track.
package webpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/web/signal"
)

// Config says whom to connect as and what to do with what arrives.
type Config struct {
	URL                string // the WebSocket, "ws://host:port/ws"
	Origin             string // sent as the Origin header; "" for none
	Cookie             string // sent as the Cookie header; "" for none
	Username, Password string
	Tokens             []string
	// TCPOnly offers only ICE over TCP candidates, as a browser on a
	// network that blocks UDP ends up using.
	TCPOnly bool
	// OnMessage is called for every control message (see client.Config).
	OnMessage func(t control.Type, m proto.Message)
	// OnRTP is called for every packet of the server's track, decrypted;
	// the packet is valid during the call only. From one goroutine.
	OnRTP func(p *rtp.Packet, arrival time.Time)
}

// Peer is one simulated browser.
type Peer struct {
	*client.Client
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP

	answers chan signal.Message

	sendMu sync.Mutex
	pkt    rtp.Packet
	wg     sync.WaitGroup
}

// Dial logs in, negotiates WebRTC and returns once the peer connection
// is up (ICE and DTLS done).
func Dial(ctx context.Context, cfg Config) (*Peer, error) {
	h := http.Header{}
	if cfg.Origin != "" {
		h.Set("Origin", cfg.Origin)
	}
	if cfg.Cookie != "" {
		h.Set("Cookie", cfg.Cookie)
	}
	ws, _, err := websocket.Dial(ctx, cfg.URL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("webpeer: WebSocket: %w", err)
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	p := &Peer{answers: make(chan signal.Message, 4)}
	p.pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SSRC: 0x504c4e4d}
	p.Client, err = client.Dial(ctx, client.Config{
		Conn:      nc,
		Username:  cfg.Username,
		Password:  cfg.Password,
		Tokens:    cfg.Tokens,
		OnMessage: cfg.OnMessage,
		OnUnknown: p.onUnknown,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := p.connect(ctx, cfg); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Peer) onUnknown(t control.Type, payload []byte) {
	if t != signal.Type {
		return
	}
	var m signal.Message
	if json.Unmarshal(payload, &m) != nil {
		return
	}
	select {
	case p.answers <- m:
	default:
	}
}

// connect offers WebRTC, waits for the answer and for the connection.
func (p *Peer) connect(ctx context.Context, cfg Config) error {
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: opusCodec(), PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelDisabled
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	// No interceptors: a load generator with hundreds of these needs no
	// statistics or retransmissions.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	p.pc = pc
	p.track, err = webrtc.NewTrackLocalStaticRTP(opusCodec(), "mic", "browser")
	if err != nil {
		return err
	}
	if _, err := pc.AddTransceiverFromTrack(p.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return err
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		go p.read(tr, cfg.OnRTP)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	msg, _ := json.Marshal(signal.Message{Type: signal.Offer, SDP: pc.LocalDescription().SDP})
	if err := p.SendRaw(signal.Type, msg); err != nil {
		return err
	}
	var answer signal.Message
	select {
	case answer = <-p.answers:
	case <-p.Done():
		return fmt.Errorf("webpeer: connection closed before the answer: %w", p.Err())
	case <-ctx.Done():
		return fmt.Errorf("webpeer: no answer: %w", ctx.Err())
	}
	if answer.Type != signal.Answer {
		return fmt.Errorf("webpeer: server says %s: %s", answer.Type, answer.Message)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		return err
	}
	select {
	case <-connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webpeer: ICE and DTLS: %w", ctx.Err())
	}
}

func opusCodec() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
}

func (p *Peer) read(tr *webrtc.TrackRemote, onRTP func(*rtp.Packet, time.Time)) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if onRTP == nil || pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		onRTP(&pkt, time.Now())
	}
}

// SendOpus sends one frame of the microphone, of samples at 48 kHz (960
// for 20 ms). Safe for concurrent use.
func (p *Peer) SendOpus(frame []byte, samples int) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.pkt.Payload = frame
	err := p.track.WriteRTP(&p.pkt)
	p.pkt.SequenceNumber++
	p.pkt.Timestamp += uint32(samples)
	return err
}

// ClosePeerConnection ends WebRTC only, leaving the WebSocket open, as
// a browser whose network dropped the media path.
func (p *Peer) ClosePeerConnection() error { return p.pc.Close() }

// Close ends the WebRTC connection and the WebSocket.
func (p *Peer) Close() error {
	if p.pc != nil {
		p.pc.Close()
	}
	var err error
	if p.Client != nil {
		err = p.Client.Close()
	}
	p.wg.Wait()
	return err
}
