package client

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/internal/murmurtest"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

const murmurd = murmurtest.Path

// murmurSuperUserPassword is SuperUser's password on the test's Murmur.
const murmurSuperUserPassword = "murmur-su"

// TestMurmur runs the client against Debian's Murmur 1.3.4, the reference
// implementation, so that the client (which the server's tests trust) is
// known to speak the real protocol. Murmur 1.3.4 announces 1.3.4, so voice
// uses the legacy UDP format here.
//
// PLENUM_MURMUR_CMD runs another Murmur instead: a command prefix to which
// "-fg -ini FILE" is appended, e.g. Murmur 1.5 from a Debian 13 chroot made
// by scripts/trixie-chroot.sh (whose "run" bind-mounts /tmp, where the ini
// and database live):
//
//	PLENUM_MURMUR_CMD="scripts/trixie-chroot.sh run /usr/bin/mumble-server" \
//	PLENUM_MURMUR_VERSION=1.5.735 go test -run Murmur ./client/
//
// PLENUM_MURMUR_VERSION (x.y.z), if set, is the version that Murmur must
// announce. A server announcing 1.5.0 or later must get protobuf UDP from
// this (1.5) client.
func TestMurmur(t *testing.T) {
	if testing.Short() {
		t.Skip("starts murmurd")
	}
	command, wantVersion := murmurCommand(t)
	addr := startMurmur(t, command)

	t.Run("join", func(t *testing.T) {
		a, b := murmurPair(t, addr, "join", Config{}, Config{})
		sv := a.ServerVersion()
		t.Logf("Murmur announces %s", control.VersionString(sv))
		if sv != wantVersion {
			t.Errorf("server version %s, want %s", control.VersionString(sv), control.VersionString(wantVersion))
		}
		wantFormat := voice.Legacy
		if sv >= control.ProtobufUDPVersion {
			wantFormat = voice.Protobuf
		}
		if f := a.VoiceFormat(); f != wantFormat {
			t.Errorf("voice format %v with server %s, want %v", f, control.VersionString(sv), wantFormat)
		}
		if root, ok := a.Channels()[0]; !ok || root.GetName() == "" {
			t.Errorf("root channel missing: %v", a.Channels())
		}
		err := b.Wait(testCtx(t), func(c *Client) bool {
			u := c.Users()[a.Session()]
			return u != nil && u.GetName() == "join-a" && u.GetChannelId() == 0
		})
		if err != nil {
			t.Errorf("B never saw A: %v (users %v)", err, b.Users())
		}
		if u := a.Users()[b.Session()]; u.GetName() != "join-b" {
			t.Errorf("A's view of B: %v", u)
		}
	})

	t.Run("text", func(t *testing.T) {
		got := make(chan *mumblepb.TextMessage, 4)
		a, b := murmurPair(t, addr, "text", Config{}, Config{OnMessage: func(ty control.Type, m proto.Message) {
			if tm, ok := m.(*mumblepb.TextMessage); ok {
				got <- tm
			}
		}})
		if err := a.SendText("hello <b>B</b>", []uint32{b.Session()}, nil, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case tm := <-got:
			if tm.GetMessage() != "hello <b>B</b>" || tm.GetActor() != a.Session() {
				t.Errorf("B got %v", tm)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("text message did not arrive")
		}
	})

	t.Run("udp", func(t *testing.T) {
		audio := make(chan *AudioPacket, 64)
		a, b := murmurPair(t, addr, "udp", Config{}, Config{OnAudio: func(p *AudioPacket) { audio <- p }})
		for _, c := range []*Client{a, b} {
			// Murmur learns a client's UDP address from its first packet that
			// decrypts; B needs that to be sent voice over UDP at all.
			if err := c.WaitUDP(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}
		p := talk(t, a, 0, audio)
		if !p.ViaUDP || p.Context != voice.ContextNormal {
			t.Errorf("B got %+v, want context 0 over UDP", p)
		}
		if p.Sender != a.Session() {
			t.Errorf("sender %d, want A's session %d", p.Sender, a.Session())
		}
	})

	// A 1.5 client and a 1.3.4 one in the same channel: a 1.5 Murmur must
	// translate between protobuf and legacy UDP in both directions.
	t.Run("mixed", func(t *testing.T) {
		audioA := make(chan *AudioPacket, 64)
		audioB := make(chan *AudioPacket, 64)
		a, b := murmurPair(t, addr, "mixed",
			Config{OnAudio: func(p *AudioPacket) { audioA <- p }},
			Config{Version: control.MakeVersion(1, 3, 4), OnAudio: func(p *AudioPacket) { audioB <- p }})
		if f := b.VoiceFormat(); f != voice.Legacy {
			t.Errorf("1.3.4 client uses voice format %v, want legacy", f)
		}
		for _, c := range []*Client{a, b} {
			if err := c.WaitUDP(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}
		for _, dir := range []struct {
			name     string
			from, to *Client
			audio    chan *AudioPacket
		}{{"1.5 to 1.3.4", a, b, audioB}, {"1.3.4 to 1.5", b, a, audioA}} {
			p := talk(t, dir.from, 0, dir.audio)
			if !p.ViaUDP || p.Context != voice.ContextNormal || p.Sender != dir.from.Session() {
				t.Errorf("%s: got %+v, want context 0 from session %d over UDP", dir.name, p, dir.from.Session())
			}
		}
	})

	t.Run("tunnel", func(t *testing.T) {
		audio := make(chan *AudioPacket, 64)
		a, _ := murmurPair(t, addr, "tcp", Config{DisableUDP: true},
			Config{DisableUDP: true, OnAudio: func(p *AudioPacket) { audio <- p }})
		p := talk(t, a, 0, audio)
		if p.ViaUDP || p.Context != voice.ContextNormal || p.Sender != a.Session() {
			t.Errorf("B got %+v, want context 0 from A through the tunnel", p)
		}
	})

	// The ban editor's round trip: what SetBanList sends, Murmur stores and
	// BanList reads back as the editor would show it (IPv4 with its IPv4
	// mask, IPv6 with 128-bit masks, start and duration unchanged).
	t.Run("bans", func(t *testing.T) {
		su, err := Dial(testCtx(t), Config{Address: addr, Username: "SuperUser", Password: murmurSuperUserPassword})
		if err != nil {
			t.Fatal(err)
		}
		defer su.Close()
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		want := []Ban{
			{Address: netip.MustParseAddr("2001:db8:1:2::"), Bits: 64, Reason: "flood", Start: start},
			{Address: netip.MustParseAddr("192.0.2.77"), Bits: 24, Name: "troll", Hash: strings.Repeat("ab", 20),
				Reason: "spam", Start: start.Add(time.Hour), Duration: 90 * time.Minute},
		}
		if err := su.SetBanList(want); err != nil {
			t.Fatal(err)
		}
		got, err := su.BanList(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("ban list read back:\n got %+v\nwant %+v", got, want)
		}
		plain, _ := murmurPair(t, addr, "bans", Config{}, Config{})
		if _, err := plain.BanList(testCtx(t)); !errors.Is(err, ErrBanListDenied) {
			t.Errorf("ban list without Ban permission: %v, want ErrBanListDenied", err)
		}
		if err := su.SetBanList(nil); err != nil {
			t.Fatal(err)
		}
		if got, err := su.BanList(testCtx(t)); err != nil || len(got) != 0 {
			t.Errorf("after saving an empty list: %+v, %v", got, err)
		}
	})

	t.Run("whisper", func(t *testing.T) {
		audio := make(chan *AudioPacket, 64)
		a, b := murmurPair(t, addr, "whisper", Config{}, Config{OnAudio: func(p *AudioPacket) { audio <- p }})
		if err := a.SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{Session: []uint32{b.Session()}}); err != nil {
			t.Fatal(err)
		}
		// Murmur handles one connection's messages in order, so once the
		// ping is answered the target exists; voice sent earlier to an
		// unknown target would be dropped.
		if _, err := a.Ping(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		p := talk(t, a, 1, audio)
		if p.Context != voice.ContextWhisper || p.Sender != a.Session() {
			t.Errorf("B got %+v, want a whisper (context 2) from A", p)
		}
	})
}

// talk sends numbered Opus frames from a to target until one arrives on
// audio (UDP can drop the first packets), checks that it arrived intact and
// returns it.
func talk(t *testing.T, a *Client, target uint32, audio <-chan *AudioPacket) *AudioPacket {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond) // the pace of a real talker
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for frame := uint64(1); ; frame++ {
		if err := a.SendAudio(target, frame, opusFrame(frame), false, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-audio:
			if !bytes.Equal(p.Opus, opusFrame(p.Frame)) || p.Frame == 0 || p.Frame > frame {
				t.Errorf("payload or frame mangled: %+v", p)
			}
			return p
		case <-tick.C:
		case <-timeout:
			t.Fatal("no audio arrived")
		}
	}
}

// opusFrame is a recognisable fake Opus payload for frame n.
func opusFrame(n uint64) []byte {
	return []byte(fmt.Sprintf("opus frame %d", n))
}

// murmurPair connects two clients named prefix-a and prefix-b and waits until
// each sees the other.
func murmurPair(t *testing.T, addr, prefix string, ca, cb Config) (*Client, *Client) {
	t.Helper()
	var cs [2]*Client
	for i, cfg := range []Config{ca, cb} {
		cfg.Address = addr
		cfg.Username = fmt.Sprintf("%s-%c", prefix, 'a'+i)
		c, err := Dial(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	for i, c := range cs {
		other := cs[1-i].Session()
		if err := c.Wait(testCtx(t), func(c *Client) bool { return c.Users()[other] != nil }); err != nil {
			t.Fatalf("%s never saw session %d: %v", c.cfg.Username, other, err)
		}
	}
	return cs[0], cs[1]
}

// murmurCommand returns the command prefix that runs Murmur and the version
// it must announce (0: any), skipping the test when Murmur is not there.
func murmurCommand(t *testing.T) ([]string, uint64) {
	t.Helper()
	custom := strings.Fields(os.Getenv("PLENUM_MURMUR_CMD"))
	if len(custom) == 0 {
		if _, err := os.Stat(murmurd); err != nil {
			t.Skip("murmurd not installed: apt-get install mumble-server")
		}
		return []string{murmurd}, control.MakeVersion(1, 3, 4)
	}
	if _, err := exec.LookPath(custom[0]); err != nil {
		t.Skipf("PLENUM_MURMUR_CMD: %v", err)
	}
	var want uint64
	if v := os.Getenv("PLENUM_MURMUR_VERSION"); v != "" {
		var major, minor, patch uint16
		if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); err != nil {
			t.Fatalf("PLENUM_MURMUR_VERSION=%q: want x.y.z", v)
		}
		want = control.MakeVersion(major, minor, patch)
	}
	return custom, want
}

// startMurmur runs Murmur (command plus "-fg -ini FILE") with a private ini,
// database and port, and returns its address once it accepts TLS.
func startMurmur(t *testing.T, command []string) string {
	t.Helper()
	m := murmurtest.Start(t, murmurtest.Config{
		Command:           command,
		Ini:               []string{"messageburst=100", "messagelimit=100"},
		SuperUserPassword: murmurSuperUserPassword,
	})
	return m.Addr
}
