package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/statuspagetest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"google.golang.org/protobuf/proto"
)

// floorHall starts a server whose default channel "Hall" is a
// floor-controlled hall with a "Requests" subchannel; holders of the
// access token "chair" always may speak and, with MuteDeafen, run it.
func floorHall(t *testing.T) *testServer {
	t.Helper()
	return floorHallTimed(t, 0)
}

// floorHallTimed is floorHall with a speaking time per turn.
func floorHallTimed(t *testing.T, limit time.Duration) *testServer {
	t.Helper()
	return startServer(t, func(c *conf.Config) {
		c.Channels = append(c.Channels, conf.Channel{
			Name: "Hall", Floor: true, FloorGroups: []string{"#chair", "#presidium"}, FloorRequests: "Requests",
			SpeakingTime: conf.Duration{Duration: limit},
			ACL:          []conf.ACLEntry{{Group: "#chair", Allow: []string{"MuteDeafen"}}},
			Children:     []conf.Channel{{Name: "Requests"}},
		})
		c.Server.DefaultChannel = "Hall"
	})
}

func chairToken(c *client.Config) { c.Tokens = []string{"chair"} }

// say sends a text message to the channel the peer is in.
func (p *peer) say(text string) {
	p.t.Helper()
	if err := p.SendText(text, nil, []uint32{p.Users()[p.Session()].GetChannelId()}, nil); err != nil {
		p.t.Fatal(err)
	}
}

// told waits for a private server message containing want.
func (p *peer) told(want string) {
	p.t.Helper()
	p.waitFor("a message saying "+want, func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](p) {
			if m.Actor == nil && strings.Contains(m.GetMessage(), want) {
				return true
			}
		}
		return false
	})
}

func suppressed(p *peer, who *peer) bool { return p.Users()[who.Session()].GetSuppress() }

// TestFloorControl: in a hall members speak only while they hold the
// floor; they ask with !hand (never shown as chat) or by entering the
// requests channel; the chair sees the queue, hands the floor on in order
// or by name, and revokes it; a member who is no chair is refused.
func TestFloorControl(t *testing.T) {
	s := floorHall(t)
	chair := s.join(t, "chair", chairToken)
	alice, bob, carol := s.join(t, "alice", nil), s.join(t, "bob", nil), s.join(t, "carol", nil)
	for _, p := range []*peer{chair, alice, bob, carol} {
		p.waitUDP()
	}
	carol.waitFor("everyone in the hall", func(c *client.Client) bool { return c.NumUsers() == 4 })
	if !suppressed(carol, alice) || suppressed(carol, chair) {
		t.Fatalf("in a hall alice is suppressed %v (want true), the chair %v (want false)", suppressed(carol, alice), suppressed(carol, chair))
	}

	alice.say("!help")
	alice.told("Floor commands: !hand")
	alice.say("!hand")
	alice.told("number 1 in the queue")
	bob.say("!HAND")
	bob.told("number 2 in the queue")
	chair.told("Queue: 1. alice, 2. bob.")
	carol.waitFor("the queue in the hall's description", func(c *client.Client) bool {
		return strings.Contains(c.Channels()[c.Users()[c.Session()].GetChannelId()].GetDescription(), "Queue: 1. alice, 2. bob.")
	})
	s.sendSilenced(t, alice, 1) // no floor, no voice

	carol.say("!next")
	carol.waitFor("PermissionDenied for !next", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](carol) {
			if d.GetPermission() == 0x10 { // MuteDeafen
				return true
			}
		}
		return false
	})

	chair.say("!next")
	carol.waitFor("alice has the floor", func(*client.Client) bool { return !suppressed(carol, alice) })
	alice.told("You have the floor.")
	chair.told("Floor: alice. Queue: 1. bob.")
	alice.SendAudio(0, 2, opus, false, nil)
	carol.expectFrame(2)

	chair.say("!next")
	carol.waitFor("bob has it, alice not", func(*client.Client) bool { return !suppressed(carol, bob) && suppressed(carol, alice) })
	alice.told("Your turn has ended.")
	chair.say("!revoke")
	carol.waitFor("nobody has it", func(*client.Client) bool { return suppressed(carol, bob) })

	// Entering the requests channel raises a hand; !give brings the
	// member back into the hall with the floor.
	carol.moveTo("Requests", chair)
	chair.told("Queue: 1. carol.")
	alice.say("!hand")
	alice.say("!hand withdraw")
	alice.told("You left the queue.")
	chair.say("!give Carol")
	chair.waitFor("carol in the hall with the floor", func(c *client.Client) bool {
		u := c.Users()[carol.Session()]
		return u.GetChannelId() == chair.channelID("Hall") && !u.GetSuppress()
	})
	carol.SendAudio(0, 3, opus, false, nil)
	bob.expectFrame(2) // alice's turn; her packet 1, without the floor, never came
	bob.expectFrame(3)

	// None of the commands reached anyone as chat.
	for i, p := range []*peer{chair, alice, bob, carol} {
		for _, m := range messagesOf[*mumblepb.TextMessage](p) {
			if m.Actor != nil {
				t.Errorf("peer %d got a floor command as chat: %q from %d", i, m.GetMessage(), m.GetActor())
			}
		}
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestSpeakingTime: with a 3 minute limit the speaker is warned 30 s
// before the end, a chair's !extend adds time, and when it is up the floor
// is revoked, all on a test clock.
func TestSpeakingTime(t *testing.T) {
	s := floorHallTimed(t, 3*time.Minute)
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	s.SetFloorClock(clock.Now)
	chair, alice, bob := s.join(t, "chair", chairToken), s.join(t, "alice", nil), s.join(t, "bob", nil)
	bob.waitFor("everyone", func(c *client.Client) bool { return c.NumUsers() == 3 })

	chair.say("!give alice")
	bob.waitFor("alice has the floor", func(*client.Client) bool { return !suppressed(bob, alice) })
	clock.advance(2*time.Minute + 29*time.Second)
	s.CheckFloorTime()
	clock.advance(2 * time.Second) // 29 s left
	s.CheckFloorTime()
	alice.told("29 seconds of speaking time left.")

	chair.say("!extend 1m")
	alice.told("extended by 1m0s")
	clock.advance(40 * time.Second) // 49 s left
	s.CheckFloorTime()
	if suppressed(bob, alice) {
		t.Fatal("the floor was revoked before the extended time was up")
	}
	clock.advance(50 * time.Second)
	s.CheckFloorTime()
	alice.told("Your speaking time is over.")
	bob.waitFor("alice's turn over", func(*client.Client) bool { return suppressed(bob, alice) })
	chair.told("Floor: nobody.")
	for _, m := range messagesOf[*mumblepb.TextMessage](alice) {
		if strings.Contains(m.GetMessage(), "Your turn has ended.") {
			t.Error("alice was told twice that her turn ended")
		}
	}
}

// TestMuteAll: a chair silences everyone in the hall but the speaker
// holding the floor, chairs and priority speakers, members of floor_groups
// included, and lifts it again; stock clients see it as suppression.
func TestMuteAll(t *testing.T) {
	s := floorHall(t)
	chair := s.join(t, "chair", chairToken)
	presidium := s.join(t, "presidium", func(c *client.Config) { c.Tokens = []string{"presidium"} })
	alice, vip, bob := s.join(t, "alice", nil), s.join(t, "vip", nil), s.join(t, "bob", nil)
	bob.waitFor("everyone", func(c *client.Client) bool { return c.NumUsers() == 5 })
	chair.Send(&mumblepb.UserState{Session: proto.Uint32(vip.Session()), PrioritySpeaker: proto.Bool(true)})
	chair.say("!give alice")
	bob.waitFor("alice has the floor, presidium and the priority speaker may speak", func(*client.Client) bool {
		return !suppressed(bob, alice) && !suppressed(bob, presidium) && bob.Users()[vip.Session()].GetPrioritySpeaker() && !suppressed(bob, vip)
	})

	chair.say("!muteall")
	bob.waitFor("everyone else muted", func(*client.Client) bool { return suppressed(bob, presidium) })
	for name, p := range map[string]*peer{"the floor": alice, "the chair": chair, "a priority speaker": vip} {
		if suppressed(bob, p) {
			t.Errorf("mute-all suppressed %s", name)
		}
	}
	chair.told("Everyone is muted but the floor")
	s.sendSilenced(t, presidium, 1)

	chair.say("!unmuteall")
	bob.waitFor("presidium may speak again", func(*client.Client) bool { return !suppressed(bob, presidium) })
	presidium.SendAudio(0, 2, opus, false, nil)
	bob.expectFrame(2)
}

// TestStatusPageAndAdminAPI: the admin listener's JSON shows the hall's
// floor and who is talking; the floor API refuses a request without the
// admin token and carries out one with it; and the status page, opened in
// headless Chromium (Debian's chromium) with the token once (the browser
// then has the cookie, for the page and its event stream) while a member
// speaks, shows that member as talking. The screenshot goes to
// PLENUM_SCREENSHOT if set.
func TestStatusPageAndAdminAPI(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Channels = append(c.Channels, conf.Channel{Name: "Hall", Floor: true, FloorGroups: []string{"#chair"}, FloorMinutes: true,
			ACL: []conf.ACLEntry{{Group: "#chair", Allow: []string{"MuteDeafen"}}}})
		c.Server.DefaultChannel = "Hall"
		c.Server.AdminListen = "127.0.0.1:0"
		c.Server.AdminToken = "t0ken"
	})
	clock := &fakeClock{now: time.Now()}
	s.SetFloorClock(clock.Now)
	base := "http://" + s.AdminAddr().String()
	chair, alice, bob := s.join(t, "chair", chairToken), s.join(t, "alice", nil), s.join(t, "bob", nil)
	for _, p := range []*peer{chair, alice, bob} {
		p.waitUDP()
	}
	bob.say("!hand")
	chair.told("Queue: 1. bob.")

	post := func(token, body string) int {
		req, _ := http.NewRequest("POST", base+"/api/floor", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("", `{"channel":"Hall","action":"give","arg":"alice"}`); code != http.StatusUnauthorized {
		t.Fatalf("a floor action without the token: HTTP %d", code)
	}
	if code := post("wrong", `{"channel":"Hall","action":"give","arg":"alice"}`); code != http.StatusUnauthorized {
		t.Fatalf("a floor action with a wrong token: HTTP %d", code)
	}
	// The chair's opening words are the first turn in the minutes.
	if code := post("t0ken", `{"channel":"Hall","action":"give","arg":"chair"}`); code != http.StatusOK {
		t.Fatalf("a floor action with the token: HTTP %d", code)
	}
	chair.told("You have the floor. Your turn is noted for the minutes.")
	clock.advance(75 * time.Second)
	if code := post("t0ken", `{"channel":"Hall","action":"give","arg":"alice"}`); code != http.StatusOK {
		t.Fatalf("a floor action with the token: HTTP %d", code)
	}
	bob.waitFor("alice has the floor", func(*client.Client) bool { return !suppressed(bob, alice) })

	// Alice talks while the page is looked at.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for f := uint64(0); ; f += 2 {
			alice.SendAudio(0, f, opus, false, nil)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()

	var st admin.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp := s.admin(t, adminRequest{path: "/api/status", bearer: "t0ken"})
		st = admin.Status{}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if hall := hallStatus(st); hall != nil && talking(hall, "alice") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status never showed alice talking: %+v", st)
		}
	}
	hall := hallStatus(st)
	if hall.Floor == nil || hall.Floor.Holder != "alice" || !slices.Equal(hall.Floor.Queue, []string{"bob"}) {
		t.Fatalf("the hall's floor in the status: %+v", hall.Floor)
	}
	if talking(hall, "bob") || len(hall.Users) != 3 {
		t.Fatalf("the hall in the status: %v", hall)
	}

	// The event stream sends the status (its limit of 16 streams:
	// TestEventStreamSlotsAreTheOperators).
	if code, line := s.adminCode(t, adminRequest{path: "/api/events", bearer: "t0ken"}); code != http.StatusOK ||
		!strings.HasPrefix(line, "data: {") || !strings.Contains(line, `"holder":"alice"`) {
		t.Fatalf("the event stream: HTTP %d %q", code, line)
	}

	// Chromium presents the token once and has the cookie from then on,
	// which the page's event stream carries too.
	ctx := statuspagetest.Browser(t)
	statuspagetest.Open(t, ctx, base, "t0ken", "lang=en")
	if s.OpenStatusStreams() == 0 {
		t.Error("the page in Chromium has no event stream open")
	}
	statuspagetest.WaitFor(t, ctx, "alice talking on the page", `document.querySelector("td.talking") !== null`)
	dom := statuspagetest.HTML(t, ctx)
	for _, want := range []string{`<td class="talking">alice</td>`, "Queue: bob", "Minutes: turns on the floor", "<td>chair</td><td>1:15</td>",
		`<b id="h-participants">3</b>`, `<b id="h-talking">1</b>`, "Hall: <b>alice</b>"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the page in Chromium does not show alice talking, bob waiting and the chair's turn in the minutes (%q):\n%s", want, dom)
		}
	}
	if shot := os.Getenv("PLENUM_SCREENSHOT"); shot != "" {
		statuspagetest.Screenshot(t, ctx, shot, 1000, 700)
		t.Logf("screenshot: %s", shot)
	}
}

func hallStatus(st admin.Status) *admin.ChannelStatus {
	for i := range st.Channels {
		if st.Channels[i].Path == "Hall" {
			return &st.Channels[i]
		}
	}
	return nil
}

func talking(cs *admin.ChannelStatus, name string) bool {
	for _, u := range cs.Users {
		if u.Name == name {
			return u.Talking
		}
	}
	return false
}

// hallTOML is the default configuration with a hall "Hall" (floor control,
// holders of the token "chair" run it) as the default channel; minutes
// sets floor_minutes.
func hallTOML(minutes bool) []byte {
	data := strings.Replace(string(conf.DefaultTOML()), `default_channel = "Lobby"`, `default_channel = "Hall"`, 1)
	return fmt.Appendf([]byte(data), `
[[channel]]
name = "Hall"
floor = true
floor_groups = ["#chair"]
floor_minutes = %v

  [[channel.acl]]
  group = "#chair"
  allow = ["MuteDeafen"]
`, minutes)
}

// TestTalkTimeAndMinutes: talk time is counted per user (status page),
// per hall (metrics, with registered users by name and nobody else), and
// with floor_minutes as a list of turns that the hall announces; turning
// floor_minutes off forgets the list, so an unregistered speaker who left
// is named nowhere.
func TestTalkTimeAndMinutes(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	certs := registerUsers(t, filepath.Join(dir, "data"), "alice")
	path := filepath.Join(dir, "plenum.toml")
	if err := os.WriteFile(path, hallTOML(true), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, testOpts{configFile: path, dataDir: filepath.Join(dir, "data")})
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	s.SetFloorClock(clock.Now)
	chair, alice, bob := s.join(t, "chair", chairToken), s.join(t, "alice", as(certs["alice"])), s.join(t, "bob", nil)
	chair.waitFor("everyone", func(c *client.Client) bool { return c.NumUsers() == 3 })
	hallNotes := func(want bool) func(*client.Client) bool {
		return func(c *client.Client) bool {
			return strings.Contains(c.Channels()[c.Users()[c.Session()].GetChannelId()].GetDescription(), "noted for the minutes") == want
		}
	}
	// The notice makes the description long, so it comes as a hash that
	// clients ask for, as they do for any long description.
	bob.waitFor("the long description's hash", func(c *client.Client) bool {
		return c.Channels()[c.Users()[c.Session()].GetChannelId()].DescriptionHash != nil
	})
	bob.Send(&mumblepb.RequestBlob{ChannelDescription: []uint32{bob.Users()[bob.Session()].GetChannelId()}})
	bob.waitFor("the hall's notice that it keeps minutes", hallNotes(true))

	// A registered user comes back to where she was last: the root.
	hallID := chair.Users()[chair.Session()].GetChannelId()
	alice.Send(&mumblepb.UserState{Session: proto.Uint32(alice.Session()), ChannelId: proto.Uint32(hallID)})
	chair.waitFor("alice in the hall", func(c *client.Client) bool { return c.Users()[alice.Session()].GetChannelId() == hallID })
	chair.say("!give alice")
	alice.told("You have the floor. Your turn is noted for the minutes.")
	clock.advance(90 * time.Second)
	chair.say("!give bob")
	bob.told("You have the floor.")
	clock.advance(30 * time.Second)
	bob.Close() // leaving ends the turn
	chair.waitFor("bob gone", func(c *client.Client) bool { return c.NumUsers() == 2 })

	hall := hallStatus(s.Status())
	if hall == nil || hall.Floor == nil || !hall.Floor.MinutesKept {
		t.Fatalf("hall status %+v", hall)
	}
	start := clock.Now().Add(-120 * time.Second)
	want := []admin.TurnStatus{{Name: "alice", Start: start, Seconds: 90}, {Name: "bob", Start: start.Add(90 * time.Second), Seconds: 30}}
	if got := hall.Floor.Minutes; !slices.EqualFunc(got, want, func(a, b admin.TurnStatus) bool {
		return a.Name == b.Name && a.Start.Equal(b.Start) && a.Seconds == b.Seconds
	}) {
		t.Errorf("minutes %+v, want %+v", got, want)
	}
	for _, u := range hall.Users {
		if u.Name == "alice" && u.FloorSec != 90 {
			t.Errorf("alice's floor time %v s, want 90", u.FloorSec)
		}
	}
	m := s.scrape(t)
	for key, v := range map[string]float64{
		`plenum_floor_turns_total{channel="Hall"}`:                          2,
		`plenum_floor_talk_seconds_total{channel="Hall"}`:                   120,
		`plenum_floor_user_talk_seconds_total{channel="Hall",user="alice"}`: 90,
	} {
		if m[key] != v {
			t.Errorf("%s = %v, want %v", key, m[key], v)
		}
	}
	for key := range m {
		if strings.Contains(key, "bob") {
			t.Errorf("metrics name the unregistered bob: %s", key)
		}
	}

	// Turned off, the minutes are forgotten and the notice goes; the
	// hall's totals stay, without names.
	if err := os.WriteFile(path, hallTOML(false), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	chair.waitFor("the notice gone", hallNotes(false))
	if st, _ := json.Marshal(s.Status()); strings.Contains(string(st), "bob") {
		t.Errorf("the status still names bob: %s", st)
	}
	if got := s.scrape(t)[`plenum_floor_talk_seconds_total{channel="Hall"}`]; got != 120 {
		t.Errorf("hall total after reload %v, want 120", got)
	}
}

// TestSpeakingTimeChangedByAReload: a reload that gives the hall a
// speaking time while someone holds the floor untimed does not end the
// turn at the next tick: the turn gets the new limit counted from its
// start and, as that has passed, the 30 s warning period to finish, and
// the speaker is told. A reload that shortens the time moves the running
// turn's end too.
func TestSpeakingTimeChangedByAReload(t *testing.T) {
	withTime := func(limit string) []byte {
		return []byte(strings.Replace(string(hallTOML(false)), "floor = true\n", "floor = true\nspeaking_time = \""+limit+"\"\n", 1))
	}
	s := startTestServer(t, testOpts{toml: hallTOML(false)})
	reload := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(s.configFile, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	floorNow := func() (holder string, left float64) {
		t.Helper()
		hall := hallStatus(s.Status())
		if hall == nil || hall.Floor == nil {
			t.Fatalf("hall status %+v", hall)
		}
		return hall.Floor.Holder, hall.Floor.LeftSec
	}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	s.SetFloorClock(clock.Now)
	chair, alice, bob := s.join(t, "chair", chairToken), s.join(t, "alice", nil), s.join(t, "bob", nil)
	bob.waitFor("everyone", func(c *client.Client) bool { return c.NumUsers() == 3 })

	chair.say("!give alice")
	bob.waitFor("alice has the floor", func(*client.Client) bool { return !suppressed(bob, alice) })
	clock.advance(5 * time.Minute)
	reload(withTime("3m"))
	alice.told("The speaking time is now 3m0s, which your turn has already passed: 30s left to finish.")
	clock.advance(time.Second)
	s.CheckFloorTime()
	if holder, left := floorNow(); holder != "alice" || left != 29 {
		t.Fatalf("a tick after the reload the floor is %q's with %v s left, want alice's with 29", holder, left)
	}
	clock.advance(29 * time.Second)
	s.CheckFloorTime()
	alice.told("Your speaking time is over.")
	bob.waitFor("alice's turn over", func(*client.Client) bool { return suppressed(bob, alice) })

	// Shortened from 3 to 2 minutes a minute into bob's turn: one left.
	chair.say("!give bob")
	alice.waitFor("bob has the floor", func(*client.Client) bool { return !suppressed(alice, bob) })
	clock.advance(time.Minute)
	reload(withTime("2m"))
	bob.told("The speaking time is now 2m0s: 1m0s of your turn left.")
	clock.advance(time.Minute)
	s.CheckFloorTime()
	bob.told("Your speaking time is over.")
	alice.waitFor("bob's turn over", func(*client.Client) bool { return suppressed(alice, bob) })
	if holder, _ := floorNow(); holder != "" {
		t.Errorf("the floor is %q's after the shortened turn", holder)
	}
}

// TestFloorPlaceKeptOnReconnect: a member whose connection is replaced by
// their own new login (same certificate; a network change) keeps their
// place in the queue, and the holder keeps the floor.
func TestFloorPlaceKeptOnReconnect(t *testing.T) {
	s := floorHall(t)
	chair := s.join(t, "chair", chairToken)
	certA, certB, certC := selfSignedCert(t), selfSignedCert(t), selfSignedCert(t)
	alice, bob := s.join(t, "alice", as(certA)), s.join(t, "bob", as(certB))
	carol := s.join(t, "carol", as(certC))
	alice.say("!hand")
	alice.told("number 1 in the queue")
	bob.say("!hand")
	bob.told("number 2 in the queue")
	carol.say("!hand")
	carol.told("number 3 in the queue")
	chair.say("!next") // alice speaks, bob and carol wait
	chair.told("Floor: alice. Queue: 1. bob, 2. carol.")

	// Alice and bob reconnect while their old connections are still up.
	alice2 := s.join(t, "alice", as(certA))
	bob2 := s.join(t, "bob", as(certB))
	chair.waitFor("alice's new session holds the floor", func(c *client.Client) bool {
		u, ok := c.Users()[alice2.Session()]
		return ok && !u.GetSuppress()
	})
	chair.say("!next")
	chair.waitFor("bob's new session has the floor", func(c *client.Client) bool {
		u, ok := c.Users()[bob2.Session()]
		return ok && !u.GetSuppress()
	})
	bob2.told("You have the floor.")
	chair.told("Floor: bob. Queue: 1. carol.")
}

// TestFloorPlaceGivenUpWhenBackElsewhere: a member who reconnects and
// lands outside the hall (the default channel is the Lobby) gives their
// place up, as leaving the hall would have.
func TestFloorPlaceGivenUpWhenBackElsewhere(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Channels = append(c.Channels, conf.Channel{Name: "Hall", Floor: true, FloorGroups: []string{"#chair"},
			ACL: []conf.ACLEntry{{Group: "#chair", Allow: []string{"MuteDeafen"}}}})
		c.Server.DefaultChannel = "Lobby"
	})
	chair := s.join(t, "chair", chairToken)
	cert := selfSignedCert(t)
	carol, dave := s.join(t, "carol", as(cert)), s.join(t, "dave", nil)
	for _, p := range []*peer{chair, carol, dave} {
		p.moveTo("Hall", chair)
	}
	carol.say("!hand")
	carol.told("number 1 in the queue")
	dave.say("!hand")
	dave.told("number 2 in the queue")
	chair.told("Queue: 1. carol, 2. dave.")
	again := s.join(t, "carol", as(cert))
	if got := again.Users()[again.Session()].GetChannelId(); got != again.channelID("Lobby") {
		t.Fatalf("carol is back in channel %d, want the Lobby", got)
	}
	chair.told("Queue: 1. dave.")
}
