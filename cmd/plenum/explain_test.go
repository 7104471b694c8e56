package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/store"
	"google.golang.org/protobuf/proto"
)

// registered are the example names of conf/examples/plenary.toml that the
// tests register; delegate-greta, also a speaker there, is left
// unregistered on purpose.
var registered = []string{"admin-lena", "chair-anna", "chair-david", "mod-ben", "mod-carla", "delegate-farid"}

// plenaryFixture copies the example config into a temporary directory and
// registers the example names in a store there. certs overrides the
// certificate hash of some names.
func plenaryFixture(t *testing.T, certs map[string]string) (cfgPath, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "conf", "examples", "plenary.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "plenary.toml")
	if err := os.WriteFile(cfgPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dataDir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, name := range registered {
		hash := fmt.Sprintf("%040x", i+1)
		if h, ok := certs[name]; ok {
			hash = h
		}
		if _, err := st.Register(name, hash); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, dataDir
}

func explainOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runExplain(args, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("acl explain %q: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func wantLines(t *testing.T, out string, first string, contains ...string) {
	t.Helper()
	if got, _, _ := strings.Cut(out, "\n"); got != first {
		t.Errorf("first line %q, want %q\n%s", got, first, out)
	}
	for _, want := range contains {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainUnregisteredSpeaker(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	out := explainOut(t, "-config", cfg, "-data", data, "delegate-greta", "Speak", "Plenary")
	wantLines(t, out, "delegate-greta MAY NOT Speak in Plenary",
		"(unregistered, in Plenary (2))",
		"=> entry #0 on Plenary (2) (@all, here, allow None, deny Speak|Whisper): matches: everyone is in all",
		"entry #1 on Plenary (2) (@speakers, here, allow Speak, deny None): does not match: not a member of speakers",
		"DENIED: Speak in Plenary (2)",
		`note: delegate-greta is named in the ACL of "Plenary" but is not registered`)
	// Plain visitors are told the same, without the note about them.
	out = explainOut(t, "-config", cfg, "-data", data, "visitor", "speak", "Plenary")
	wantLines(t, out, "visitor MAY NOT Speak in Plenary", "=> entry #0 on Plenary (2)")
	if strings.Contains(out, "visitor is named") {
		t.Errorf("visitor is not in any ACL:\n%s", out)
	}
}

func TestExplainRegisteredSpeaker(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	out := explainOut(t, "-config", cfg, "-data", data, "Delegate-Farid", "Speak", "Plenary")
	wantLines(t, out, "delegate-farid MAY Speak in Plenary",
		"delegate-farid (user id 6, in Plenary (2))",
		"   entry #0 on Plenary (2) (@all, here, allow None, deny Speak|Whisper): matches",
		"=> entry #1 on Plenary (2) (@speakers, here, allow Speak, deny None): matches: member of speakers via add on Plenary (2); applies",
		"ALLOWED: Speak in Plenary (2)")
	// Speak is denied only in Plenary itself (apply_subs = false).
	out = explainOut(t, "-config", cfg, "-data", data, "visitor", "Speak", "Breakout rooms/Room 3")
	wantLines(t, out, "visitor MAY Speak in Breakout rooms/Room 3", "(unregistered, in Room 3 (6))", "entry #0 on Breakout rooms (3) (@all, here+subs, allow Enter|Speak|Whisper, deny None): matches",
		"ALLOWED: Speak in Room 3 (6)")
}

func TestExplainModeratorKick(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	out := explainOut(t, "-config", cfg, "-data", data, "mod-ben", "Kick", "/")
	wantLines(t, out, "mod-ben MAY Kick in the root channel",
		"=> entry #2 on General Assembly (0) (@moderators, here, allow Kick, deny None): matches: member of moderators via add on General Assembly (0)",
		"; applies; now Traverse|Enter|Speak|MuteDeafen|Move|Whisper|TextMessage|Listen|Kick")
	// Kick is root-only: even the moderators' entry does not give it in Plenary.
	out = explainOut(t, "-config", cfg, "-data", data, "mod-ben", "Kick", "Plenary")
	wantLines(t, out, "mod-ben MAY NOT Kick in Plenary")
	// A comma list explains each permission; MuteDeafen reaches Plenary from root.
	out = explainOut(t, "-config", cfg, "-data", data, "mod-carla", "MuteDeafen,Move", "Plenary")
	wantLines(t, out, "mod-carla MAY MuteDeafen in Plenary", "\n\nmod-carla MAY Move in Plenary\n")
}

func TestExplainSuperUser(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	for _, name := range acl.All.Names() {
		p, _ := acl.ParsePermission(name)
		for _, ch := range []string{"/", "Plenary"} {
			out := explainOut(t, "-config", cfg, "-data", data, "superuser", name, ch)
			verb := "MAY"
			if p == acl.Speak || p == acl.Whisper {
				verb = "MAY NOT" // SuperUser is suppressed, as in Murmur
			}
			where := "the root channel"
			if ch != "/" {
				where = ch
			}
			wantLines(t, out, fmt.Sprintf("SuperUser %s %s in %s", verb, name, where), "SuperUser (user id 0)")
		}
	}
}

func TestExplainWithoutDatabase(t *testing.T) {
	cfg, _ := plenaryFixture(t, nil)
	data := filepath.Join(t.TempDir(), "empty")
	out := explainOut(t, "-config", cfg, "-data", data, "-in", "Lobby", "delegate-farid", "Speak", "Plenary")
	wantLines(t, out, "delegate-farid MAY NOT Speak in Plenary (while in Lobby)",
		"(unregistered, in Lobby (1))",
		"note: no database at "+filepath.Join(data, "plenum.db"),
		`the ACL of the root channel names "mod-ben", who is not registered`)
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("explain created the data directory: %v", err)
	}
	out = explainOut(t, "-config", cfg, "-data", data, "SuperUser", "Write", "Lobby")
	wantLines(t, out, "SuperUser MAY Write in Lobby")
}

// TestExplainStrong: without a certificate a user is in "strong", with one
// (Mumble's own are self-signed) not, unless -strong says it verifies.
func TestExplainStrong(t *testing.T) {
	cfgPath, data := plenaryFixture(t, nil)
	cfg, err := conf.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACL = append(cfg.ACL, conf.ACLEntry{Group: "strong", Allow: []string{"MakeChannel"}})
	if err := conf.WriteFile(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"visitor"}, []string{"visitor MAY MakeChannel in the root channel", "no certificate, which counts as strong"}},
		{[]string{"-cert", hash, "visitor"}, []string{"visitor MAY NOT MakeChannel in the root channel", "certificate does not verify against the trusted CAs"}},
		{[]string{"-cert", hash, "-strong", "visitor"}, []string{"visitor MAY MakeChannel in the root channel", "certificate verifies against the trusted CAs"}},
		{[]string{"delegate-farid"}, []string{"delegate-farid MAY NOT MakeChannel in the root channel"}},
		{[]string{"-strong=false", "visitor"}, []string{"visitor MAY NOT MakeChannel in the root channel"}},
	} {
		args := append([]string{"-config", cfgPath, "-data", data}, tc.args...)
		out := explainOut(t, append(args, "MakeChannel", "/")...)
		wantLines(t, out, tc.want[0], tc.want[1:]...)
	}
}

// TestExplainUnregisteredUserEntry: a user entry for a name nobody has
// registered matches nobody and says so; it keeps its place, so entries
// are numbered as the server and the ACL editor number them.
func TestExplainUnregisteredUserEntry(t *testing.T) {
	cfgPath, data := plenaryFixture(t, nil)
	cfg, err := conf.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	n := len(cfg.ACL)
	cfg.ACL = append(cfg.ACL, conf.ACLEntry{User: "delegate-greta", Allow: []string{"MakeChannel"}},
		conf.ACLEntry{User: "mod-ben", Allow: []string{"MakeChannel"}})
	if err := conf.WriteFile(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	out := explainOut(t, "-config", cfgPath, "-data", data, "delegate-greta", "MakeChannel", "/")
	wantLines(t, out, "delegate-greta MAY NOT MakeChannel in the root channel",
		fmt.Sprintf("entry #%d on General Assembly (0) (user -2, here+subs, allow MakeChannel, deny None): does not match: the entry is for a name nobody has registered (user -2)", n),
		"(user -2 = delegate-greta (not registered), user 4 = mod-ben)",
		"note: delegate-greta is named in the ACL of the root channel but is not registered, so that name matches nobody yet")
	out = explainOut(t, "-config", cfgPath, "-data", data, "mod-ben", "MakeChannel", "/")
	wantLines(t, out, "mod-ben MAY MakeChannel in the root channel",
		fmt.Sprintf("=> entry #%d on General Assembly (0) (user 4, here+subs, allow MakeChannel, deny None): matches", n+1),
		`note: the ACL of the root channel names "delegate-greta", who is not registered: the name matches nobody until someone registers under it`)
}

func TestExplainFlagsAnywhere(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	out := explainOut(t, "visitor", "-config", cfg, "Enter", "Plenary", "-data", data, "-token", "a", "-token", "b")
	wantLines(t, out, "visitor MAY Enter in Plenary")
	// Channel ids as `plenum check` prints them work too.
	out = explainOut(t, "-config", cfg, "-data", data, "-in", "3", "visitor", "Enter", "2")
	wantLines(t, out, "visitor MAY Enter in Plenary (while in Breakout rooms)")
}

func TestExplainErrors(t *testing.T) {
	cfg, data := plenaryFixture(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"visitor", "Speak", "Plenum"}, `unknown channel "Plenum"`},
		{[]string{"visitor", "Speak", "plenary"}, `did you mean "Plenary"`},
		{[]string{"visitor", "Speak", "Breakout rooms/Room 21"}, `unknown channel "Breakout rooms/Room 21"`},
		{[]string{"visitor", "Talk", "Plenary"}, `unknown permission "Talk"`},
		{[]string{"visitor", "Speak,", "Plenary"}, ``},
		{[]string{"visitor", ",", "Plenary"}, `no permission given`},
		{[]string{"-in", "Nowhere", "visitor", "Speak", "Plenary"}, `-in: unknown channel "Nowhere"`},
		{[]string{"-cert", "xyz", "visitor", "Speak", "Plenary"}, `not a 40-digit hex certificate hash`},
		{[]string{"visitor", "Speak"}, `needs USER PERMISSION CHANNEL, got 2`},
		{[]string{"-bogus", "visitor", "Speak", "Plenary"}, `flag provided but not defined`},
	} {
		args := append([]string{"-config", cfg, "-data", data}, tc.args...)
		err := runExplain(args, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := runACL(nil, &bytes.Buffer{}); err == nil {
		t.Error("plenum acl without subcommand accepted")
	}
	if err := runACL([]string{"list"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown subcommand "list"`) {
		t.Errorf("plenum acl list: %v", err)
	}
}

// TestExplainMatchesServer starts the server on the example config and
// checks that the command numbers channels as the server does and computes
// the permissions the server sends its clients.
func TestExplainMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	cert, hash := clientCert(t)
	cfgPath, data := plenaryFixture(t, map[string]string{"delegate-farid": hash})
	cfg, err := conf.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The strong group: the visitor has no certificate and is in it,
	// delegate-farid's self-signed certificate is not.
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "Lobby" {
			cfg.Channels[i].ACL = append(cfg.Channels[i].ACL, conf.ACLEntry{Group: "strong", Allow: []string{"MakeChannel"}})
		}
	}
	srv, err := server.New(server.Options{
		Config: cfg, Listen: "127.0.0.1:0", WebListen: server.NoWeb, AdminListen: server.NoAdmin, DataDir: data,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nums, err := plannedIDs(st, cfg) // the ids the running server recorded
	if err != nil {
		t.Fatal(err)
	}
	tree, _, err := buildExplainTree(cfg, st, nums.ids)
	if err != nil {
		t.Fatal(err)
	}

	for _, who := range []struct {
		name string
		cert *tls.Certificate
	}{{"visitor", nil}, {"delegate-farid", cert}} {
		t.Run(who.name, func(t *testing.T) {
			replies := make(chan *mumblepb.PermissionQuery, 64)
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			c, err := client.Dial(dctx, client.Config{
				Address: srv.Addr().String(), Username: who.name, Certificate: who.cert, DisableUDP: true,
				OnMessage: func(_ control.Type, m proto.Message) {
					if pq, ok := m.(*mumblepb.PermissionQuery); ok {
						select {
						case replies <- pq:
						default:
						}
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			// The server's ids are the command's.
			chans := c.Channels()
			if len(chans) != len(tree.names) {
				t.Fatalf("server has %d channels, explain %d", len(chans), len(tree.names))
			}
			for id, cs := range chans {
				path := cs.GetName()
				for p := cs; p.GetChannelId() != 0; {
					p = chans[p.GetParent()]
					if p.GetChannelId() != 0 {
						path = p.GetName() + "/" + path
					}
				}
				if id == 0 {
					path = ""
				}
				if tree.paths[id] != path {
					t.Errorf("server channel %d is %q, explain's is %q", id, path, tree.paths[id])
				}
			}

			u, err := explainSubject(st, who.name, "", nil, tree.byPath["Lobby"])
			if err != nil {
				t.Fatal(err)
			}
			if who.cert != nil && u.UserID < 1 {
				t.Fatalf("%s not registered: %+v", who.name, u)
			}
			// ServerSync carries the root permissions.
			if got, want := acl.Permission(c.ServerSync().GetPermissions())&acl.All, acl.Permissions(tree, u, 0); got != want {
				t.Errorf("root: server %v, explain %v", got, want)
			}
			for _, path := range []string{"Lobby", "Plenary", "Breakout rooms", "Breakout rooms/Room 20"} {
				id := tree.byPath[path]
				if err := c.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(id)}); err != nil {
					t.Fatal(err)
				}
				var got acl.Permission
			wait:
				for {
					select {
					case pq := <-replies:
						if pq.GetChannelId() == id {
							got = acl.Permission(pq.GetPermissions()) & acl.All
							break wait
						}
					case <-time.After(10 * time.Second):
						t.Fatalf("no PermissionQuery reply for %s", path)
					}
				}
				ex := acl.Explain(tree, u, id, acl.Speak)
				if got != ex.Granted {
					t.Errorf("%s: server %v, explain %v", path, got, ex.Granted)
				}
				if path == "Plenary" && ex.Allowed != (who.cert != nil) {
					t.Errorf("%s may speak in Plenary: %v", who.name, ex.Allowed)
				}
			}
		})
	}
}

// clientCert makes a self-signed client certificate and its hash as the
// server computes it.
func clientCert(t *testing.T) (*tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "delegate-farid"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:])
}

// TestExplainFloorHall: in a floor-controlled hall, explain says that the
// ACL's Speak is not all: a member is heard only with the floor, a member
// of a floor group always.
func TestExplainFloorHall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hall.toml")
	os.WriteFile(path, []byte(`[[channel]]
name = "Hall"
floor = true
floor_groups = ["#chair"]
`), 0o600)
	out := explainOut(t, "-config", path, "-data", t.TempDir(), "alice", "Speak", "Hall")
	wantLines(t, out, "alice MAY Speak in Hall", `FLOOR: Hall is a floor-controlled hall; alice is in none of its floor groups ["#chair"], so is heard there only while holding the floor`)
	out = explainOut(t, "-config", path, "-data", t.TempDir(), "-token", "chair", "anna", "Speak", "Hall")
	wantLines(t, out, "anna MAY Speak in Hall", `anna is in its floor group "#chair", so may speak without the floor`)
	if out := explainOut(t, "-config", path, "-data", t.TempDir(), "alice", "Enter", "Hall"); strings.Contains(out, "FLOOR") {
		t.Errorf("a floor note on Enter:\n%s", out)
	}
}
