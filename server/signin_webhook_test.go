package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// membershipDB is an organisation's membership database behind a
// webhook, as docs/AUTH.md describes it: members by login name, each with
// a password, a membership number and groups.
type membershipDB struct {
	asked atomic.Int32
	slow  atomic.Bool // answer only after the client gave up

	mu      sync.Mutex
	members map[string]member
}

type member struct {
	password, number, name string
	groups                 []string
}

func (db *membershipDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	db.asked.Add(1)
	var q struct {
		Name, Password, CertificateHash, Kind string
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&q); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if db.slow.Load() {
		<-r.Context().Done()
		return
	}
	db.mu.Lock()
	m, ok := db.members[q.Name]
	db.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case !ok:
		io.WriteString(w, `{"result":"unknown"}`)
	case q.Password != m.password:
		io.WriteString(w, `{"result":"refuse","reason":"Wrong password for member `+m.number+`"}`)
	default:
		json.NewEncoder(w).Encode(map[string]any{"result": "accept", "user_id": m.number, "display_name": m.name, "groups": m.groups})
	}
}

func startWebhookServer(t *testing.T, db *membershipDB, extra string) (*testServer, *httptest.Server) {
	t.Helper()
	hook := httptest.NewServer(db)
	t.Cleanup(hook.Close)
	toml := plenaryForDelegates + fmt.Sprintf(`
[auth]
%s

[auth.webhook]
url = %q
timeout = "500ms"
cache_ttl = "1m"
`, extra, hook.URL+"/plenum/auth")
	return startTestServer(t, testOpts{toml: []byte(toml)}), hook
}

// TestWebhookSignIn: Mumble clients log in through a real HTTP endpoint;
// its group lets a delegate speak in the Plenary where a member without
// it and a guest stay suppressed; a warm cache does not ask again; a
// hanging endpoint refuses within the timeout.
func TestWebhookSignIn(t *testing.T) {
	db := &membershipDB{members: map[string]member{
		"ada": {password: "pw-ada", number: "M-17", name: "Ada Lovelace", groups: []string{"delegates"}},
		"bob": {password: "pw-bob", number: "M-18", name: "Bob", groups: []string{"observers"}},
		"dan": {password: "pw-dan", number: "M-19", groups: []string{"delegates"}},
	}}
	s, _ := startWebhookServer(t, db, "")
	ada := s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada" })
	bob := s.join(t, "bob", func(c *client.Config) { c.Password = "pw-bob" })
	guest := s.join(t, "carol", nil) // unknown to the database: a guest
	all := []*peer{ada, bob, guest}
	for _, p := range all {
		p.moveTo("Plenary", all...)
	}
	state := func(p *peer) *mumblepb.UserState { return guest.Users()[p.Session()] }
	guest.waitFor("only the delegate unsuppressed", func(*client.Client) bool {
		return !state(ada).GetSuppress() && state(bob).GetSuppress() && state(guest).GetSuppress()
	})
	if state(ada).GetName() != "Ada Lovelace" || state(guest).UserId != nil {
		t.Errorf("ada is %q, the guest has id %v", state(ada).GetName(), state(guest).UserId)
	}
	if err := s.dialAs(t, "ada", "wrong"); rejectType(err) != mumblepb.Reject_WrongUserPW {
		t.Errorf("a wrong password: %v", err)
	} else if err.(*client.RejectError).Reason != "Wrong password for member M-17" {
		t.Errorf("the refusal's reason %q is not the endpoint's", err.(*client.RejectError).Reason)
	}

	asked := db.asked.Load()
	ada.Close()
	again := s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada" })
	again.moveTo("Plenary", guest)
	guest.waitFor("ada back, still a delegate", func(*client.Client) bool { return !state(again).GetSuppress() })
	if n := db.asked.Load(); n != asked {
		t.Errorf("a reconnect within cache_ttl asked the endpoint %d more times", n-asked)
	}

	db.slow.Store(true)
	start := time.Now()
	err := s.dialAs(t, "dan", "pw-dan") // not in the cache
	took := time.Since(start)
	if rejectType(err) != mumblepb.Reject_AuthenticatorFail {
		t.Errorf("with the endpoint hanging: %v, want AuthenticatorFail", err)
	}
	if took > 3*time.Second {
		t.Errorf("the refusal took %v with a timeout of 500ms", took)
	}
}

// TestWebhookFallThrough: unknown = "refuse" keeps strangers out, and
// unavailable = "guest" lets people in as guests while the endpoint is
// down.
func TestWebhookFallThrough(t *testing.T) {
	db := &membershipDB{members: map[string]member{"ada": {password: "pw", number: "1", groups: []string{"delegates"}}}}
	s, hook := startWebhookServer(t, db, `unknown = "refuse"
unavailable = "guest"`)
	if err := s.dialAs(t, "stranger", ""); rejectType(err) != mumblepb.Reject_WrongUserPW {
		t.Errorf("a stranger with unknown = refuse: %v", err)
	}
	hook.Close() // the endpoint is gone
	c := s.join(t, "ada", func(c *client.Config) { c.Password = "pw" })
	if u := c.Users()[c.Session()]; u.UserId != nil || u.GetName() != "ada" {
		t.Errorf("with the endpoint down ada came in as %q with id %v, want a guest", u.GetName(), u.UserId)
	}
}

// TestSignInKeepsNoPassword: after logins that the webhook accepts,
// refuses, answers from the cache and cannot answer, with debug logs, no
// password is anywhere: not in the log, the data directory (database and
// its WAL), nor the configuration file; the database keeps the member's
// number and the id it got, and not their name.
func TestSignInKeepsNoPassword(t *testing.T) {
	db := &membershipDB{members: map[string]member{
		"ada": {password: "pw-ada-Zq81", number: "M-17", name: "Ada Lovelace Zq81", groups: []string{"delegates"}},
	}}
	hook := httptest.NewServer(db)
	defer hook.Close()
	dir := t.TempDir()
	path, data := filepath.Join(dir, "plenary.toml"), filepath.Join(dir, "data")
	toml := plenaryForDelegates + fmt.Sprintf("\n[auth]\nunavailable = \"guest\"\n\n[auth.webhook]\nurl = %q\ntimeout = \"300ms\"\n", hook.URL)
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logCapture{}
	s := startTestServer(t, testOpts{configFile: path, dataDir: data, logger: logs.logger()})
	s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada-Zq81" }).Close()
	s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada-Zq81" }).Close() // from the cache
	s.dialAs(t, "ada", "wrong-pw-Zq81")
	db.slow.Store(true)
	s.join(t, "ada", func(c *client.Config) { c.Password = "slow-pw-Zq81" }).Close() // a guest
	s.stop()

	places := map[string][]byte{"log": []byte(strings.Join(logs.lines(), "\n"))}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			places[p], _ = os.ReadFile(p)
		}
		return nil
	})
	for table, rows := range dumpDatabase(t, filepath.Join(data, "plenum.db")) {
		places["database table "+table] = rows
	}
	for place, b := range places {
		for _, pw := range []string{"pw-ada-Zq81", "wrong-pw-Zq81", "slow-pw-Zq81"} {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds the password %q", place, pw)
			}
		}
		if strings.HasPrefix(place, "database") && bytes.Contains(b, []byte("Zq81")) {
			t.Errorf("%s holds the member's name", place)
		}
	}
	if !bytes.Contains(places["database table external_users"], []byte("M-17")) {
		t.Errorf("the database does not keep the member's id: %q", places["database table external_users"])
	}
}

// TestSignInFollowsReload: a reloaded file's [auth] is asked from the
// next login on; removing it goes back to the server's own rules.
func TestSignInFollowsReload(t *testing.T) {
	first := &membershipDB{members: map[string]member{"ada": {password: "one", number: "1"}}}
	second := &membershipDB{members: map[string]member{"ada": {password: "two", number: "1"}}}
	s, _ := startWebhookServer(t, first, `unknown = "refuse"`)
	hook2 := httptest.NewServer(second)
	defer hook2.Close()
	if err := s.dialAs(t, "ada", "one"); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	cfg, err := conf.Load(s.configFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Webhook.URL = hook2.URL
	if err := conf.WriteFile(s.configFile, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := s.dialAs(t, "ada", "two"); err != nil {
		t.Errorf("after the reload, the new endpoint's password: %v", err)
	}
	cfg.Auth = nil
	if err := conf.WriteFile(s.configFile, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := s.dialAs(t, "stranger", ""); err != nil {
		t.Errorf("without [auth] a stranger is a guest again: %v", err)
	}
}
