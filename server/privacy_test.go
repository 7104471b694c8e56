package server_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/store"
)

// TestPrivacyOfAScriptedSession runs a session that touches everything
// that could write personal data, with debug logs, then searches every
// place the server writes to or shows the operator for what the people in
// it left behind, and fails on anything docs/SECURITY.md ("What is kept
// where") does not allow.
//
// The session: SuperUser and people from their own loopback addresses
// join; one is registered and sets a comment; unregistered people set a
// comment, write to the channel and privately, speak in a recorded
// channel, ask for and get the floor in a hall; SuperUser edits an ACL,
// kicks one and bans another by session (with a typed reason); people
// leave cleanly, by a reset, by a failed TLS handshake, by a handshake
// timeout; an address autobans itself; the status API and the metrics are
// read; the server stops (everyone left is told) and starts again on the
// same file and data, where one person goes idle until the timeout and
// the registered one comes back. Every path of a connection's end, and the
// log lines they write, is covered one by one in
// TestDisconnectLogsCarryNoAddresses.
//
// What is looked for: the clients' addresses (as text and as the four
// bytes), the text messages, the unregistered people's names, comments and
// certificate hashes (hex and the twenty bytes). Where: every log line of
// both runs, every file in the data directory (the SQLite database with
// its WAL, the recordings, the certificate, the admin token), every table
// of the database dumped as text, the configuration file written back and
// its .bak, /api/status and /metrics. Allowed: the banned address in the
// database (a ban stores its address), and the registered user's name,
// certificate hash and comment in the database, the status API and logs.
func TestPrivacyOfAScriptedSession(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole session, twice")
	}
	ps := newPrivacySession(t)
	ps.run()
	findings := ps.search()
	report := findings.report()
	t.Logf("personal data found, by place and kind (bytes):\n%s", report)
	for _, f := range findings {
		if !f.allowed {
			t.Errorf("%s: %s %q (%d bytes), which the docs do not allow there", f.place, f.kind, f.needle, f.bytes)
		}
	}
}

// A secret is something a person left that must not stay anywhere but
// where the docs allow it.
type secret struct {
	kind   string // "address", "text", "name", "comment", "certificate hash"
	needle []byte
	// allowedIn reports whether finding it in place is allowed.
	allowedIn func(place string) bool
}

func nowhere(string) bool { return false }

// inDatabase allows the database and its WAL and its dump.
func inDatabase(place string) bool {
	return strings.HasPrefix(place, "data/plenum.db") || strings.HasPrefix(place, "database table ")
}

type finding struct {
	place, kind, needle string
	bytes               int
	allowed             bool
}

type findings []finding

// report tabulates the bytes found per place and kind.
func (fs findings) report() string {
	if len(fs) == 0 {
		return "  nothing\n"
	}
	sum := map[string]int{}
	for _, f := range fs {
		verdict := "allowed"
		if !f.allowed {
			verdict = "NOT ALLOWED"
		}
		sum[fmt.Sprintf("%-34s %-17s %s", f.place, f.kind, verdict)] += f.bytes
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %6d\n", k, sum[k])
	}
	return b.String()
}

// privacySession is the scripted session and what it leaves behind.
type privacySession struct {
	t       *testing.T
	dir     string // holds the file and data/
	path    string // the configuration file
	logs    *logCapture
	secrets []secret
	shown   map[string][]byte // what the admin listener answered, by place

	next int // the last byte of the next client address
}

const (
	superUserPassword = "privacy-test-superuser"
	privacyAdminToken = "privacy-test-token"
)

func newPrivacySession(t *testing.T) *privacySession {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(0, superUserPassword); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg := conf.Default()
	cfg.Server.AllowRecording = true
	cfg.Server.AdminToken = privacyAdminToken
	cfg.Server.AutobanAttempts = 2 // the third failure bans
	cfg.Server.HandshakeTimeout.Duration = time.Second
	cfg.Server.ShutdownTimeout.Duration = time.Second
	cfg.Server.MessageLimit, cfg.Server.MessageBurst = 1000, 1000
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "Plenary" {
			cfg.Channels[i].Record = true
		}
	}
	cfg.Channels = append(cfg.Channels, conf.Channel{Name: "Hall", Floor: true, FloorGroups: []string{"#chair"},
		ACL: []conf.ACLEntry{{Group: "#chair", Allow: []string{"MuteDeafen"}}}})
	path := filepath.Join(dir, "plenary.toml")
	if err := conf.WriteFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	return &privacySession{t: t, dir: dir, path: path, logs: &logCapture{}, shown: map[string][]byte{}, next: 30}
}

// options are the test server's options for a run on the session's
// file, changed by edit (nil for none).
func (ps *privacySession) options(edit func(*conf.Config)) testOpts {
	return testOpts{configFile: ps.path, edit: edit, dataDir: filepath.Join(ps.dir, "data"), logger: ps.logs.logger()}
}

// source is a new client address, whose text and bytes are secrets; the
// banned one may stay in the database.
func (ps *privacySession) source(banned bool) netip.Addr {
	ps.next++
	a := loopback(ps.next)
	allowed := nowhere
	if banned {
		allowed = inDatabase
	}
	b := a.As4()
	ps.secrets = append(ps.secrets,
		secret{"address", []byte(a.String()), allowed},
		secret{"address", b[:], allowed})
	return a
}

// person is an unregistered participant: their name is a secret, and so
// is their certificate's hash when they have one.
func (ps *privacySession) person(name string, withCert bool) (netip.Addr, func(*client.Config)) {
	src := ps.source(false)
	ps.secrets = append(ps.secrets, secret{"name", []byte(name), nowhere})
	var cert *tls.Certificate
	if withCert {
		cert = selfSignedCert(ps.t)
		ps.certSecret(cert, nowhere)
	}
	return src, func(c *client.Config) {
		c.LocalAddr = src
		c.Certificate = cert
	}
}

func (ps *privacySession) certSecret(cert *tls.Certificate, allowed func(string) bool) {
	sum := sha1.Sum(cert.Certificate[0])
	h := hex.EncodeToString(sum[:])
	ps.secrets = append(ps.secrets,
		secret{"certificate hash", []byte(h), allowed},
		secret{"certificate hash", []byte(strings.ToUpper(h)), allowed},
		secret{"certificate hash", sum[:], allowed})
}

// said makes text a secret, to be found nowhere.
func (ps *privacySession) said(text string) string {
	ps.secrets = append(ps.secrets, secret{"text", []byte(text), nowhere})
	return text
}

func (ps *privacySession) run() {
	t := ps.t
	s := startTestServer(t, ps.options(nil))

	su := s.join(t, "SuperUser", func(c *client.Config) {
		c.Password = superUserPassword
		c.LocalAddr = ps.source(false)
	})

	// A member the organisers register: name, certificate hash and
	// comment may stay in the database.
	ritaCert := selfSignedCert(t)
	ps.certSecret(ritaCert, inDatabase)
	rita := s.join(t, "Rita Registered", func(c *client.Config) { c.LocalAddr, c.Certificate = ps.source(false), ritaCert })
	su.Send(&mumblepb.UserState{Session: proto.Uint32(rita.Session()), UserId: proto.Uint32(0)})
	su.waitFor("Rita registered", func(c *client.Client) bool {
		u := c.Users()[rita.Session()]
		return u != nil && u.UserId != nil
	})
	rita.Send(&mumblepb.UserState{Comment: proto.String("Delegate of the northern district")})

	// Unregistered people talk, write, comment and take the floor.
	_, ullaCfg := ps.person("Ulla Unregistered q2x", true)
	ulla := s.join(t, "Ulla Unregistered q2x", ullaCfg)
	ps.secrets = append(ps.secrets, secret{"comment", []byte("ulla-comment-q2x"), nowhere})
	ulla.Send(&mumblepb.UserState{Comment: proto.String("ulla-comment-q2x")})
	ulla.SendText(ps.said("text-to-the-lobby-q2x"), nil, []uint32{ulla.Users()[ulla.Session()].GetChannelId()}, nil)
	ulla.SendText(ps.said("private-text-to-rita-q2x"), []uint32{rita.Session()}, nil, nil)
	rita.waitFor("Ulla's private text", func(*client.Client) bool { return hasText(rita, "private-text-to-rita-q2x") })

	_, udoCfg := ps.person("Udo Unregistered q3x", false)
	udo := s.join(t, "Udo Unregistered q3x", udoCfg)
	_, chrisCfg := ps.person("Chris Chair q4x", true)
	chris := s.join(t, "Chris Chair q4x", func(c *client.Config) { chrisCfg(c); chairToken(c) })
	for _, p := range []*peer{ulla, udo} {
		p.waitUDP()
		p.moveTo("Plenary", ulla, udo)
	}
	speak(t, []*peer{ulla, udo}, []tone{{"ulla", 440, 0.2}, {"udo", 660, 0.2}}, 20, time.Second)
	udo.moveTo("Hall", chris)
	chris.moveTo("Hall", udo)
	udo.say("!hand")
	chris.told("Queue: 1.")
	chris.say("!next")
	udo.waitFor("the floor", func(c *client.Client) bool { return !c.Users()[udo.Session()].GetSuppress() })
	chris.say("!revoke")
	udo.waitFor("the turn over", func(c *client.Client) bool { return c.Users()[udo.Session()].GetSuppress() })

	// SuperUser edits an ACL, kicks one person and bans another.
	overflow := su.channelID("Overflow")
	su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(overflow), InheritAcls: proto.Bool(true), Acls: []*mumblepb.ACL_ChanACL{
		{Group: proto.String("all"), ApplyHere: proto.Bool(true), Deny: proto.Uint32(0x8)}, // Speak
	}})
	waitFile(t, ps.path, "the ACL edit", func(c *conf.Config) bool { return len(c.Lookup("Overflow").ACL) == 1 })
	_, kurtCfg := ps.person("Kurt Kicked q6x", true)
	kurt := s.join(t, "Kurt Kicked q6x", kurtCfg)
	su.Send(&mumblepb.UserRemove{Session: proto.Uint32(kurt.Session()), Reason: proto.String("disturbing the session")})
	ps.ended(kurt)
	beaSrc := ps.source(true)
	ps.secrets = append(ps.secrets, secret{"name", []byte("Bea Banned q7x"), nowhere})
	beaCert := selfSignedCert(t)
	ps.certSecret(beaCert, nowhere)
	bea := s.join(t, "Bea Banned q7x", func(c *client.Config) { c.LocalAddr, c.Certificate = beaSrc, beaCert })
	su.Send(&mumblepb.UserRemove{Session: proto.Uint32(bea.Session()), Ban: proto.Bool(true), Reason: proto.String("repeated disruption")})
	ps.ended(bea)

	// Through the admin API, with its event stream open: a mute, a text
	// message, a kick. The log names the token, never the text or the
	// unregistered name.
	events := s.openEvents(t, privacyAdminToken)
	_, kaiCfg := ps.person("Kai Apikicked q8x", true)
	kai := s.join(t, "Kai Apikicked q8x", kaiCfg)
	events.next("Kai connecting", func(e admin.Event) bool { return e.Type == "user.connected" })
	s.mustAPI(t, 200, "PATCH", "/users/"+session(kai), privacyAdminToken, `{"mute": true}`, nil)
	s.mustAPI(t, 200, "POST", "/messages", privacyAdminToken, `{"message": "`+ps.said("api-text-to-kai-q8x")+`", "sessions": [`+session(kai)+`]}`, nil)
	kai.waitFor("the API's message", func(*client.Client) bool { return hasText(kai, "api-text-to-kai-q8x") })
	s.mustAPI(t, 200, "POST", "/users/"+session(kai)+"/kick", privacyAdminToken, `{"reason": "by the desk"}`, nil)
	ps.ended(kai)

	// Endings without a kick.
	ulla.Close() // clean
	resetSrc, _ := ps.person("Rolf Reset q5x", false)
	nc, raw := dialTLSFrom(t, s.addr, resetSrc, 0)
	loginSession(raw, "Rolf Reset q5x")
	nc.SetLinger(0)
	nc.Close()
	dialTCPFrom(t, s.addr, ps.source(false), 0).Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not TLS
	dialTCPFrom(t, s.addr, ps.source(false), 0)                                         // nothing: handshake timeout
	autobanned := ps.source(false)
	for range 3 {
		dialTCPFrom(t, s.addr, autobanned, 0).Write([]byte("not TLS"))
	}
	waitStats(t, s, "the autoban", func(st server.Stats) bool { return st.Autobans == 1 })
	waitStats(t, s, "the handshake timeout", func(st server.Stats) bool { return st.Unauthenticated == 0 })
	udo.Close()
	chris.Close()
	waitStats(t, s, "the unregistered gone", func(st server.Stats) bool { return st.Users == 2 })

	ps.read(s, "/api/status", "status API")
	ps.read(s, "/metrics", "metrics")
	s.stop() // SuperUser and Rita are told and hang up

	// Again on the same file and data: one person goes idle until the
	// timeout, and Rita comes back.
	s2 := startTestServer(t, ps.options(func(c *conf.Config) { c.Server.Timeout.Duration = time.Second }))
	idaSrc := ps.source(false)
	ps.secrets = append(ps.secrets, secret{"name", []byte("Ida Idle q8x"), nowhere})
	_, idle := dialTLSFrom(t, s2.addr, idaSrc, 0)
	loginSession(idle, "Ida Idle q8x")
	waitStats(t, s2, "Ida timed out", func(st server.Stats) bool { return st.Users == 0 })
	rita2 := s2.join(t, "Rita Registered", func(c *client.Config) { c.LocalAddr, c.Certificate = ps.source(false), ritaCert })
	if rita2.Users()[rita2.Session()].UserId == nil {
		t.Error("Rita is not recognised after the restart")
	}
	s2.stop()
}

// ended waits until p's connection is gone.
func (ps *privacySession) ended(p *peer) {
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		ps.t.Fatalf("%s still connected", p.Users()[p.Session()].GetName())
	}
}

// read fetches path from the admin listener as the operator does.
func (ps *privacySession) read(s *testServer, path, place string) {
	req, err := http.NewRequest("GET", "http://"+s.AdminAddr().String()+path, nil)
	if err != nil {
		ps.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+privacyAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ps.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		ps.t.Fatalf("%s: %v %s", path, err, resp.Status)
	}
	ps.shown[place] = body
}

// search looks for every secret in every place.
func (ps *privacySession) search() findings {
	places := map[string][]byte{"log": []byte(strings.Join(ps.logs.lines(), "\n"))}
	for place, b := range ps.shown {
		places[place] = b
	}
	err := filepath.WalkDir(ps.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ps.dir, p)
		places[rel] = b
		return nil
	})
	if err != nil {
		ps.t.Fatal(err)
	}
	for table, rows := range dumpDatabase(ps.t, filepath.Join(ps.dir, "data", "plenum.db")) {
		places["database table "+table] = rows
	}
	ps.checkPlaces(places)
	var out findings
	for place, content := range places {
		for _, s := range ps.secrets {
			if n := bytes.Count(content, s.needle); n > 0 {
				out = append(out, finding{place: place, kind: s.kind, needle: printable(s.needle), bytes: n * len(s.needle), allowed: s.allowedIn(place)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].place+out[i].needle < out[j].place+out[j].needle })
	return out
}

// checkPlaces fails unless every place the session writes to is there
// and holds what it should, so that a search finding nothing means
// something: the registered user is named in the log and the status
// API, the file has the edited ACL, a recording was made.
func (ps *privacySession) checkPlaces(places map[string][]byte) {
	ps.t.Helper()
	want := map[string]string{
		"log": "Rita Registered", "status API": "Rita Registered", "metrics": "plenum_users",
		"plenary.toml": "Overflow", "plenary.toml.bak": "Overflow", "data/plenum.db": "SQLite format 3",
		"database table users": "Rita Registered", "database table bans": "repeated disruption",
	}
	for place, content := range want {
		if !bytes.Contains(places[place], []byte(content)) {
			ps.t.Errorf("%s does not hold %q: the search would not see what it looks for (places: %v)", place, content, keysOf(places))
		}
	}
	recordings, _ := filepath.Glob(filepath.Join(ps.dir, "data", "recordings", "Plenary-*.opus"))
	if len(recordings) == 0 {
		ps.t.Error("no recording was made")
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return hex.EncodeToString(b)
		}
	}
	return string(b)
}

// dumpDatabase returns every table's rows as text, one line per row.
func dumpDatabase(t *testing.T, path string) map[string][]byte {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := db.QueryContext(context.Background(), `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		names.Scan(&n)
		tables = append(tables, n)
	}
	names.Close()
	out := map[string][]byte{}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var b bytes.Buffer
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					b.Write(bs) // blobs as they are, so byte needles match
				} else {
					fmt.Fprint(&b, v)
				}
				if i < len(vals)-1 {
					b.WriteByte('|')
				}
			}
			b.WriteByte('\n')
		}
		rows.Close()
		out[table] = b.Bytes()
	}
	if len(tables) < 3 {
		t.Fatalf("the database has only the tables %v", tables)
	}
	return out
}
