//go:build linux

package netdelay

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The verdict for packet 0x01020304 of queue 7, byte by byte as
// linux/netfilter/nfnetlink_queue.h lays it out.
func TestVerdictLayout(t *testing.T) {
	got := appendVerdict(nil, 7, 0x01020304, verdictAccept)
	want := binary.NativeEndian.AppendUint32(nil, 32)                 // nlmsg_len
	want = binary.NativeEndian.AppendUint16(want, 3<<8|1)             // NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT
	want = binary.NativeEndian.AppendUint16(want, unix.NLM_F_REQUEST) // flags
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0)                       // seq, pid
	want = append(want, unix.AF_UNSPEC, 0, 0, 7)                      // nfgenmsg: family, version, res_id (big-endian)
	want = binary.NativeEndian.AppendUint16(want, 12)                 // nla_len
	want = binary.NativeEndian.AppendUint16(want, 2)                  // NFQA_VERDICT_HDR
	want = append(want, 0, 0, 0, 1, 1, 2, 3, 4)                       // verdict NF_ACCEPT, id, big-endian
	if !bytes.Equal(got, want) {
		t.Errorf("verdict\n got % x\nwant % x", got, want)
	}
	if len(got) != verdictLen {
		t.Errorf("verdict of %d bytes, verdictLen says %d", len(got), verdictLen)
	}
}

func TestConfigLayout(t *testing.T) {
	got := appendConfig(nil, 9, 0x0102, queueConfig{bind: true, maxLen: 8192, flags: flagFailOpen})
	want := binary.NativeEndian.AppendUint32(nil, uint32(16+4+8+12+8+8+8))
	want = binary.NativeEndian.AppendUint16(want, 3<<8|2) // NFQNL_MSG_CONFIG
	want = binary.NativeEndian.AppendUint16(want, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	want = binary.NativeEndian.AppendUint32(want, 9) // seq
	want = append(want, 0, 0, 0, 0)
	want = append(want, unix.AF_UNSPEC, 0, 1, 2)
	attr := func(typ uint16, data ...byte) {
		want = binary.NativeEndian.AppendUint16(want, uint16(4+len(data)))
		want = binary.NativeEndian.AppendUint16(want, typ)
		want = append(want, data...)
		for len(want)%4 != 0 {
			want = append(want, 0)
		}
	}
	attr(1, 1, 0, 0, 0)    // NFQA_CFG_CMD: NFQNL_CFG_CMD_BIND
	attr(2, 0, 0, 0, 0, 1) // NFQA_CFG_PARAMS: copy_range 0, NFQNL_COPY_META
	attr(3, 0, 0, 0x20, 0) // NFQA_CFG_QUEUE_MAXLEN 8192
	attr(4, 0, 0, 0, 1|4)  // NFQA_CFG_MASK: fail-open and GSO
	attr(5, 0, 0, 0, 1)    // NFQA_CFG_FLAGS: fail-open on, GSO off
	if !bytes.Equal(got, want) {
		t.Errorf("config\n got % x\nwant % x", got, want)
	}
}

// packetMsg is a queued packet as the kernel sends it, with a timestamp
// attribute before the packet header so the parser must walk the list.
func packetMsg(id uint32) []byte {
	b := appendHeader(nil, msgPacket, 0, 0, 7)
	b = appendAttr(b, 4, make([]byte, 16)) // NFQA_TIMESTAMP
	b = appendAttr(b, attrPacketHdr, append(binary.BigEndian.AppendUint32(nil, id), 0x08, 0x00, 3))
	return finish(b, 0)
}

func errorMsg(seq uint32, errno unix.Errno) []byte {
	b := native.AppendUint32(nil, 0)
	b = native.AppendUint16(b, unix.NLMSG_ERROR)
	b = native.AppendUint16(b, 0)
	b = native.AppendUint32(b, seq)
	b = native.AppendUint32(b, 0)
	b = native.AppendUint32(b, uint32(-int32(errno)))
	b = append(b, make([]byte, 16)...) // the request's header, echoed
	return finish(b, 0)
}

func TestParseMessages(t *testing.T) {
	datagram := append(packetMsg(42), errorMsg(5, unix.EPERM)...)
	datagram = append(datagram, errorMsg(6, 0)...)
	datagram = append(datagram, packetMsg(43)...)
	var got []message
	if err := parseMessages(datagram, func(m message) { got = append(got, m) }); err != nil {
		t.Fatal(err)
	}
	want := []message{
		{packet: true, id: 42},
		{ack: true, seq: 5, errno: unix.EPERM},
		{ack: true, seq: 6},
		{packet: true, id: 43},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Whatever the bytes, the parser returns an error or messages, never
// panics; every cut of a good datagram is one of these.
func TestParseMalformed(t *testing.T) {
	good := append(packetMsg(42), errorMsg(5, unix.EPERM)...)
	for n := range len(good) {
		parseMessages(good[:n], func(message) {})
	}
	bad := map[string][]byte{
		"header cut":          good[:10],
		"length past the end": append(native.AppendUint32(nil, 200), make([]byte, 12)...),
		"length under header": append(native.AppendUint32(nil, 8), make([]byte, 12)...),
		"no packet header":    finish(appendHeader(nil, msgPacket, 0, 0, 7), 0),
		"attribute too long": finish(append(appendHeader(nil, msgPacket, 0, 0, 7),
			0xff, 0, byte(attrPacketHdr), 0), 0),
	}
	for name, b := range bad {
		if err := parseMessages(b, func(message) {}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestStartRefusesBadArguments(t *testing.T) {
	for _, c := range []struct {
		name    string
		delay   time.Duration
		drop    float64
		netns   string
		wantErr string
	}{
		{"negative delay", -time.Millisecond, 0, "", "negative delay"},
		{"drop share under 0", 0, -5, "", "not between 0 and 100"},
		{"drop share over 100", 0, 101, "", "not between 0 and 100"},
		{"drop share NaN", 0, math.NaN(), "", "not between 0 and 100"},
		{"no such namespace", 0, 0, "/run/netns/no-such-namespace-here", "no such file"},
	} {
		d, err := Start(c.netns, 1, c.delay, c.drop)
		if err == nil {
			d.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
		}
	}
}
