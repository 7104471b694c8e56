package client

import (
	"context"
	"errors"
	"math"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// SendAudio sends one Opus frame to target (0 normal speech, 1..30 a voice
// target, voice.TargetLoopback). It uses encrypted UDP while UDP works and
// the UDPTunnel otherwise. It does not allocate in steady state: it is the
// load generator's hot path.
func (c *Client) SendAudio(target uint32, frame uint64, opus []byte, terminator bool, pos *[3]float32) error {
	f := voice.Format(c.format.Load())
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	a := &c.sendAudio
	*a = voice.Audio{Target: target, Frame: frame, Opus: opus, Terminator: terminator}
	if pos != nil {
		a.HasPosition, a.Position = true, *pos
	}
	plain := voice.AppendAudio(c.sendPlain[:0], f, a, false)
	a.Opus = nil // do not keep the caller's buffer alive
	if len(plain) == 0 {
		return ErrNotEncodable
	}
	if len(plain) > voice.MaxPlaintext { // sendPlain grew: never kept, as cap(sendPlain) stays MaxPacket
		return ErrTooLarge
	}
	if c.UDPActive() {
		return c.sendUDP(plain)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.wbuf = control.AppendFrame(c.wbuf[:0], control.UDPTunnel, plain)
	return c.write(c.wbuf)
}

// sendUDP encrypts plain and sends it as one datagram.
func (c *Client) sendUDP(plain []byte) error {
	c.encMu.Lock()
	defer c.encMu.Unlock()
	c.encBuf = c.crypt.Encrypt(c.encBuf[:0], plain)
	_, err := c.udp.Write(c.encBuf)
	if err != nil {
		select {
		case <-c.done:
			return c.Err()
		default:
		}
	}
	return err
}

// UDPActive reports whether voice currently goes over UDP: UDP is enabled
// and the server answered a UDP ping within the last udpAliveFor.
func (c *Client) UDPActive() bool {
	last := c.lastUDPReply.Load()
	return c.udp != nil && last != 0 && time.Now().UnixNano()-last < int64(udpAliveFor)
}

// WaitUDP blocks until the server has answered a UDP ping.
func (c *Client) WaitUDP(ctx context.Context) error {
	if c.udp == nil {
		return ErrNoUDP
	}
	select {
	case <-c.udpUp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.Err()
	}
}

// readUDP is the UDP receiver goroutine.
func (c *Client) readUDP() {
	defer c.wg.Done()
	buf := make([]byte, voice.MaxPacket+1) // one spare byte to spot oversize datagrams
	plain := make([]byte, 0, voice.MaxPacket)
	scratch := new(audioScratch)
	for {
		n, err := c.udp.Read(buf)
		if err != nil {
			select {
			case <-c.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A connected UDP socket reports ICMP errors (e.g. the server's
			// port not being open yet) on the next read; they are not fatal.
			c.log.Debug("UDP read", "err", err)
			continue
		}
		if n > voice.MaxPacket || n < 5 || !c.cryptOK.Load() {
			continue
		}
		now := time.Now()
		c.decMu.Lock()
		p, err := c.crypt.Decrypt(plain[:0], buf[:n])
		resync := false
		if err != nil {
			c.decryptFailed.Add(1)
			// Mumble asks for a resync only when nothing decrypted for a
			// while, and not more often than every few seconds.
			last := c.crypt.LastGood()
			if last.IsZero() || last.Before(c.keySet) {
				last = c.keySet
			}
			if now.Sub(last) > resyncAfter && now.Sub(c.lastReq) > resyncEvery {
				c.lastReq = now
				resync = true
			}
		}
		c.decMu.Unlock()
		if resync {
			c.log.Debug("requesting crypt resync")
			if err := c.Send(&mumblepb.CryptSetup{}); err != nil {
				return
			}
		}
		if err != nil {
			continue
		}
		c.receiveVoice(p, true, now, scratch)
	}
}

// audioScratch is the packet a receive goroutine lends to OnAudio with
// Config.BorrowAudio.
type audioScratch struct {
	p   AudioPacket
	pos [3]float32
}

// receiveVoice handles a decrypted UDP packet or a tunnelled one. scratch
// belongs to the calling goroutine.
func (c *Client) receiveVoice(b []byte, viaUDP bool, now time.Time, scratch *audioScratch) {
	f := voice.Format(c.format.Load())
	switch voice.Peek(b, f) {
	case voice.KindPing:
		if !viaUDP {
			return // tunnelled pings mean nothing
		}
		ts, err := voice.DecodePing(b, f)
		if err != nil {
			return
		}
		c.lastUDPReply.Store(now.UnixNano())
		c.udpUpOnce.Do(func() { close(c.udpUp) })
		c.statsMu.Lock()
		c.udpRTT.add(c.sinceStart(now) - ts)
		c.statsMu.Unlock()
	case voice.KindAudio:
		if c.cfg.OnAudio == nil {
			return
		}
		var a voice.Audio
		if err := voice.DecodeAudio(b, f, true, &a); err != nil {
			c.log.Debug("bad voice packet", "err", err, "udp", viaUDP)
			return
		}
		if c.cfg.BorrowAudio {
			// a.Opus points into the caller's plaintext buffer, which stays
			// untouched until the callback returns.
			scratch.p = AudioPacket{
				Sender:     a.Sender,
				Context:    uint8(a.Target),
				Frame:      a.Frame,
				Opus:       a.Opus,
				Terminator: a.Terminator,
				ViaUDP:     viaUDP,
				Received:   now,
			}
			if a.HasPosition {
				scratch.pos = a.Position
				scratch.p.Position = &scratch.pos
			}
			c.cfg.OnAudio(&scratch.p)
			return
		}
		p := &AudioPacket{
			Sender:     a.Sender,
			Context:    uint8(a.Target),
			Frame:      a.Frame,
			Opus:       append([]byte(nil), a.Opus...),
			Terminator: a.Terminator,
			ViaUDP:     viaUDP,
			Received:   now,
		}
		if a.HasPosition {
			pos := a.Position
			p.Position = &pos
		}
		c.cfg.OnAudio(p)
	}
}

// sinceStart is the ping timestamp clock: microseconds since Dial, like
// Mumble's client.
func (c *Client) sinceStart(t time.Time) uint64 {
	return uint64(t.Sub(c.start) / time.Microsecond)
}

// keepAlive sends the TCP ping every pingInterval and the UDP ping at the
// same pace, faster until UDP first answers. It sleeps in between rather
// than ticking, since a load generator runs it once per simulated user.
func (c *Client) keepAlive() {
	defer c.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastTCP, lastUDP time.Time
	for {
		select {
		case <-c.done:
			return
		case <-timer.C:
		}
		now := time.Now()
		fast := c.udp != nil && c.lastUDPReply.Load() == 0
		if c.udp != nil && (fast || now.Sub(lastUDP) >= pingInterval) {
			lastUDP = now
			c.sendUDPPing(now)
		}
		if now.Sub(lastTCP) >= pingInterval {
			lastTCP = now
			c.statsMu.Lock()
			out := c.tcpPingsOut
			c.statsMu.Unlock()
			if out >= maxTCPPingsOut {
				c.shutdown(errors.New("client: server does not answer TCP pings"))
				return
			}
			if _, err := c.sendTCPPing(); err != nil {
				return
			}
		}
		if fast {
			timer.Reset(fastPingInterval)
		} else {
			timer.Reset(pingInterval)
		}
	}
}

func (c *Client) sendUDPPing(now time.Time) {
	if !c.cryptOK.Load() {
		return
	}
	f := voice.Format(c.format.Load())
	c.encMu.Lock()
	defer c.encMu.Unlock()
	c.pingPlain = voice.AppendPing(c.pingPlain[:0], f, c.sinceStart(now))
	c.encBuf = c.crypt.Encrypt(c.encBuf[:0], c.pingPlain)
	if _, err := c.udp.Write(c.encBuf); err != nil {
		c.log.Debug("UDP ping", "err", err)
	}
}

// sendTCPPing sends a Ping carrying our decrypt statistics, as the server
// uses them (with its own) to judge whether UDP works. It returns the
// ping's timestamp.
func (c *Client) sendTCPPing() (uint64, error) {
	st := c.CryptStats()
	c.statsMu.Lock()
	ts := max(c.sinceStart(time.Now()), c.lastPingTS+1) // unique, so Ping can wait for its own reply
	c.lastPingTS = ts
	c.tcpPingsOut++
	m := &mumblepb.Ping{
		Timestamp:  proto.Uint64(ts),
		Good:       proto.Uint32(st.Good),
		Late:       proto.Uint32(st.Late),
		Lost:       proto.Uint32(st.Lost),
		Resync:     proto.Uint32(st.Resync),
		UdpPackets: proto.Uint32(c.udpRTT.n),
		TcpPackets: proto.Uint32(c.tcpRTT.n),
	}
	if c.udpRTT.n > 0 {
		m.UdpPingAvg, m.UdpPingVar = proto.Float32(c.udpRTT.avg()), proto.Float32(c.udpRTT.variance())
	}
	if c.tcpRTT.n > 0 {
		m.TcpPingAvg, m.TcpPingVar = proto.Float32(c.tcpRTT.avg()), proto.Float32(c.tcpRTT.variance())
	}
	c.statsMu.Unlock()
	return ts, c.Send(m)
}

// pong records the server's answer to a TCP ping.
func (c *Client) pong(m *mumblepb.Ping) {
	now := c.sinceStart(time.Now())
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.tcpPingsOut = 0
	ts := m.GetTimestamp()
	if ts > c.lastPongTS && ts <= c.lastPingTS {
		c.lastPongTS = ts
		c.tcpRTT.add(now - ts)
	}
}

// rttStats accumulates ping round trips (microseconds) and reports them in
// milliseconds, the unit Mumble uses in Ping.
type rttStats struct {
	n        uint32
	mean, m2 float64 // Welford's running mean and sum of squared deviations
}

func (s *rttStats) add(us uint64) {
	x := float64(us) / 1000
	s.n++
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
}

func (s *rttStats) avg() float32 { return float32(s.mean) }

func (s *rttStats) variance() float32 {
	if s.n < 2 {
		return 0
	}
	return float32(math.Max(0, s.m2/float64(s.n-1)))
}
