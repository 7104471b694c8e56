// Package rtc is the server's WebRTC endpoint for browsers, built on pion:
// ICE-lite with every browser on one UDP port and ICE over TCP on one TCP
// port, DTLS and SRTP, one Opus track each way per browser. It answers a
// browser's offer with all of its candidates at once (no trickle), hands
// the browser's RTP to the caller and sends it the packets the caller
// writes. It knows nothing of users or the Mumble protocol.
package rtc

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Opus as browsers send and expect it: 48 kHz, payload type 111, stereo
// announced as RFC 7587 requires (the content is mono).
const (
	opusPayloadType = 111
	clockRate       = 48000
	// AudioLevelURI is the RTP header extension with the sender's
	// loudness (RFC 6464).
	AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
)

// Config says where the endpoint listens and what it announces.
type Config struct {
	Host    string // address to bind ("" = all)
	UDPPort int    // 0 = any free port
	TCPPort int    // 0 = any free port; -1 = no ICE over TCP
	// Addresses are announced instead of the machine's own (a NAT's
	// public address); empty announces the local addresses.
	Addresses []string
	// Go starts a goroutine the owner accounts for.
	Go func(name string, f func())
}

// Endpoint is the UDP and TCP sockets every browser's WebRTC shares, and
// the pion API configured for them.
type Endpoint struct {
	api    *webrtc.API
	udp    net.PacketConn
	tcp    net.Listener
	udpMux ice.UDPMux
	tcpMux ice.TCPMux
	goFn   func(string, func())
}

// Listen opens the endpoint's sockets.
func Listen(cfg Config) (*Endpoint, error) {
	if cfg.Go == nil {
		cfg.Go = func(_ string, f func()) { go f() }
	}
	e := &Endpoint{goFn: cfg.Go}
	var err error
	e.udp, err = net.ListenPacket("udp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return nil, fmt.Errorf("web_udp_port: %w", err)
	}
	logs := quietLoggers()
	e.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("ice"), e.udp)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetLite(true)
	se.SetICEUDPMux(e.udpMux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPPort >= 0 {
		e.tcp, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			e.udpMux.Close()
			e.udp.Close()
			return nil, fmt.Errorf("web_tcp_port: %w", err)
		}
		if e.tcp.Addr().(*net.TCPAddr).IP.IsUnspecified() {
			e.tcpMux = oneKeyMux{webrtc.NewICETCPMux(logs.NewLogger("ice"), oneKeyListener{e.tcp}, 64)}
		} else {
			// Bound to one address, the candidates are gathered from
			// that address alone and the keys agree.
			e.tcpMux = webrtc.NewICETCPMux(logs.NewLogger("ice"), e.tcp, 64)
		}
		se.SetICETCPMux(e.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(cfg.Addresses) > 0 {
		se.SetNAT1To1IPs(cfg.Addresses, webrtc.ICECandidateTypeHost)
	}
	// Voice only: no data channels are ever negotiated, and the answer
	// need not wait for anything but the local candidates.
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: OpusCodec(),
		PayloadType:        opusPayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		e.Close()
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		e.Close()
		return nil, err
	}
	// No interceptors (pion registers NACK, reports, statistics and
	// congestion feedback unless told otherwise): the server neither
	// retransmits nor estimates bandwidth for a constant-bitrate voice
	// stream, and that per-packet bookkeeping for 500 browsers is CPU
	// better spent mixing.
	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return e, nil
}

// OpusCodec is the codec of both tracks.
func OpusCodec() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: clockRate, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
}

// UDPAddr is the UDP socket's address.
func (e *Endpoint) UDPAddr() net.Addr { return e.udp.LocalAddr() }

// TCPAddr is the ICE-TCP listener's address, nil without one.
func (e *Endpoint) TCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	return e.tcp.Addr()
}

// Close closes the sockets. Sessions still open end with them.
func (e *Endpoint) Close() error {
	var errs []error
	if e.tcpMux != nil {
		errs = append(errs, e.tcpMux.Close())
	}
	if e.tcp != nil {
		e.tcp.Close()
	}
	errs = append(errs, e.udpMux.Close())
	e.udp.Close()
	return errors.Join(errs...)
}

// quietLoggers keep pion's logs out of the server's: they name addresses.
func quietLoggers() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}
