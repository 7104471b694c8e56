package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/fulldisk"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// The tokens of apiServer: the admin token, and one per scope.
const (
	apiAdminToken = "s3cret"
	readToken     = "read-token-1"
	modToken      = "moderate-token-1"
	adminScoped   = "admin-token-1"
)

var scopeTokens = map[string]string{"read": readToken, "moderate": modToken, "admin": adminScoped}

// apiServer starts a server on a configuration file (so that edits are
// written to it) with a token of each scope, and a hall "Hall" with
// floor control; edit may change more.
func apiServer(t *testing.T, edit func(*conf.Config)) *testServer {
	t.Helper()
	return apiServerOf(t, edit, nil)
}

// apiServerOf is apiServer as a node of the cluster link (nil for none).
func apiServerOf(t *testing.T, edit func(*conf.Config), cluster server.ClusterLink) *testServer {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "plenum.toml")
	cfg := conf.Default()
	cfg.Server.AdminToken = apiAdminToken
	cfg.AdminTokens = []conf.APIToken{
		{Name: "reader", Scope: "read", Hash: conf.HashAPIToken(readToken)},
		{Name: "desk", Scope: "moderate", Hash: conf.HashAPIToken(modToken)},
		{Name: "ops", Scope: "admin", Hash: conf.HashAPIToken(adminScoped)},
	}
	cfg.Channels = append(cfg.Channels, conf.Channel{Name: "Hall", Floor: true, FloorGroups: []string{"#chair"}})
	if edit != nil {
		edit(cfg)
	}
	if err := conf.WriteFile(file, cfg); err != nil {
		t.Fatal(err)
	}
	return startTestServer(t, testOpts{configFile: file, dataDir: filepath.Join(dir, "data"), cluster: cluster})
}

// api sends a request to /api/v1 with token and returns the status and
// body; v, if not nil, receives the JSON answer.
func (s *testServer) api(t *testing.T, method, path, token, body string, v any) int {
	t.Helper()
	code, text := s.adminCode(t, adminRequest{method: method, path: "/api/v1" + path, bearer: token, body: body})
	if v != nil && code < 300 {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, text)
		}
	}
	if code >= 300 && v != nil {
		t.Logf("%s %s: HTTP %d %s", method, path, code, text)
	}
	return code
}

// mustAPI is api that fails the test unless the answer is want.
func (s *testServer) mustAPI(t *testing.T, want int, method, path, token, body string, v any) {
	t.Helper()
	code, text := s.adminCode(t, adminRequest{method: method, path: "/api/v1" + path, bearer: token, body: body})
	if code != want {
		t.Fatalf("%s %s: HTTP %d %s, want %d", method, path, code, text, want)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, text)
		}
	}
}

func session(p *peer) string { return strconv.Itoa(int(p.Session())) }

// TestAPIUserActions: the API lists the users with their state, and
// mutes, deafens, suppresses, makes priority speaker, moves, messages,
// kicks and bans them; the Mumble clients see each, and the messages
// carry no actor, as Murmur's Ice calls do not.
func TestAPIUserActions(t *testing.T) {
	s := apiServer(t, nil)
	alice, bob := s.join(t, "alice", nil), s.join(t, "bob", nil)
	alice.waitFor("bob", func(c *client.Client) bool { return c.NumUsers() == 2 })

	var users []admin.APIUser
	s.mustAPI(t, 200, "GET", "/users", readToken, "", &users)
	if len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" || users[0].ChannelPath != "Lobby" {
		t.Fatalf("users: %+v", users)
	}

	bobState := func(c *client.Client) *mumblepb.UserState { return c.Users()[bob.Session()] }
	s.mustAPI(t, 200, "PATCH", "/users/"+session(bob), modToken, `{"mute": true}`, nil)
	bob.waitFor("bob muted", func(c *client.Client) bool { return bobState(c).GetMute() })
	s.mustAPI(t, 200, "PATCH", "/users/"+session(bob), modToken, `{"deaf": true, "priority_speaker": true}`, nil)
	alice.waitFor("bob deaf and priority speaker", func(c *client.Client) bool {
		return bobState(c).GetDeaf() && bobState(c).GetPrioritySpeaker()
	})
	s.mustAPI(t, 200, "PATCH", "/users/"+session(bob), modToken, `{"suppress": true}`, nil)
	alice.waitFor("bob suppressed", func(c *client.Client) bool { return bobState(c).GetSuppress() })
	for _, m := range messagesOf[*mumblepb.UserState](alice) {
		if m.GetSession() == bob.Session() && m.Actor != nil {
			t.Errorf("a change made through the API names actor %d", m.GetActor())
		}
	}

	overflow := alice.channelID("Overflow")
	s.mustAPI(t, 200, "PATCH", "/users/"+session(bob), modToken, `{"channel": `+strconv.Itoa(int(overflow))+`}`, nil)
	alice.waitFor("bob in Overflow", func(c *client.Client) bool { return bobState(c).GetChannelId() == overflow })
	s.mustAPI(t, 200, "GET", "/users", readToken, "", &users)
	if i := slices.IndexFunc(users, func(u admin.APIUser) bool { return u.Name == "bob" }); i < 0 || !users[i].Mute || !users[i].Deaf || users[i].ChannelPath != "Overflow" {
		t.Errorf("bob's state in the list: %+v", users)
	}
	s.mustAPI(t, 404, "PATCH", "/users/9999", modToken, `{"mute": true}`, nil)
	s.mustAPI(t, 400, "PATCH", "/users/"+session(bob), modToken, `{"mute": "yes"}`, nil)
	s.mustAPI(t, 400, "PATCH", "/users/"+session(bob), modToken, `{"volume": 3}`, nil)

	s.mustAPI(t, 200, "POST", "/messages", modToken, `{"message": "Break until 3 pm", "sessions": [`+session(alice)+`]}`, nil)
	alice.waitFor("the message", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](alice) {
			if m.GetMessage() == "Break until 3 pm" && m.Actor == nil {
				return true
			}
		}
		return false
	})
	s.mustAPI(t, 200, "POST", "/messages", modToken, `{"message": "to the channel", "channels": [`+strconv.Itoa(int(overflow))+`]}`, nil)
	bob.waitFor("the channel message", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](bob) {
			if m.GetMessage() == "to the channel" {
				return true
			}
		}
		return false
	})

	s.mustAPI(t, 200, "POST", "/users/"+session(bob)+"/kick", modToken, `{"reason": "reconnect, please"}`, nil)
	waitGone(t, bob)
	alice.waitFor("bob gone", func(c *client.Client) bool { return c.NumUsers() == 1 })
	if m := messagesOf[*mumblepb.UserRemove](bob); len(m) == 0 || m[0].GetReason() != "reconnect, please" {
		t.Errorf("bob was told %v", m)
	}

	carol := s.join(t, "carol", nil)
	s.mustAPI(t, 200, "POST", "/users/"+session(carol)+"/ban", modToken, `{"reason": "spam"}`, nil)
	waitGone(t, carol)
	var bans admin.BanList
	s.mustAPI(t, 200, "GET", "/bans", modToken, "", &bans)
	if len(bans.Bans) != 1 || bans.Bans[0].Reason != "spam" || !strings.HasPrefix(bans.Bans[0].Address, "2001:db8:") {
		t.Fatalf("bans after banning carol: %+v (want one, its address hidden)", bans)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: "carol2"}); err == nil {
		c.Close()
		t.Fatal("a client from the banned address got in")
	}
	// The list sent back without the ban lifts it.
	s.mustAPI(t, 200, "PUT", "/bans", modToken, `{"bans": []}`, nil)
	s.join(t, "carol3", nil)
	s.mustAPI(t, 201, "POST", "/bans", modToken, `{"address": "192.0.2.0", "bits": 24, "reason": "raid", "duration_s": 600}`, nil)
	s.mustAPI(t, 200, "GET", "/bans", modToken, "", &bans)
	if len(bans.Bans) != 1 || bans.Bans[0].Reason != "raid" || bans.Bans[0].Duration != 600 {
		t.Errorf("bans after adding one: %+v", bans)
	}
}

func waitGone(t *testing.T, p *peer) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client is still connected")
	}
}

// TestAPIChannels: channels are created, renamed, described, linked,
// moved and removed through the API; a client sees each change and the
// configuration file holds it.
func TestAPIChannels(t *testing.T) {
	s := apiServer(t, nil)
	alice := s.join(t, "alice", nil)
	var ch admin.APIChannel
	s.mustAPI(t, 201, "POST", "/channels", adminScoped, `{"parent": 0, "name": "Press", "description": "For journalists"}`, &ch)
	alice.waitFor("Press", func(c *client.Client) bool { _, ok := channelByName(c, "Press"); return ok })
	if ch.Path != "Press" || ch.ID == 0 {
		t.Fatalf("created %+v", ch)
	}
	s.mustAPI(t, 409, "POST", "/channels", adminScoped, `{"parent": 0, "name": "Press"}`, nil)
	s.mustAPI(t, 409, "POST", "/channels", adminScoped, `{"parent": 0, "name": "bad/name"}`, nil)
	fileHas(t, s.configFile, `name = "Press"`, true)
	fileHas(t, s.configFile, `name = "desk"`, true) // the write-back keeps the [[admin_token]] tables

	id := strconv.Itoa(int(ch.ID))
	plenary := alice.channelID("Plenary")
	s.mustAPI(t, 200, "PATCH", "/channels/"+id, adminScoped, `{"name": "Press room", "links_add": [`+strconv.Itoa(int(plenary))+`]}`, nil)
	alice.waitFor("Press room linked with Plenary", func(c *client.Client) bool {
		st := c.Channels()[ch.ID]
		return st.GetName() == "Press room" && slices.Contains(st.Links, plenary)
	})
	fileHas(t, s.configFile, `name = "Press room"`, true)

	breakouts := alice.channelID("Breakout rooms")
	s.mustAPI(t, 200, "PATCH", "/channels/"+id, adminScoped, `{"parent": `+strconv.Itoa(int(breakouts))+`}`, nil)
	alice.waitFor("Press room below Breakout rooms", func(c *client.Client) bool { return c.Channels()[ch.ID].GetParent() == breakouts })
	var chans []admin.APIChannel
	s.mustAPI(t, 200, "GET", "/channels", readToken, "", &chans)
	if i := slices.IndexFunc(chans, func(c admin.APIChannel) bool { return c.ID == ch.ID }); i < 0 || chans[i].Path != "Breakout rooms/Press room" || !slices.Contains(chans[i].Links, plenary) {
		t.Errorf("channels: %+v", chans)
	}
	s.mustAPI(t, 409, "PATCH", "/channels/"+strconv.Itoa(int(breakouts)), adminScoped, `{"parent": `+id+`}`, nil)

	s.mustAPI(t, 200, "DELETE", "/channels/"+id, adminScoped, "", nil)
	alice.waitFor("Press room gone", func(c *client.Client) bool { _, ok := c.Channels()[ch.ID]; return !ok })
	fileHas(t, s.configFile, "Press room", false)
	s.mustAPI(t, 404, "DELETE", "/channels/"+id, adminScoped, "", nil)
	s.mustAPI(t, 409, "DELETE", "/channels/0", adminScoped, "", nil)
}

func fileHas(t *testing.T, file, text string, want bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), text) != want {
		t.Fatalf("%s holds %q: %v, want %v:\n%s", file, text, !want, want, data)
	}
}

// TestAPIACLEdit: an ACL written through the API goes the way of the
// ACL editor's: checked (a bad permission name is refused, nothing
// changes), applied live (the client is told it may no longer enter) and
// written to the configuration file; reading it back gives what was
// written, and the entries inherited from the root.
func TestAPIACLEdit(t *testing.T) {
	s := apiServer(t, nil)
	alice := s.join(t, "alice", nil)
	room := alice.channelID("Room 1")
	path := "/channels/" + strconv.Itoa(int(room)) + "/acl"

	s.mustAPI(t, 400, "PUT", path, adminScoped, `{"entries": [{"group": "all", "deny": ["Fly"]}]}`, nil)
	s.mustAPI(t, 400, "PUT", path, adminScoped, `{"entries": [{"deny": ["Enter"]}]}`, nil)
	fileHas(t, s.configFile, "delegates", false)

	body := `{"groups": {"delegates": {"add": ["alice"], "inheritable": false}},
		"entries": [{"group": "all", "deny": ["Enter"]}, {"group": "delegates", "allow": ["Enter"], "apply_subs": false}]}`
	s.mustAPI(t, 200, "PUT", path, adminScoped, body, nil)
	alice.waitFor("Room 1 closed to alice", func(c *client.Client) bool {
		st := c.Channels()[room]
		return st.CanEnter != nil && !st.GetCanEnter() && st.GetIsEnterRestricted()
	})
	fileHas(t, s.configFile, `[channel.channel.groups.delegates]`, true)
	fileHas(t, s.configFile, `deny = ["Enter"]`, true)

	var got admin.APIACL
	s.mustAPI(t, 200, "GET", path, readToken, "", &got)
	g := got.Groups["delegates"]
	if g == nil || !slices.Equal(g.Add, []string{"alice"}) || g.Inheritable == nil || *g.Inheritable {
		t.Errorf("group read back: %+v", got.Groups)
	}
	if len(got.Entries) != 2 || got.Entries[0].Group != "all" || !slices.Equal(got.Entries[0].Deny, []string{"Enter"}) ||
		got.Entries[1].ApplySubs == nil || *got.Entries[1].ApplySubs {
		t.Errorf("entries read back: %+v", got.Entries)
	}
	if len(got.Inherited) == 0 || got.Inherited[0].Channel == nil || *got.Inherited[0].Channel != 0 {
		t.Errorf("inherited entries: %+v", got.Inherited)
	}
	// A reload of the file gives the same ACL: what was written is what runs.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	var again admin.APIACL
	s.mustAPI(t, 200, "GET", path, readToken, "", &again)
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Errorf("after a reload:\n%s\nbefore:\n%s", b, a)
	}
}

// TestAPIRegistrationsAndConfig: registered users are listed, renamed
// and deleted; the configuration is read, validated (with lines) and
// replaced, and a replacement is applied live.
func TestAPIRegistrationsAndConfig(t *testing.T) {
	s := apiServer(t, nil)
	alice := s.join(t, "alice", withCert(t))
	alice.Send(&mumblepb.UserState{Session: new(alice.Session()), UserId: new(uint32(0))}) // self-register
	alice.waitFor("registered", func(c *client.Client) bool { return c.Users()[alice.Session()].GetUserId() > 0 })
	var regs []admin.Registration
	s.mustAPI(t, 200, "GET", "/registrations", readToken, "", &regs)
	if len(regs) != 1 || regs[0].Name != "alice" {
		t.Fatalf("registrations: %+v", regs)
	}
	id := strconv.Itoa(int(regs[0].ID))
	s.mustAPI(t, 200, "PATCH", "/registrations/"+id, adminScoped, `{"name": "alice2"}`, nil)
	s.mustAPI(t, 200, "GET", "/registrations", readToken, "", &regs)
	if len(regs) != 1 || regs[0].Name != "alice2" {
		t.Fatalf("after the rename: %+v", regs)
	}
	s.mustAPI(t, 200, "DELETE", "/registrations/"+id, adminScoped, "", nil)
	s.mustAPI(t, 200, "GET", "/registrations", readToken, "", &regs)
	if len(regs) != 0 {
		t.Fatalf("after the deletion: %+v", regs)
	}
	s.mustAPI(t, 404, "DELETE", "/registrations/"+id, adminScoped, "", nil)

	code, file := s.adminCode(t, adminRequest{path: "/api/v1/config", bearer: adminScoped})
	if code != 200 || !strings.Contains(file, "[[admin_token]]") {
		t.Fatalf("GET /config: %d %q", code, file)
	}
	var check admin.ConfigCheck
	s.mustAPI(t, 200, "POST", "/config/validate", adminScoped, "[server]\nname = \"\"\nbogus = 1\n", &check)
	if check.Valid || len(check.Problems) != 1 || check.Problems[0].Line != 3 || check.Problems[0].Key != "server.bogus" {
		t.Fatalf("validate: %+v", check)
	}
	s.mustAPI(t, 400, "PUT", "/config", adminScoped, "[server]\nbogus = 1\n", nil)
	next := strings.Replace(file, "[server]\n", "[server]\nname = \"Renamed root\"\n", 1)
	s.mustAPI(t, 200, "PUT", "/config", adminScoped, next, &check)
	alice.waitFor("the root renamed", func(c *client.Client) bool { return c.Channels()[0].GetName() == "Renamed root" })
	fileHas(t, s.configFile, "Renamed root", true)
	fileHas(t, s.configFile+".bak", "Renamed root", false)
}

// TestAPIScopes: every route refuses a request without a token (401)
// and one whose token's scope is below the route's, as the OpenAPI
// document states it (403), and lets the route's own scope through. The
// requests that get through carry a body the route refuses (400) or
// name nothing that exists (404), so that nothing changes.
func TestAPIScopes(t *testing.T) {
	s := apiServer(t, nil)
	var doc struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	s.mustAPI(t, 200, "GET", "/openapi.json", "", "", &doc)
	levels := []string{"read", "moderate", "admin"}
	ops := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			method = strings.ToUpper(method)
			p := strings.TrimPrefix(path, "/api/v1")
			p = strings.NewReplacer("{session}", "4000000000", "{id}", "4000000000").Replace(p)
			scope, _ := op[admin.ScopeKey].(string)
			if scope == "" {
				continue // the document itself
			}
			ops++
			body := ""
			if method != "GET" && method != "DELETE" {
				body = `{"unknown_field": 1}`
				if strings.HasPrefix(p, "/config") {
					body = "not = = toml"
				}
			}
			if method == "GET" && p == "/events" {
				continue // a stream; its 401 and 403 are checked below
			}
			if code := s.api(t, method, p, "", body, nil); code != 401 {
				t.Errorf("%s %s without a token: %d, want 401", method, p, code)
			}
			if code := s.api(t, method, p, "not-a-token", body, nil); code != 401 {
				t.Errorf("%s %s with an unknown token: %d, want 401", method, p, code)
			}
			need := slices.Index(levels, scope)
			for i, level := range levels {
				code := s.api(t, method, p, scopeTokens[level], body, nil)
				switch {
				case i < need && code != 403:
					t.Errorf("%s %s with a %s token: %d, want 403 (the document says %s)", method, p, level, code, scope)
				case i >= need && (code == 401 || code == 403 || code >= 500):
					t.Errorf("%s %s with a %s token: %d, want it let through (the document says %s)", method, p, level, code, scope)
				}
			}
		}
	}
	if ops < 20 {
		t.Fatalf("only %d operations checked", ops)
	}
	resp := s.admin(t, adminRequest{path: "/api/v1/events"})
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("events without a token: %d", resp.StatusCode)
	}
	// The admin token keeps working, as full admin.
	var who admin.WhoAmI
	s.mustAPI(t, 200, "GET", "/token", apiAdminToken, "", &who)
	if who.Scope != "admin" || who.Name != "admin" {
		t.Errorf("the admin token is %+v", who)
	}
	s.mustAPI(t, 200, "GET", "/token", modToken, "", &who)
	if who.Scope != "moderate" || who.Name != "desk" {
		t.Errorf("the moderate token is %+v", who)
	}
}

// eventStream reads /api/v1/events.
type eventStream struct {
	t      *testing.T
	body   io.ReadCloser
	events chan admin.Event
}

func (s *testServer) openEvents(t *testing.T, token string) *eventStream {
	t.Helper()
	resp := s.admin(t, adminRequest{path: "/api/v1/events", bearer: token})
	if resp.StatusCode != 200 {
		t.Fatalf("events: HTTP %d", resp.StatusCode)
	}
	es := &eventStream{t: t, body: resp.Body, events: make(chan admin.Event, 1024)}
	t.Cleanup(func() { resp.Body.Close() })
	// Read the first comment, so that the subscription is in place.
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(es.events)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
				var e admin.Event
				if json.Unmarshal([]byte(data), &e) == nil {
					es.events <- e
				}
			}
		}
	}()
	return es
}

// next returns the next event that match accepts, failing after 5 s.
func (es *eventStream) next(what string, match func(admin.Event) bool) admin.Event {
	es.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-es.events:
			if !ok {
				es.t.Fatalf("the stream ended waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case <-timeout:
			es.t.Fatalf("no event %s within 5 s", what)
		}
	}
}

// TestAPIEventStream: the stream tells of a user connecting, changing
// state and moving, of the floor of a hall changing, of channels made,
// and of a user leaving and being kicked; text messages only with
// admin_events_text.
func TestAPIEventStream(t *testing.T) {
	for _, withText := range []bool{false, true} {
		t.Run("admin_events_text="+strconv.FormatBool(withText), func(t *testing.T) {
			s := apiServer(t, func(c *conf.Config) { c.Server.AdminEventsText = withText })
			es := s.openEvents(t, readToken)
			alice := s.join(t, "alice", nil)
			e := es.next("alice connecting", func(e admin.Event) bool { return e.Type == "user.connected" })
			if e.Name != "alice" || e.Session != alice.Session() || e.Channel == nil {
				t.Errorf("connect event %+v", e)
			}
			alice.SetSelfMute(true, false)
			e = es.next("alice muting herself", func(e admin.Event) bool { return e.Type == "user.state" })
			if e.Name != "alice" || !e.State["self_mute"] {
				t.Errorf("state event %+v", e)
			}
			hall := alice.channelID("Hall")
			alice.Move(hall)
			es.next("alice moving into the hall", func(e admin.Event) bool {
				return e.Type == "user.state" && e.ChannelPath == "Hall" && e.State["suppress"]
			})
			alice.SendText("!hand", nil, []uint32{hall}, nil)
			e = es.next("the floor changing", func(e admin.Event) bool { return e.Type == "floor" })
			if e.ChannelPath != "Hall" || !strings.Contains(e.Floor, "alice") {
				t.Errorf("floor event %+v", e)
			}
			s.mustAPI(t, 201, "POST", "/channels", adminScoped, `{"parent": 0, "name": "Press"}`, nil)
			es.next("the channel made", func(e admin.Event) bool { return e.Type == "channel.state" && e.ChannelPath == "Press" })
			s.mustAPI(t, 200, "PUT", "/channels/"+strconv.Itoa(int(hall))+"/acl", adminScoped, `{"entries": [{"group": "all", "allow": ["Speak"]}]}`, nil)
			es.next("the hall's ACL edited", func(e admin.Event) bool { return e.Type == "channel.acl" && e.ChannelPath == "Hall" })

			bob := s.join(t, "bob", nil)
			bob.SendText("a secret between us", []uint32{alice.Session()}, nil, nil)
			alice.waitFor("bob's message", func(*client.Client) bool { return hasText(alice, "a secret between us") })
			s.mustAPI(t, 200, "POST", "/users/"+session(bob)+"/kick", modToken, `{"reason": "bye"}`, nil)
			sawText := false
			es.next("bob leaving", func(e admin.Event) bool {
				if e.Type == "text" {
					sawText = e.Text == "a secret between us" && e.Name == "bob" && slices.Equal(e.Sessions, []uint32{alice.Session()})
				}
				return e.Type == "user.left" && e.Name == "bob"
			})
			if sawText != withText {
				t.Errorf("the stream had bob's message: %v, want %v", sawText, withText)
			}
			e = es.next("bob's kick", func(e admin.Event) bool { return e.Type == "user.removed" })
			if e.Session != bob.Session() || e.Reason != "bye" || e.Ban {
				t.Errorf("kick event %+v", e)
			}
		})
	}
}

// TestAPIChangesAreLoggedWithTheTokenName: a change made through the
// API is logged under the token's name, and the log names no address.
func TestAPIChangesAreLoggedWithTheTokenName(t *testing.T) {
	var log logBuffer
	dir := t.TempDir()
	file := filepath.Join(dir, "plenum.toml")
	cfg := conf.Default()
	cfg.AdminTokens = []conf.APIToken{{Name: "stage-desk", Scope: "moderate", Hash: conf.HashAPIToken(modToken)}}
	if err := conf.WriteFile(file, cfg); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, testOpts{configFile: file, logger: slog.New(slog.NewTextHandler(&log, nil))})
	alice := s.join(t, "alice", nil)
	s.mustAPI(t, 200, "PATCH", "/users/"+session(alice), modToken, `{"mute": true}`, nil)
	s.mustAPI(t, 200, "POST", "/users/"+session(alice)+"/kick", modToken, `{}`, nil)
	waitGone(t, alice)
	out := log.String()
	for _, want := range []string{`msg="admin API change" token=stage-desk scope=moderate method=PATCH`, `name=api:stage-desk`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "127.0.0.1") {
		t.Errorf("the log names an address:\n%s", out)
	}
	if strings.Contains(out, modToken) {
		t.Errorf("the log holds the token:\n%s", out)
	}
}

// TestAPIReportsWhatCouldNotBeSaved: on a full disk a channel made
// through the API is in effect but not in the file, and the API says so
// (500) instead of answering as if it were saved; once there is space,
// the next change saves both.
func TestAPIReportsWhatCouldNotBeSaved(t *testing.T) {
	dir := fulldisk.Mount(t, 2<<20)
	s := startTestServer(t, testOpts{dataDir: dir, edit: func(c *conf.Config) {
		c.AdminTokens = []conf.APIToken{{Name: "ops", Scope: "admin", Hash: conf.HashAPIToken(adminScoped)}}
	}})
	path := filepath.Join(dir, server.DefaultConfigFile)
	s.mustAPI(t, 201, "POST", "/channels", adminScoped, `{"parent": 0, "name": "Before"}`, nil)
	fileHas(t, path, `name = "Before"`, true)

	free := fulldisk.Fill(t, dir)
	code, body := s.adminCode(t, adminRequest{method: "POST", path: "/api/v1/channels", bearer: adminScoped, body: `{"parent": 0, "name": "Unsaved"}`})
	if code != 500 || !strings.Contains(body, "not saved") || !strings.Contains(body, "disk is full") {
		t.Fatalf("creating a channel on a full disk: HTTP %d %s, want 500 saying it is not saved", code, body)
	}
	fileHas(t, path, "Unsaved", false)
	free()
	s.mustAPI(t, 201, "POST", "/channels", adminScoped, `{"parent": 0, "name": "After"}`, nil)
	fileHas(t, path, "Unsaved", true)
	fileHas(t, path, "After", true)
}
