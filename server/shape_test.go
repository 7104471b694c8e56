package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"google.golang.org/protobuf/proto"
)

// tone is one test speaker: a pure tone at a loudness of its own.
type tone struct {
	name string
	freq float64
	amp  float64
}

// hall starts a server whose "Hall" is shaped by edit and is everyone's
// default channel, where anyone may give priority speaker.
func hall(t *testing.T, edit func(ch *conf.Channel)) *testServer {
	t.Helper()
	return startServer(t, func(c *conf.Config) {
		ch := conf.Channel{Name: "Hall", ACL: []conf.ACLEntry{{Group: "all", Allow: []string{"MuteDeafen"}}}}
		edit(&ch)
		c.Channels = append(c.Channels, ch)
		c.Server.DefaultChannel = "Hall"
		c.Server.Bandwidth = 1 << 30
	})
}

// speak makes each peer send its tone in 20 ms frames, in real time, for
// the given time, and then a terminator.
func speak(t *testing.T, peers []*peer, tones []tone, frameMS int, d time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for i, p := range peers {
		sp, err := audiotest.NewSpeaker(tones[i].freq, tones[i].amp, frameMS)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(frameMS) * time.Millisecond)
			defer tick.Stop()
			frames := int(d / (time.Duration(frameMS) * time.Millisecond))
			for f := range frames {
				pkt, err := sp.Next()
				if err != nil {
					t.Error(err)
					return
				}
				p.SendAudio(0, uint64(f*frameMS/10), pkt, f == frames-1, nil)
				<-tick.C
			}
		}()
	}
	wg.Wait()
}

// heard collects what a listener received, per sender, until quiet.
type heard struct {
	packets map[uint32][]client.AudioPacket
}

func collect(p *peer, quiet time.Duration) heard {
	h := heard{packets: map[uint32][]client.AudioPacket{}}
	for {
		select {
		case a := <-p.audio:
			h.packets[a.Sender] = append(h.packets[a.Sender], a)
		case <-time.After(quiet):
			return h
		}
	}
}

// decoded decodes a sender's packets received after from.
func (h heard) decoded(t *testing.T, sender uint32, from time.Time) []int16 {
	t.Helper()
	l, err := audiotest.NewListener()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range h.packets[sender] {
		if a.Received.Before(from) {
			continue
		}
		if err := l.Add(a.Opus); err != nil {
			t.Fatalf("sender %d: %v", sender, err)
		}
	}
	return l.PCM
}

func (h heard) between(sender uint32, from, to time.Time) int {
	n := 0
	for _, a := range h.packets[sender] {
		if !a.Received.Before(from) && a.Received.Before(to) {
			n++
		}
	}
	return n
}

// TestLoudestSpeakersAreHeard: with max_speakers = 2 and four people
// talking, a listener hears the two loudest and, because a priority
// speaker is always heard, the quiet priority speaker; the one left out
// is cut with a terminator and then silent.
func TestLoudestSpeakersAreHeard(t *testing.T) {
	s := hall(t, func(ch *conf.Channel) { ch.MaxSpeakers = 2 })
	tones := []tone{{"loud", 1000, 0.5}, {"medium", 800, 0.2}, {"quiet", 600, 0.02}, {"priority", 400, 0.01}}
	var peers []*peer
	for _, tn := range tones {
		peers = append(peers, s.join(t, tn.name, nil))
	}
	listener := s.join(t, "listener", nil)
	for _, p := range append(peers, listener) {
		p.waitUDP()
	}
	prio := peers[3]
	listener.Send(&mumblepb.UserState{Session: proto.Uint32(prio.Session()), PrioritySpeaker: proto.Bool(true)})
	listener.waitFor("priority speaker", func(c *client.Client) bool { return c.Users()[prio.Session()].GetPrioritySpeaker() })

	start := time.Now()
	speak(t, peers, tones, 20, 2*time.Second)
	h := collect(listener, 300*time.Millisecond)
	settled := start.Add(time.Second) // selection has settled well before
	// The window ends before the speakers stop: as the loud ones end, the
	// freed places go to whoever is still talking, as they should.
	end := start.Add(1800 * time.Millisecond)

	for i, tn := range tones {
		session := peers[i].Session()
		n := h.between(session, settled, end)
		t.Logf("%-8s %d packets in all, %d between 1 and 1.8 s", tn.name, len(h.packets[session]), n)
		if tn.name == "quiet" {
			if n != 0 {
				t.Errorf("the quiet speaker, third loudest of those without priority, was heard %d times between 1 and 1.8 s", n)
			}
			continue
		}
		if n < 30 {
			t.Errorf("%s was heard only %d times in 0.8 s, want about 40", tn.name, n)
		}
		if lvl := audiotest.Level(h.decoded(t, session, settled), tn.freq); lvl < tn.amp/3 {
			t.Errorf("%s: tone at %.3f, sent at %.3f", tn.name, lvl, tn.amp)
		}
	}
	// If the quiet speaker was heard at all (before the loud ones were
	// there), the stream ended with a terminator.
	if got := h.packets[peers[2].Session()]; len(got) > 0 && !got[len(got)-1].Terminator {
		t.Errorf("the quiet speaker's stream was cut without a terminator (%d packets)", len(got))
	}
}

// TestShapedFrameLengths: every frame length Mumble sends passes through
// a loudest-N stage intact.
func TestShapedFrameLengths(t *testing.T) {
	s := hall(t, func(ch *conf.Channel) { ch.MaxSpeakers = 1 })
	a, b := s.join(t, "alice", nil), s.join(t, "bob", nil)
	a.waitUDP()
	b.waitUDP()
	for _, ms := range []int{10, 20, 40, 60} {
		t.Run(fmt.Sprintf("%dms", ms), func(t *testing.T) {
			tn := tone{"alice", 700, 0.3}
			before := s.Stats().VoiceReceived
			speak(t, []*peer{a}, []tone{tn}, ms, 600*time.Millisecond)
			h := collect(b, 300*time.Millisecond)
			// Every packet the server took in comes out of the stage; an
			// overloaded machine may shed a stale one before that.
			sent, accepted := 600/ms, int(s.Stats().VoiceReceived-before)
			if got := len(h.packets[a.Session()]); got != accepted || accepted < sent-2 {
				var frames []uint64
				for _, p := range h.packets[a.Session()] {
					frames = append(frames, p.Frame)
				}
				t.Errorf("heard %d packets, the server accepted %d of %d sent; frames %v", got, accepted, sent, frames)
			}
			if lvl := audiotest.Level(h.decoded(t, a.Session(), time.Time{}), tn.freq); lvl < 0.1 {
				t.Errorf("tone at %.3f after the stage, sent at 0.3", lvl)
			}
		})
	}
}

// TestCutSpeakerEndsWithTerminator: with room for one, a quiet speaker
// is heard until a louder one starts; their stream then ends with a
// terminator, so clients stop showing them as talking, and nothing of
// theirs follows. Two voices of about the same loudness do not take
// turns: the first keeps the place.
func TestCutSpeakerEndsWithTerminator(t *testing.T) {
	s := hall(t, func(ch *conf.Channel) { ch.MaxSpeakers = 1 })
	quiet, loud, similar, listener := s.join(t, "quiet", nil), s.join(t, "loud", nil), s.join(t, "similar", nil), s.join(t, "listener", nil)
	for _, p := range []*peer{quiet, loud, similar, listener} {
		p.waitUDP()
	}
	var wg sync.WaitGroup
	later := func(p *peer, tn tone, delay, d time.Duration) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			speak(t, []*peer{p}, []tone{tn}, 20, d)
		}()
	}
	later(quiet, tone{"quiet", 500, 0.05}, 0, 1500*time.Millisecond)
	later(loud, tone{"loud", 900, 0.5}, 700*time.Millisecond, 800*time.Millisecond)
	wg.Wait()
	h := collect(listener, 300*time.Millisecond)
	q := h.packets[quiet.Session()]
	if len(q) < 30 || len(q) > 45 {
		t.Fatalf("heard %d packets of the quiet speaker, want those of the first 0.7 s", len(q))
	}
	if !q[len(q)-1].Terminator {
		t.Error("the quiet speaker's stream was cut without a terminator")
	}
	if n := len(h.packets[loud.Session()]); n < 35 {
		t.Errorf("heard %d packets of the loud speaker, sent 40", n)
	}

	later(quiet, tone{"quiet", 500, 0.2}, 0, 1500*time.Millisecond)
	later(similar, tone{"similar", 900, 0.25}, 100*time.Millisecond, 1400*time.Millisecond)
	wg.Wait()
	h = collect(listener, 300*time.Millisecond)
	q = h.packets[quiet.Session()]
	if len(q) == 0 {
		t.Fatal("the first speaker was not heard")
	}
	// Once the first speaker stops, the place is free: count only what
	// came before that.
	if n := h.between(similar.Session(), time.Time{}, q[len(q)-1].Received); n > 0 {
		t.Errorf("a voice 2 dB louder took the place of one already heard (%d packets of it)", n)
	}
}

// virtualSession finds the session of a channel's virtual user as a
// client sees it.
func virtualSession(t *testing.T, p *peer, name string) uint32 {
	t.Helper()
	var session uint32
	p.waitFor("virtual user "+name, func(c *client.Client) bool {
		for s, u := range c.Users() {
			if u.GetName() == name {
				session = s
				return true
			}
		}
		return false
	})
	return session
}

// TestMixMinus: in a mixed channel every member hears one stream from
// the channel's virtual user; a pure listener hears every speaker in it,
// each speaker hears the others but not themselves, and a deafened member
// hears nothing.
func TestMixMinus(t *testing.T) {
	s := hall(t, func(ch *conf.Channel) { ch.Mix = true })
	tones := []tone{{"alto", 440, 0.2}, {"tenor", 660, 0.2}, {"bass", 880, 0.2}}
	var speakers []*peer
	for _, tn := range tones {
		speakers = append(speakers, s.join(t, tn.name, nil))
	}
	listener, deaf := s.join(t, "listener", nil), s.join(t, "deaf", nil)
	for _, p := range append(speakers, listener, deaf) {
		p.waitUDP()
	}
	mix := virtualSession(t, listener, "Hall (mix)")
	deaf.SetSelfMute(true, true)
	listener.waitFor("deaf", func(c *client.Client) bool { return c.Users()[deaf.Session()].GetSelfDeaf() })

	start := time.Now()
	speak(t, speakers, tones, 20, 2*time.Second)
	steady := start.Add(500 * time.Millisecond)
	check := func(who string, h heard, absent int) {
		t.Helper()
		for sender := range h.packets {
			if sender != mix {
				t.Errorf("%s heard %d packets from session %d, not from the mix", who, len(h.packets[sender]), sender)
			}
		}
		got := h.packets[mix]
		if len(got) < 90 {
			t.Errorf("%s heard %d mix packets in 2 s, want about 100", who, len(got))
			return
		}
		if !got[len(got)-1].Terminator {
			t.Errorf("%s: the mix did not end with a terminator", who)
		}
		pcm := h.decoded(t, mix, steady)
		for i, tn := range tones {
			lvl := audiotest.Level(pcm, tn.freq)
			t.Logf("%-8s hears %s at %.3f", who, tn.name, lvl)
			if i == absent && lvl > 0.01 {
				t.Errorf("%s hears their own voice in the mix at %.3f", who, lvl)
			}
			if i != absent && lvl < 0.1 {
				t.Errorf("%s hears %s at %.3f, sent at 0.2", who, tn.name, lvl)
			}
		}
	}
	check("listener", collect(listener, 300*time.Millisecond), -1)
	for i, sp := range speakers {
		check(tones[i].name, collect(sp, 50*time.Millisecond), i)
	}
	if h := collect(deaf, 50*time.Millisecond); len(h.packets) != 0 {
		t.Errorf("a deafened member heard %d streams", len(h.packets))
	}
}

// TestShapeFollowsTheFile: turning mixing on in the file adds the mix's
// virtual user live, whose name nobody can log in with; with mix_above = 1
// one speaker is forwarded as usual and two are mixed; turning it off
// removes the virtual user and speech is forwarded again.
func TestShapeFollowsTheFile(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), nil)
	a, b, c := s.join(t, "alice", nil), s.join(t, "bob", nil), s.join(t, "carol", nil)
	for _, p := range []*peer{a, b, c} {
		p.waitUDP()
		p.moveTo("Plenary", a, b, c)
	}
	edit := func(change func(ch *conf.Channel)) {
		t.Helper()
		editPlenary(t, path, func(_ *conf.Config, ch *conf.Channel) { change(ch) })
	}
	edit(func(ch *conf.Channel) { ch.Mix, ch.MixAbove = true, 1 })
	mix := virtualSession(t, c, "Plenary (mix)")
	if u := c.Users()[mix]; u.GetChannelId() != c.channelID("Plenary") || u.GetRecording() {
		t.Fatalf("the mix's virtual user is %v", u)
	}
	wantReject(t, dialErr(s, func(cfg *client.Config) { cfg.Username = "plenary (MIX)" }), mumblepb.Reject_UsernameInUse)

	// One speaker: forwarded as they sent it.
	speak(t, []*peer{a}, []tone{{"alice", 500, 0.2}}, 20, 400*time.Millisecond)
	h := collect(c, 200*time.Millisecond)
	if len(h.packets[a.Session()]) < 18 || len(h.packets[mix]) != 0 {
		t.Fatalf("one speaker in a channel that mixes above one: %d packets direct, %d mixed", len(h.packets[a.Session()]), len(h.packets[mix]))
	}
	// Two: mixed, after at most the tick that counted them.
	speak(t, []*peer{a, b}, []tone{{"alice", 500, 0.2}, {"bob", 700, 0.2}}, 20, time.Second)
	h = collect(c, 200*time.Millisecond)
	if len(h.packets[mix]) < 40 || len(h.packets[a.Session()]) > 2 || len(h.packets[b.Session()]) > 2 {
		t.Fatalf("two speakers in a channel that mixes above one: %d mixed, %d and %d direct", len(h.packets[mix]), len(h.packets[a.Session()]), len(h.packets[b.Session()]))
	}

	edit(func(ch *conf.Channel) { ch.Mix, ch.MixAbove = false, 0 })
	c.waitFor("the mix's virtual user gone", func(cl *client.Client) bool {
		_, ok := cl.Users()[mix]
		return !ok
	})
	speak(t, []*peer{a, b}, []tone{{"alice", 500, 0.2}, {"bob", 700, 0.2}}, 20, 400*time.Millisecond)
	h = collect(c, 200*time.Millisecond)
	if len(h.packets[a.Session()]) < 18 || len(h.packets[b.Session()]) < 18 || len(h.packets[mix]) != 0 {
		t.Fatalf("after mixing was turned off: %d and %d direct, %d mixed", len(h.packets[a.Session()]), len(h.packets[b.Session()]), len(h.packets[mix]))
	}
}

// TestShapeSurvivesClientEdits: a channel's stage settings are written
// back with it when a client edits the channel, and renaming the channel
// renames its virtual user.
func TestShapeSurvivesClientEdits(t *testing.T) {
	cfg, err := conf.Parse(conf.DefaultTOML(), "plenary.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "Plenary" {
			cfg.Channels[i].MaxSpeakers, cfg.Channels[i].Mix = 4, true
		}
	}
	data, err := conf.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, path := startFileServer(t, data, grantAll{})
	admin := s.join(t, "admin", withCert(t))
	virtualSession(t, admin, "Plenary (mix)")
	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(admin.channelID("Plenary")), Name: proto.String("Main hall")})
	written := waitFile(t, path, "the rename", func(c *conf.Config) bool { return c.Lookup("Main hall") != nil })
	if ch := written.Lookup("Main hall"); ch.MaxSpeakers != 4 || !ch.Mix {
		t.Errorf("the renamed channel was written with max_speakers %d, mix %v", ch.MaxSpeakers, ch.Mix)
	}
	virtualSession(t, admin, "Main hall (mix)")
}

// TestRecordingAChannel: a channel with record = true is recorded to an
// Ogg Opus file while everyone sees the recorder's recording flag; when the
// file turns recording off the file is closed, and opusinfo and opusdec
// find the speakers' tones in it.
func TestRecordingAChannel(t *testing.T) {
	if _, err := exec.LookPath("opusdec"); err != nil {
		t.Skip("opus-tools not installed (apt-get install opus-tools); scripts/test installs it")
	}
	s, path := startFileServer(t, conf.DefaultTOML(), nil)
	a, b, c := s.join(t, "alice", nil), s.join(t, "bob", nil), s.join(t, "carol", nil)
	for _, p := range []*peer{a, b, c} {
		p.waitUDP()
		p.moveTo("Plenary", a, b, c)
	}
	edit := func(change func(cfg *conf.Config, ch *conf.Channel)) {
		t.Helper()
		editPlenary(t, path, change)
	}
	edit(func(cfg *conf.Config, ch *conf.Channel) { cfg.Server.AllowRecording, ch.Record = true, true })
	rec := virtualSession(t, c, "Plenary (recorder)")
	c.waitFor("the recording flag", func(cl *client.Client) bool { return cl.Users()[rec].GetRecording() })
	c.waitFor("the recording notice", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](c) {
			if strings.Contains(m.GetMessage(), "being recorded") {
				return true
			}
		}
		return false
	})
	c.waitFor("ServerConfig saying recording is allowed", func(*client.Client) bool {
		sc := messagesOf[*mumblepb.ServerConfig](c)
		return len(sc) > 0 && sc[len(sc)-1].GetRecordingAllowed()
	})

	speak(t, []*peer{a, b}, []tone{{"alice", 440, 0.2}, {"bob", 660, 0.2}}, 20, 2*time.Second)
	// Forwarding goes on as usual: recording does not mix for listeners.
	if h := collect(c, 200*time.Millisecond); len(h.packets[a.Session()]) < 90 || len(h.packets[rec]) != 0 {
		t.Fatalf("while recording: %d packets from alice, %d from the recorder", len(h.packets[a.Session()]), len(h.packets[rec]))
	}
	edit(func(_ *conf.Config, ch *conf.Channel) { ch.Record = false })
	c.waitFor("the recorder gone", func(cl *client.Client) bool {
		_, ok := cl.Users()[rec]
		return !ok
	})

	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "data", "recordings", "Plenary-*.opus"))
	if len(files) != 1 {
		t.Fatalf("recordings: %v, want one file", files)
	}
	var out []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error // the file is closed just after the lock is released
		if out, err = exec.Command("opusinfo", files[0]).CombinedOutput(); err == nil {
			break
		}
	}
	if strings.Contains(strings.ToLower(string(out)), "warning") || strings.Contains(string(out), "ERROR") {
		t.Fatalf("opusinfo: %s", out)
	}
	wav := filepath.Join(t.TempDir(), "rec.wav")
	if out, err := exec.Command("opusdec", "--quiet", "--rate", "48000", files[0], wav).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v %s", err, out)
	}
	raw, _ := os.ReadFile(wav)
	pcm := make([]int16, (len(raw)-44)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[44+2*i:]))
	}
	t.Logf("recorded %.2f s: 440 Hz at %.3f, 660 Hz at %.3f", float64(len(pcm))/48000, audiotest.Level(pcm, 440), audiotest.Level(pcm, 660))
	if len(pcm) < 2*48000 {
		t.Errorf("the recording is %.2f s long, the speech alone was 2 s", float64(len(pcm))/48000)
	}
	for _, f := range []float64{440, 660} {
		if lvl := audiotest.Level(pcm, f); lvl < 0.05 {
			t.Errorf("%v Hz is at %.3f in the recording", f, lvl)
		}
	}
}

// TestRecordingFlagFollowsTheFile: a mixed channel that stops being
// recorded keeps its mix user, whose recording flag every client sees go
// down; one whose stage is replaced while it stays recorded keeps the
// flag up throughout, and nobody is told the recording stopped.
func TestRecordingFlagFollowsTheFile(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), nil)
	a := s.join(t, "alice", nil)
	a.moveTo("Plenary")
	editPlenary(t, path, func(cfg *conf.Config, ch *conf.Channel) {
		cfg.Server.AllowRecording, ch.Mix, ch.Record = true, true, true
	})
	mix := virtualSession(t, a, "Plenary (mix)")
	a.waitFor("the recording flag", func(cl *client.Client) bool { return cl.Users()[mix].GetRecording() })
	mark := len(messagesOf[*mumblepb.UserState](a))

	// A new stage, still recorded; the description shows the edit applied.
	editPlenary(t, path, func(_ *conf.Config, ch *conf.Channel) { ch.MaxSpeakers, ch.Description = 4, "four at most" })
	plenary := a.channelID("Plenary")
	a.waitFor("the edit applied", func(cl *client.Client) bool { return cl.Channels()[plenary].GetDescription() == "four at most" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Ping(ctx); err != nil { // whatever the reload sent has arrived
		t.Fatal(err)
	}
	for _, m := range messagesOf[*mumblepb.UserState](a)[mark:] {
		if m.GetSession() == mix && m.Recording != nil && !m.GetRecording() {
			t.Error("the recording flag went down while the channel stayed recorded")
		}
	}
	for _, m := range messagesOf[*mumblepb.TextMessage](a) {
		if strings.Contains(m.GetMessage(), "stopped") {
			t.Error("told the recording stopped when only the stage changed")
		}
	}

	editPlenary(t, path, func(_ *conf.Config, ch *conf.Channel) { ch.Record = false })
	a.waitFor("the flag down, the mix user still there", func(cl *client.Client) bool {
		u, ok := cl.Users()[mix]
		return ok && !u.GetRecording()
	})
}

// editPlenary changes the "Plenary" channel (and the rest of the
// configuration) in the file at path, as an admin saving it would.
func editPlenary(t *testing.T, path string, change func(cfg *conf.Config, ch *conf.Channel)) {
	t.Helper()
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "Plenary" {
			change(cfg, &cfg.Channels[i])
		}
	}
	if err := conf.WriteFile(path, cfg); err != nil {
		t.Fatal(err)
	}
}
