package voice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
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
		{"protobuf field number 2^29", []byte{0x01, 0x08, 0x05, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00}, Protobuf, ErrMalformed},
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
		{"field number 2^29", []byte{0x01, 0x08, 0x05, 0x10, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00}},
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

// FuzzDecodePing decodes arbitrary plaintexts as pings in both formats. A
// protobuf ping must be accepted exactly when the generated udppb parser
// accepts it, with the same timestamp; whatever decodes must be what Peek
// calls a ping, and the ping re-encoded from its timestamp must decode to
// the same timestamp.
func FuzzDecodePing(f *testing.F) {
	for _, fm := range []Format{Legacy, Protobuf} {
		for _, ts := range []uint64{0, 300, 1 << 32, math.MaxUint64} {
			f.Add(byte(fm), AppendPing(nil, fm, ts))
		}
	}
	f.Add(byte(Legacy), []byte{0x20, 0x05, 0xff, 0xff})
	f.Add(byte(Legacy), []byte{0x3f, 0xf8, 0xf8, 0x05})
	ext, _ := proto.Marshal(&udppb.Ping{Timestamp: 987654321, RequestExtendedInformation: true, UserCount: 3})
	f.Add(byte(Protobuf), append([]byte{protoPing}, ext...))
	f.Add(byte(Protobuf), []byte{protoPing, 0x0b, 0x08, 0x01, 0x0c, 0x08, 0x05})
	f.Fuzz(func(t *testing.T, format byte, b []byte) {
		fm := Format(format & 1)
		ts, err := DecodePing(b, fm)
		if fm == Protobuf && len(b) >= 2 && b[0] == protoPing {
			var m udppb.Ping
			pbErr := proto.Unmarshal(b[1:], &m)
			if (pbErr == nil) != (err == nil) {
				t.Fatalf("% x: we say %v, udppb says %v", b, err, pbErr)
			}
			if err == nil && ts != m.GetTimestamp() {
				t.Fatalf("% x: timestamp %#x, udppb reads %#x", b, ts, m.GetTimestamp())
			}
		}
		if err != nil {
			return
		}
		if k := Peek(b, fm); k != KindPing {
			t.Fatalf("% x decodes as a ping but Peek says %v", b, k)
		}
		pkt := AppendPing(nil, fm, ts)
		if back, err := DecodePing(pkt, fm); err != nil || back != ts {
			t.Fatalf("ping %#x re-encoded as % x decodes to %#x, %v", ts, pkt, back, err)
		}
	})
}

// FuzzAnswerServerPing feeds arbitrary datagrams to the server-list ping
// answerer. Whatever arrives, it must never answer with more bytes than it
// received (except Murmur's legacy answer when that is allowed), must keep
// what dst held, and must answer only well-formed requests that udppb reads
// the same way, echoing their timestamp and nothing but the server's own
// numbers.
func FuzzAnswerServerPing(f *testing.F) {
	f.Add(false, legacyPingReq())
	f.Add(true, legacyPingReq())
	for _, pad := range []int{0, 6, 16, 200} {
		req, _ := proto.Marshal(&udppb.Ping{Timestamp: 1<<63 | 0xabcdef, RequestExtendedInformation: true})
		req = protowire.AppendTag(req, 99, protowire.BytesType)
		req = protowire.AppendBytes(req, make([]byte, pad))
		f.Add(false, append([]byte{protoPing}, req...))
	}
	answer, _ := proto.Marshal(&udppb.Ping{Timestamp: 7, RequestExtendedInformation: true, UserCount: 3})
	f.Add(false, append([]byte{protoPing}, answer...))
	f.Add(false, AppendPing(nil, Protobuf, 5))
	f.Fuzz(func(t *testing.T, amplify bool, req []byte) {
		prefix := []byte("dst")
		reply, isPing := AnswerServerPing(prefix, req, testInfo, amplify)
		if !isPing {
			if reply != nil {
				t.Fatalf("% x is not a ping but is answered with % x", req, reply)
			}
			return
		}
		if reply == nil {
			if amplify || len(req) != legacyPingSize {
				t.Fatalf("% x: recognised but not answered", req)
			}
			return
		}
		if !bytes.Equal(reply[:len(prefix)], []byte("dst")) {
			t.Fatalf("% x: dst overwritten: % x", req, reply)
		}
		answer := reply[len(prefix):]
		if len(req) == legacyPingSize && bytes.Equal(req[:4], []byte{0, 0, 0, 0}) {
			if !amplify || len(answer) != legacyPongSize || !bytes.Equal(answer[4:12], req[4:]) {
				t.Fatalf("legacy request % x answered with % x (amplify %v)", req, answer, amplify)
			}
			return
		}
		if len(answer) > len(req) {
			t.Fatalf("% x (%d bytes) answered with %d bytes", req, len(req), len(answer))
		}
		checkPingAnswer(t, req, answer)
	})
}

// checkPingAnswer checks a protobuf server-list answer against its request
// as the generated parser reads both.
func checkPingAnswer(t *testing.T, req, answer []byte) {
	t.Helper()
	var in, out udppb.Ping
	if err := proto.Unmarshal(req[1:], &in); err != nil || !in.GetRequestExtendedInformation() {
		t.Fatalf("answered % x, which udppb reads as %v, %v", req, &in, err)
	}
	if in.GetServerVersionV2() != 0 || in.GetUserCount() != 0 || in.GetMaxUserCount() != 0 || in.GetMaxBandwidthPerUser() != 0 {
		t.Fatalf("answered % x, which is an answer itself: %v", req, &in)
	}
	if answer[0] != protoPing {
		t.Fatalf("answer % x is not a ping", answer)
	}
	if err := proto.Unmarshal(answer[1:], &out); err != nil {
		t.Fatalf("answer % x does not parse: %v", answer, err)
	}
	if out.GetTimestamp() != in.GetTimestamp() || out.GetRequestExtendedInformation() {
		t.Fatalf("request %v answered with %v", &in, &out)
	}
	for _, field := range []struct{ got, want uint64 }{
		{out.GetServerVersionV2(), testInfo.Version},
		{uint64(out.GetUserCount()), uint64(testInfo.Users)},
		{uint64(out.GetMaxUserCount()), uint64(testInfo.MaxUsers)},
		{uint64(out.GetMaxBandwidthPerUser()), uint64(testInfo.MaxBandwidth)},
	} {
		if field.got != 0 && field.got != field.want {
			t.Fatalf("answer %v: %d where the server has %d", &out, field.got, field.want)
		}
	}
}
