package voice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/udppb"
)

func TestPingRoundTrip(t *testing.T) {
	for _, ts := range []uint64{0, 1, 127, 300, 1 << 32, 1<<63 | 12345, math.MaxUint64} {
		for _, f := range []Format{Legacy, Protobuf} {
			pkt := AppendPing(nil, f, ts)
			if k := Peek(pkt, f); k != KindPing {
				t.Errorf("%v ping %#x: Peek = %v", f, ts, k)
			}
			got, err := DecodePing(pkt, f)
			if err != nil || got != ts {
				t.Errorf("%v ping %#x: % x decodes to %#x, %v", f, ts, pkt, got, err)
			}
			if f == Protobuf {
				var m udppb.Ping
				if err := proto.Unmarshal(pkt[1:], &m); err != nil || m.GetTimestamp() != ts {
					t.Errorf("udppb reads % x as %v, %v", pkt, &m, err)
				}
			}
		}
	}
	// Exact bytes.
	if got := AppendPing(nil, Legacy, 300); !bytes.Equal(got, []byte{0x20, 0x81, 0x2c}) {
		t.Errorf("legacy ping 300 = % x", got)
	}
	if got := AppendPing(nil, Protobuf, 300); !bytes.Equal(got, []byte{0x01, 0x08, 0xac, 0x02}) {
		t.Errorf("protobuf ping 300 = % x", got)
	}
	// Timestamp 0 still yields more than the type byte (Mumble rejects 1-byte plaintexts).
	if got := AppendPing(nil, Protobuf, 0); !bytes.Equal(got, []byte{0x01, 0x08, 0x00}) {
		t.Errorf("protobuf ping 0 = % x", got)
	}
}

func TestDecodePingFromUDPPB(t *testing.T) {
	enc, err := proto.Marshal(&udppb.Ping{Timestamp: 987654321, RequestExtendedInformation: true, UserCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := DecodePing(append([]byte{1}, enc...), Protobuf)
	if err != nil || ts != 987654321 {
		t.Fatalf("DecodePing = %d, %v", ts, err)
	}
}

func TestDecodePingRejects(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		f    Format
		err  error
	}{
		{"legacy empty", nil, Legacy, ErrTruncated},
		{"legacy header only", []byte{0x20}, Legacy, ErrTruncated},
		{"legacy audio", []byte{0x80, 0x01, 0x01, 0xaa}, Legacy, ErrNotPing},
		{"legacy truncated varint", []byte{0x20, 0xf0, 0x00}, Legacy, ErrTruncated},
		{"protobuf type byte only", []byte{0x01}, Protobuf, ErrTruncated},
		{"protobuf audio", []byte{0x00, 0x2a, 0x01, 0x01}, Protobuf, ErrNotPing},
		{"protobuf malformed", []byte{0x01, 0x08}, Protobuf, ErrMalformed},
		{"protobuf bad wire type", []byte{0x01, 0x0f}, Protobuf, ErrMalformed},
	}
	for _, tc := range cases {
		if _, err := DecodePing(tc.b, tc.f); !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
	// Legacy: bytes after the varint are tolerated, as Mumble 1.5 tolerates them.
	if ts, err := DecodePing([]byte{0x20, 0x05, 0xff, 0xff}, Legacy); err != nil || ts != 5 {
		t.Errorf("legacy ping with padding: %d, %v", ts, err)
	}
}

func TestPingAllocs(t *testing.T) {
	buf := make([]byte, 0, 16)
	for _, f := range []Format{Legacy, Protobuf} {
		pkt := AppendPing(nil, f, 1<<62)
		allocs := testing.AllocsPerRun(100, func() {
			buf = AppendPing(buf[:0], f, 1<<62)
			if _, err := DecodePing(pkt, f); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: ping codec allocates %v times", f, allocs)
		}
	}
}

var testInfo = ServerInfo{
	Version:      control.MakeVersion(1, 5, 735),
	Users:        250,
	MaxUsers:     1000,
	MaxBandwidth: 558000,
}

func legacyPingReq() []byte {
	return []byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
}

func TestAnswerServerPingLegacy(t *testing.T) {
	req := legacyPingReq()

	reply, isPing := AnswerServerPing(nil, req, testInfo, false)
	if !isPing || reply != nil {
		t.Fatalf("without amplification: reply % x, isPing %v; want nil, true", reply, isPing)
	}

	prefix := []byte{0xee}
	reply, isPing = AnswerServerPing(prefix, req, testInfo, true)
	if !isPing {
		t.Fatal("legacy ping not recognised")
	}
	want := []byte{0xee,
		0x00, 0x01, 0x05, 0xff, // 1.5.735 as v1, patch clamped
		1, 2, 3, 4, 5, 6, 7, 8, // ident verbatim
		0, 0, 0, 250,
		0, 0, 0x03, 0xe8,
		0, 0x08, 0x83, 0xb0,
	}
	if !bytes.Equal(reply, want) {
		t.Fatalf("reply % x\nwant  % x", reply, want)
	}
	if binary.BigEndian.Uint32(reply[21:]) != testInfo.MaxBandwidth {
		t.Fatal("bandwidth misplaced")
	}
}

func TestAnswerServerPingNotPings(t *testing.T) {
	pingReq, _ := proto.Marshal(&udppb.Ping{Timestamp: 5})
	withInfo, _ := proto.Marshal(&udppb.Ping{Timestamp: 5, RequestExtendedInformation: true, ServerVersionV2: 1})
	withCount, _ := proto.Marshal(&udppb.Ping{RequestExtendedInformation: true, UserCount: 1})
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"12 bytes, nonzero prefix", []byte{0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"12 bytes, nonzero first byte", []byte{0x80, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"11 zero bytes", make([]byte, 11)},
		{"13 zero bytes", make([]byte, 13)},
		{"legacy audio", []byte{0x80, 0x05, 0x01, 0xaa}},
		{"protobuf audio", unhex(t, removeSpaces(murmurShout))},
		{"protobuf type byte only", []byte{0x01}},
		{"protobuf ping without request", append([]byte{1}, pingReq...)},
		{"protobuf ping carrying server version", append([]byte{1}, withInfo...)},
		{"protobuf ping carrying user count", append([]byte{1}, withCount...)},
		{"malformed protobuf", []byte{0x01, 0x10}},
		{"request flag false", []byte{0x01, 0x08, 0x05, 0x10, 0x00}},
		{"request flag wrong wire type", []byte{0x01, 0x08, 0x05, 0x15, 1, 0, 0, 0}},
	}
	for _, tc := range cases {
		for _, amp := range []bool{false, true} {
			if reply, isPing := AnswerServerPing(nil, tc.b, testInfo, amp); isPing || reply != nil {
				t.Errorf("%s (amplify %v): reply % x, isPing %v", tc.name, amp, reply, isPing)
			}
		}
	}
}

func TestAnswerServerPingProtobuf(t *testing.T) {
	full := &udppb.Ping{
		ServerVersionV2:     testInfo.Version,
		UserCount:           testInfo.Users,
		MaxUserCount:        testInfo.MaxUsers,
		MaxBandwidthPerUser: testInfo.MaxBandwidth,
	}
	// Sizes of the answer fields, in order: version 8, users 3, max users 3, bandwidth 4.
	cases := []struct {
		name    string
		ts      uint64
		padding int // extra bytes of an unknown field in the request
		fields  int // how many answer fields must fit
	}{
		{"stock 1.5 client (64-bit timestamp)", 1<<63 | 0xabcdef, 0, 0},
		{"small timestamp", 1, 0, 0},
		{"room for version", 1, 6, 1},
		{"room for version, users", 1, 9, 2},
		{"room for version, users, almost max users", 1, 11, 2},
		{"room for three", 1, 12, 3},
		{"room for all", 1, 16, 4},
		{"lots of room", 1, 200, 4},
		{"zero timestamp", 0, 16, 4},
	}
	for _, tc := range cases {
		m := &udppb.Ping{Timestamp: tc.ts, RequestExtendedInformation: true}
		req, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		req = append([]byte{1}, req...)
		if tc.padding > 0 {
			// Field 100, length-delimited: 2-byte tag, 1-2 byte length.
			pad := make([]byte, tc.padding)
			pad = append([]byte{0xa2, 0x06}, pad...)
			l := tc.padding - 3
			if l >= 128 {
				l--
				pad[2], pad[3] = byte(l)|0x80, byte(l>>7)
			} else {
				pad[2] = byte(l)
			}
			req = append(req, pad[:tc.padding]...)
		}
		var check udppb.Ping
		if err := proto.Unmarshal(req[1:], &check); err != nil {
			t.Fatalf("%s: bad test request: %v", tc.name, err)
		}

		reply, isPing := AnswerServerPing([]byte{0xee}, req, testInfo, false)
		if !isPing {
			t.Fatalf("%s: not recognised", tc.name)
		}
		if reply[0] != 0xee {
			t.Fatalf("%s: dst not preserved", tc.name)
		}
		reply = reply[1:]
		if len(reply) > len(req) {
			t.Errorf("%s: reply of %d bytes for a %d-byte request", tc.name, len(reply), len(req))
		}
		if reply[0] != 1 {
			t.Fatalf("%s: reply type %#x", tc.name, reply[0])
		}
		var got udppb.Ping
		if err := proto.Unmarshal(reply[1:], &got); err != nil {
			t.Fatalf("%s: reply % x: %v", tc.name, reply, err)
		}
		want := &udppb.Ping{Timestamp: tc.ts}
		if tc.fields > 0 {
			want.ServerVersionV2 = full.ServerVersionV2
		}
		if tc.fields > 1 {
			want.UserCount = full.UserCount
		}
		if tc.fields > 2 {
			want.MaxUserCount = full.MaxUserCount
		}
		if tc.fields > 3 {
			want.MaxBandwidthPerUser = full.MaxBandwidthPerUser
		}
		if !proto.Equal(&got, want) {
			t.Errorf("%s: request %d bytes, reply %v, want %v", tc.name, len(req), &got, want)
		}
		// Our own decoder reads the timestamp back.
		if ts, err := DecodePing(reply, Protobuf); err != nil || ts != tc.ts {
			t.Errorf("%s: DecodePing(reply) = %d, %v", tc.name, ts, err)
		}
	}
}

func TestAnswerServerPingZeroFieldsOmitted(t *testing.T) {
	req := append([]byte{1}, unhex(t, "0801"+"1001"+"a20610"+"00000000000000000000000000000000")...)
	info := ServerInfo{Version: testInfo.Version, Users: 0, MaxUsers: 10}
	reply, isPing := AnswerServerPing(nil, req, info, false)
	if !isPing {
		t.Fatal("not recognised")
	}
	var got udppb.Ping
	if err := proto.Unmarshal(reply[1:], &got); err != nil {
		t.Fatal(err)
	}
	if got.GetServerVersionV2() != info.Version || got.GetUserCount() != 0 || got.GetMaxUserCount() != 10 {
		t.Fatalf("reply %v", &got)
	}
}

func TestAnswerServerPingAllocs(t *testing.T) {
	req := append([]byte{1}, unhex(t, "0801"+"1001"+"a20610"+"00000000000000000000000000000000")...)
	legacy := legacyPingReq()
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		AnswerServerPing(buf[:0], req, testInfo, false)
		AnswerServerPing(buf[:0], legacy, testInfo, true)
	})
	if allocs != 0 {
		t.Errorf("AnswerServerPing allocates %v times", allocs)
	}
}
