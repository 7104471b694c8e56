package server

// Prometheus metrics. The voice path only adds to its atomic counters; the
// collector reads them (through Stats) when /metrics is scraped, so
// metrics cost the hot path nothing beyond those adds.

import (
	"strings"
	"time"

	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plenum-voice/plenum/voice"
)

// metricsCollector turns Stats into Prometheus metrics at scrape time.
type metricsCollector struct {
	s *Server

	users, channels, connections *prometheus.Desc

	voiceReceived, voiceReceivedBytes *prometheus.Desc
	voiceForwarded, voiceSentBytes    *prometheus.Desc
	voiceDropped, forwardDelay        *prometheus.Desc

	cryptPackets, cryptResyncs *prometheus.Desc

	connectionsAccepted, connectFailures, authFailures *prometheus.Desc
	queueOverflows, rateLimited                        *prometheus.Desc
	autobans, unauthenticated                          *prometheus.Desc

	floorTurns, floorTalk, floorUserTalk *prometheus.Desc

	webUsers, webMixEncodes, webMixFrames, webMixLate *prometheus.Desc
}

func newMetricsCollector(s *Server) *metricsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("plenum_"+name, help, labels, nil)
	}
	return &metricsCollector{
		s:           s,
		users:       d("users", "Authenticated users connected."),
		channels:    d("channels", "Channels, the root channel included."),
		connections: d("connections", "Open client connections, authenticated or not."),

		voiceReceived:      d("voice_packets_received_total", "Valid voice packets received from speakers (UDP and tunnel)."),
		voiceReceivedBytes: d("voice_bytes_received_total", "Size of the valid voice packets received (plaintext Mumble voice packets)."),
		voiceForwarded:     d("voice_packets_forwarded_total", "Voice packet copies sent to listeners (tcp: queued for the TCP tunnel).", "transport"),
		voiceSentBytes:     d("voice_bytes_sent_total", "Size of the voice packet copies sent to listeners (plaintext Mumble voice packets).", "transport"),
		voiceDropped:       d("voice_dropped_total", "Voice packets or copies dropped, by reason.", "reason"),
		forwardDelay:       d("voice_forward_delay_seconds", "Time UDP voice spent in the server, from its arrival in the kernel until its copies were queued for sending."),

		cryptPackets: d("crypt_packets_total", "UDP packets from clients by decrypt result (good: in order; late: out of order; lost: never arrived).", "result"),
		cryptResyncs: d("crypt_resyncs_total", "UDP crypt nonce resynchronisations with clients."),

		connectionsAccepted: d("connections_total", "TCP connections accepted."),
		connectFailures:     d("connect_failures_total", "Connections refused or failed before authenticating, by reason (no_authentication: every connection that ended without logging in, which autoban counts; tls_handshake is part of it).", "reason"),
		autobans:            d("autobans_total", "Addresses autobanned for too many failed connection attempts."),
		unauthenticated:     d("unauthenticated_connections", "Connections that have not authenticated yet."),
		authFailures:        d("auth_failures_total", "Authentications refused, by Mumble's reject type.", "reason"),
		queueOverflows:      d("control_queue_overflows_total", "Clients disconnected because their control message queue overflowed (they stopped reading)."),
		rateLimited:         d("control_messages_rate_limited_total", "Control messages dropped by the message rate limit."),

		floorTurns:    d("floor_turns_total", "Turns on the floor that ended, by hall.", "channel"),
		floorTalk:     d("floor_talk_seconds_total", "Time the floor was held, by hall, counted when a turn ends.", "channel"),
		floorUserTalk: d("floor_user_talk_seconds_total", "Time registered users held the floor, by hall and user name; unregistered speakers are counted only in plenum_floor_talk_seconds_total.", "channel", "user"),

		webUsers:      d("web_users", "Browsers connected with their voice in the listener mix (docs/WEB.md)."),
		webMixEncodes: d("web_mix_encodes_total", "Opus encodes of the browsers' mix: one per distinct set of speakers heard in a tick."),
		webMixFrames:  d("web_mix_frames_total", "Mixed 20 ms frames written to browsers."),
		webMixLate:    d("web_mix_late_ticks_total", "Ticks of the browsers' mix given up because its clock fell more than five ticks behind (a busy machine)."),
	}
}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Stats()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(m.users, st.Users)
	gauge(m.channels, st.Channels)
	gauge(m.connections, st.Connections)

	counter(m.voiceReceived, st.VoiceReceived)
	counter(m.voiceReceivedBytes, st.VoiceReceivedBytes)
	counter(m.voiceForwarded, st.VoiceForwardedUDP, "udp")
	counter(m.voiceForwarded, st.VoiceForwardedTunnel, "tcp")
	counter(m.voiceSentBytes, st.VoiceSentBytesUDP, "udp")
	counter(m.voiceSentBytes, st.VoiceSentBytesTunnel, "tcp")
	v := m.s.voice.Counters()
	counter(m.voiceForwarded, v.Copies[voice.Web], "web")
	counter(m.voiceSentBytes, v.CopyBytes[voice.Web], "web")
	mix := m.s.WebMixStats()
	gauge(m.webUsers, m.s.WebListeners())
	counter(m.webMixEncodes, mix.Encodes)
	counter(m.webMixFrames, mix.Frames)
	counter(m.webMixLate, mix.Late)
	for _, drop := range []struct {
		reason string
		n      uint64
	}{
		{"silenced", st.VoiceSilenced},
		{"over_bandwidth", st.VoiceOverLimit},
		{"tunnel_queue_full", st.TunnelFull},
		{"tunnel_late", st.TunnelLate},
		{"socket_backlog", st.UDPStale},
		{"send_failed", st.UDPSendFailed},
		{"unmatched", st.UDPUnmatched},
		{"replayed", st.UDPReplayed},
		{"bad_mac", st.UDPBadMAC},
		{"oversized", st.UDPOversized},
		{"undersized", st.UDPUndersized},
	} {
		counter(m.voiceDropped, drop.n, drop.reason)
	}

	ch <- delayMetric(m.forwardDelay, st.ForwardDelay)

	counter(m.cryptPackets, st.CryptGood, "good")
	counter(m.cryptPackets, st.CryptLate, "late")
	counter(m.cryptPackets, st.CryptLost, "lost")
	counter(m.cryptResyncs, st.CryptResync)

	counter(m.connectionsAccepted, st.ConnectionsAccepted)
	counter(m.connectFailures, st.TLSFailures, "tls_handshake")
	counter(m.connectFailures, st.Banned, "banned")
	counter(m.connectFailures, st.ConnRefusedBanned, "autobanned")
	counter(m.connectFailures, st.ConnRefusedPending, "unauthenticated_cap")
	counter(m.connectFailures, st.ConnFailed, "no_authentication")
	counter(m.autobans, st.Autobans)
	gauge(m.unauthenticated, st.Unauthenticated)
	for t, n := range st.Rejects {
		if name, ok := mumblepb.Reject_RejectType_name[int32(t)]; ok && t != int(mumblepb.Reject_None) {
			counter(m.authFailures, n, snakeCase(name))
		}
	}
	counter(m.queueOverflows, st.ControlQueueOverflows)
	counter(m.rateLimited, st.ControlRateLimited)

	seconds := func(d *prometheus.Desc, v time.Duration, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v.Seconds(), labels...)
	}
	for _, h := range st.FloorTalk {
		counter(m.floorTurns, h.Turns, h.Hall)
		seconds(m.floorTalk, h.Total, h.Hall)
		for name, d := range h.Registered {
			seconds(m.floorUserTalk, d, h.Hall, name)
		}
	}
}

// snakeCase turns a protobuf enum name such as "WrongUserPW" into a label
// value such as "wrong_user_pw".
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 && !(name[i-1] >= 'A' && name[i-1] <= 'Z') {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// delayMetric converts a DelayHistogram into a Prometheus histogram, whose
// buckets are cumulative and in seconds.
func delayMetric(d *prometheus.Desc, h voice.DelayHistogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, bound := range h.Bounds {
		cum += h.Counts[i]
		buckets[bound.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Total(), h.Sum.Seconds(), buckets)
}
