package signal

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}`
	m, err := Parse([]byte(good))
	if err != nil || m.Type != Offer || !strings.HasPrefix(m.SDP, "v=0") {
		t.Fatalf("Parse(good) = %+v, %v", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"type":"answer","sdp":"v=0"}`, `type "answer"`},
		{`{"type":"offer"}`, "offer without sdp"},
		{`{"type":"offer","sdp":"hello"}`, "does not start with v=0"},
		{`{"type":"offer","sdp":"v=0","extra":1}`, "not the expected JSON object"},
		{`{"type":"offer","sdp":"v=0"} {}`, "data after"},
		{`[1,2]`, "not the expected JSON object"},
		{"\xff\xfe", "not UTF-8"},
		{``, "not the expected JSON object"},
		{`{"type":"offer","sdp":"v=0` + strings.Repeat("a", MaxSize) + `"}`, "over the limit"},
	} {
		if _, err := Parse([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	b := Marshal(Message{Type: Answer, SDP: "v=0\r\n"})
	if string(b) != `{"type":"answer","sdp":"v=0\r\n"}` {
		t.Fatalf("Marshal = %s", b)
	}
}

// FuzzParse: whatever a browser sends, Parse returns an offer that
// starts with v=0 or an error, and never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"type":"offer","sdp":"v=0\r\n"}`))
	f.Add([]byte(`{"type":"error","message":"x"}`))
	f.Add([]byte(`{"type":"offer","sdp":"v=0","sdp":"v=1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != (Message{}) {
				t.Fatalf("error %v with a message %+v", err, m)
			}
			return
		}
		if m.Type != Offer || !strings.HasPrefix(m.SDP, "v=0") {
			t.Fatalf("accepted %+v", m)
		}
	})
}
