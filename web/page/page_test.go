package page

import (
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// TestEmbedded: the page and every file it loads are embedded; the log
// gives their size.
func TestEmbedded(t *testing.T) {
	index, err := fs.ReadFile(FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, name := range []string{"index.html", "style.css", "mumble.js", "app.js"} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatalf("%s is not embedded: %v", name, err)
		}
		if name != "index.html" && !strings.Contains(string(index), `"`+name+`"`) {
			t.Errorf("index.html does not load %s", name)
		}
		total += len(b)
	}
	t.Logf("the embedded page is %d bytes", total)
}

// runMumbleJS runs mumble.js in node with script after it and returns
// what the script prints. It skips the test without node.
func runMumbleJS(t *testing.T, script string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: mumble.js is checked in node")
	}
	src, err := fs.ReadFile(FS, "mumble.js")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "-e", string(src)+"\n"+script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestMumbleJSEncodes: frames mumble.js writes are what Go's protobuf
// reads.
func TestMumbleJSEncodes(t *testing.T) {
	out := runMumbleJS(t, `
const hex = (f) => Buffer.from(f).toString("hex");
console.log([
  hex(Mumble.encode("Version", { version_v1: 0x10500, version_v2: 1 * 2 ** 48 + 5 * 2 ** 32, release: "Plenum web", os: "Browser" })),
  hex(Mumble.encode("Authenticate", { username: "Jörg 🎤", password: "pw", tokens: ["a", "b"], opus: true })),
  hex(Mumble.encode("UserState", { session: 300, channel_id: 70000, self_mute: true, self_deaf: false })),
  hex(Mumble.encode("TextMessage", { channel_id: [3], session: [1, 2], message: "<b>hi</b>" })),
  hex(Mumble.encode("Ping", { timestamp: 1765000000000 })),
].join("\n"));`)
	lines := strings.Split(out, "\n")
	want := []proto.Message{
		&mumblepb.Version{VersionV1: proto.Uint32(0x10500), VersionV2: proto.Uint64(1<<48 | 5<<32), Release: proto.String("Plenum web"), Os: proto.String("Browser")},
		&mumblepb.Authenticate{Username: proto.String("Jörg 🎤"), Password: proto.String("pw"), Tokens: []string{"a", "b"}, Opus: proto.Bool(true)},
		&mumblepb.UserState{Session: proto.Uint32(300), ChannelId: proto.Uint32(70000), SelfMute: proto.Bool(true), SelfDeaf: proto.Bool(false)},
		&mumblepb.TextMessage{ChannelId: []uint32{3}, Session: []uint32{1, 2}, Message: proto.String("<b>hi</b>")},
		&mumblepb.Ping{Timestamp: proto.Uint64(1765000000000)},
	}
	if len(lines) != len(want) {
		t.Fatalf("node printed %q", out)
	}
	for i, line := range lines {
		frame, err := hex.DecodeString(line)
		if err != nil || len(frame) < control.HeaderSize {
			t.Fatalf("frame %d: %q", i, line)
		}
		typ := control.Type(uint16(frame[0])<<8 | uint16(frame[1]))
		length := int(frame[2])<<24 | int(frame[3])<<16 | int(frame[4])<<8 | int(frame[5])
		if length != len(frame)-control.HeaderSize {
			t.Errorf("frame %d: length %d for a payload of %d", i, length, len(frame)-control.HeaderSize)
		}
		got, err := control.Unmarshal(typ, frame[control.HeaderSize:])
		if err != nil {
			t.Fatalf("frame %d (%v): %v", i, typ, err)
		}
		if !proto.Equal(got, want[i]) {
			t.Errorf("frame %d: Go reads %v, want %v", i, got, want[i])
		}
	}
}

// TestMumbleJSDecodes: frames Go writes (packed repeated fields, fields
// mumble.js does not know, a float) are read by mumble.js, and a
// malformed frame is refused with an exception, not misread.
func TestMumbleJSDecodes(t *testing.T) {
	msgs := []proto.Message{
		&mumblepb.UserState{Session: proto.Uint32(7), Name: proto.String("Ünal"), ChannelId: proto.Uint32(0), Suppress: proto.Bool(true), Recording: proto.Bool(true),
			Texture: []byte{1, 2, 3}, ListeningChannelAdd: []uint32{4, 5}, Comment: proto.String("on the web (browser)")},
		&mumblepb.ChannelState{ChannelId: proto.Uint32(9), Parent: proto.Uint32(0), Name: proto.String("Hall"), Links: []uint32{1, 2, 300}, Position: proto.Int32(-2)},
		&mumblepb.TextMessage{Actor: proto.Uint32(1), Session: []uint32{2}, Message: proto.String("You are number 1 in the queue.")},
		&mumblepb.Ping{Timestamp: proto.Uint64(5), UdpPingAvg: proto.Float32(1.5)},
	}
	var frames []string
	for _, m := range msgs {
		frame, err := control.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, hex.EncodeToString(frame))
	}
	js, _ := json.Marshal(frames)
	out := runMumbleJS(t, `
const frames = `+string(js)+`.map((h) => new Uint8Array(Buffer.from(h, "hex")).buffer);
const out = frames.map((f) => Mumble.decode(f));
const bad = [];
for (const h of ["0009", "000900000005", "00090000000108", "0009000000020a05", "0009000000020009"]) {
  try { Mumble.decode(new Uint8Array(Buffer.from(h, "hex")).buffer); bad.push("accepted " + h); } catch (e) { bad.push("refused"); }
}
console.log(JSON.stringify({ out, bad }));`)
	var got struct {
		Out []struct {
			Name string         `json:"name"`
			Msg  map[string]any `json:"msg"`
		} `json:"out"`
		Bad []string `json:"bad"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	check := func(i int, name string, want map[string]any) {
		t.Helper()
		if got.Out[i].Name != name {
			t.Errorf("frame %d read as %q, want %s", i, got.Out[i].Name, name)
		}
		for k, v := range want {
			g, _ := json.Marshal(got.Out[i].Msg[k])
			w, _ := json.Marshal(v)
			if string(g) != string(w) {
				t.Errorf("%s.%s = %s, want %s", name, k, g, w)
			}
		}
	}
	check(0, "UserState", map[string]any{"session": 7, "name": "Ünal", "channel_id": 0, "suppress": true, "recording": true, "comment": "on the web (browser)"})
	check(1, "ChannelState", map[string]any{"channel_id": 9, "parent": 0, "name": "Hall", "links": []int{1, 2, 300}})
	check(2, "TextMessage", map[string]any{"actor": 1, "session": []int{2}, "message": "You are number 1 in the queue."})
	check(3, "Ping", map[string]any{"timestamp": 5})
	for i, b := range got.Bad {
		if b != "refused" {
			t.Errorf("malformed frame %d: %s", i, b)
		}
	}
}
