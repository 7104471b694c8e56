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
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/murmurtest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

const murmurdPath = murmurtest.Path

// TestImportMurmurFromMurmurd builds state in a real Murmur (Debian's
// murmurd 1.3.4) through the protocol, as an admin would with a Mumble
// client, then imports its database.
func TestImportMurmurFromMurmurd(t *testing.T) {
	if _, err := os.Stat(murmurdPath); err != nil {
		t.Skip("murmurd not installed (apt-get install mumble-server); skipping the import of a real Murmur database")
	}
	if testing.Short() {
		t.Skip("starts murmurd")
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "murmur.sqlite")
	addr, iniPath, stop := startImportMurmurd(t, dir, dbPath)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The certificate Murmur presents must come out of the import.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	serverCert := conn.ConnectionState().PeerCertificates[0].Raw
	conn.Close()

	aliceCert, aliceHash := testClientCert(t, "alice")
	alice, err := client.Dial(ctx, client.Config{Address: addr, Username: "alice", Certificate: &aliceCert})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	su, err := client.Dial(ctx, client.Config{Address: addr, Username: "SuperUser", Password: "supw-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close()

	// Channels: Lobby, Plenary (described, positioned) with Room 1 below.
	mkChannel := func(parent uint32, name string, m *mumblepb.ChannelState) uint32 {
		t.Helper()
		if m == nil {
			m = &mumblepb.ChannelState{}
		}
		m.Parent, m.Name = proto.Uint32(parent), proto.String(name)
		if err := su.Send(m); err != nil {
			t.Fatal(err)
		}
		var id uint32
		err := su.Wait(ctx, func(c *client.Client) bool {
			for cid, ch := range c.Channels() {
				if ch.GetName() == name && ch.GetParent() == parent {
					id = cid
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("channel %q never appeared: %v", name, err)
		}
		return id
	}
	lobby := mkChannel(0, "Lobby", nil)
	plenary := mkChannel(0, "Plenary", &mumblepb.ChannelState{Description: proto.String("The <b>plenary</b> hall"), Position: proto.Int32(5)})
	room := mkChannel(plenary, "Room 1", &mumblepb.ChannelState{MaxUsers: proto.Uint32(8)})
	if err := su.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(plenary), LinksAdd: []uint32{lobby}}); err != nil {
		t.Fatal(err)
	}

	// Register alice (she has a certificate).
	if err := su.Send(&mumblepb.UserState{Session: proto.Uint32(alice.Session()), UserId: proto.Uint32(0)}); err != nil {
		t.Fatal(err)
	}
	var aliceID uint32
	err = su.Wait(ctx, func(c *client.Client) bool {
		u := c.Users()[alice.Session()]
		if u != nil && u.UserId != nil {
			aliceID = u.GetUserId()
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("alice was not registered: %v", err)
	}

	// Plenary's ACL: everyone hears, speakers (alice) speak, alice may mute;
	// a Kick grant here never had an effect in Murmur.
	err = su.Send(&mumblepb.ACL{
		ChannelId:   proto.Uint32(plenary),
		InheritAcls: proto.Bool(true),
		Groups: []*mumblepb.ACL_ChanGroup{
			{Name: proto.String("speakers"), Inherit: proto.Bool(true), Inheritable: proto.Bool(false), Add: []uint32{aliceID}},
		},
		Acls: []*mumblepb.ACL_ChanACL{
			{ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Group: proto.String("all"), Deny: proto.Uint32(uint32(acl.Speak))},
			{ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(false), Group: proto.String("speakers"), Grant: proto.Uint32(uint32(acl.Speak | acl.Whisper))},
			{ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), UserId: proto.Uint32(aliceID), Grant: proto.Uint32(uint32(acl.MuteDeafen | acl.Kick))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	banHash := strings.Repeat("ab", 20)
	addr16 := netip.MustParseAddr("::ffff:192.0.2.0").As16()
	err = su.Send(&mumblepb.BanList{Bans: []*mumblepb.BanList_BanEntry{{
		Address: addr16[:], Mask: proto.Uint32(120), Name: proto.String("troll"), Hash: proto.String(banHash),
		Reason: proto.String("spam"), Start: proto.String(time.Now().UTC().Format("2006-01-02T15:04:05")), Duration: proto.Uint32(0),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	// Murmur handles one connection's messages in order and writes its
	// database before it answers the next one.
	if _, err := su.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := su.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	su.Close()
	alice.Close()
	stop()

	data := filepath.Join(dir, "plenum-data")
	out := filepath.Join(dir, "plenum.toml")
	var summary bytes.Buffer
	if err := runImportMurmur([]string{"-data", data, "-out", out, "-ini", iniPath, dbPath}, &summary); err != nil {
		t.Fatalf("import: %v\n%s", err, summary.String())
	}
	t.Logf("summary:\n%s", summary.String())
	cfg, err := conf.Load(out)
	if err != nil {
		t.Fatal(err)
	}

	if cfg.Server.Name != "Root" {
		t.Errorf("server name %q, want Murmur's root channel name", cfg.Server.Name)
	}
	if cfg.Server.MaxUsers != 100 || cfg.Server.WelcomeText != "Hello from Murmur" {
		t.Errorf("ini settings not carried over: max_users %d, welcome_text %q", cfg.Server.MaxUsers, cfg.Server.WelcomeText)
	}
	var names []string
	cfg.Walk(func(path string, _ *conf.Channel, _ string) { names = append(names, path) })
	if want := []string{"Lobby", "Plenary", "Plenary/Room 1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("channels %q, want %q", names, want)
	}
	pl := cfg.Lookup("Plenary")
	if pl == nil {
		t.Fatal("no Plenary")
	}
	if pl.Description != "The <b>plenary</b> hall" || pl.Position != 5 {
		t.Errorf("Plenary description %q position %d", pl.Description, pl.Position)
	}
	if r := cfg.Lookup("Plenary/Room 1"); r == nil || r.MaxUsers != 8 {
		t.Errorf("Room 1: %+v", r)
	}
	if got := cfg.LinkPairs(); !reflect.DeepEqual(got, [][2]string{{"Lobby", "Plenary"}}) {
		t.Errorf("links %v", got)
	}
	g := pl.Groups["speakers"]
	if g == nil || !reflect.DeepEqual(g.Add, []string{"alice"}) || !g.Inherits() || g.IsInheritable() {
		t.Errorf("speakers group %+v", g)
	}
	type entry struct {
		who         string
		here, subs  bool
		allow, deny acl.Permission
	}
	flat := func(es []conf.ACLEntry) []entry {
		var out []entry
		for _, e := range es {
			a, d := e.Permissions()
			out = append(out, entry{e.User + e.Group, e.Here(), e.Subs(), a, d})
		}
		return out
	}
	wantPl := []entry{
		{"all", true, true, 0, acl.Speak},
		{"speakers", true, false, acl.Speak | acl.Whisper, 0},
		{"alice", true, true, acl.MuteDeafen, 0},
	}
	if got := flat(pl.ACL); !reflect.DeepEqual(got, wantPl) {
		t.Errorf("Plenary ACL\n got %+v\nwant %+v", got, wantPl)
	}
	// Murmur's defaults for a new server's root channel.
	wantRoot := []entry{
		{"admin", true, true, acl.Write, 0},
		{"auth", true, true, acl.MakeTempChannel, 0},
		{"all", true, false, acl.SelfRegister, 0},
	}
	if got := flat(cfg.ACL); !reflect.DeepEqual(got, wantRoot) {
		t.Errorf("root ACL\n got %+v\nwant %+v", got, wantRoot)
	}
	if _, ok := cfg.Groups["admin"]; !ok {
		t.Errorf("root groups %v lack Murmur's admin group", cfg.Groups)
	}
	if !strings.Contains(summary.String(), "Kick left out") {
		t.Errorf("summary does not warn about the masked Kick:\n%s", summary.String())
	}

	// The certificate is Murmur's.
	pemData, err := os.ReadFile(cfg.Server.Certificate)
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	if blk, _ := pem.Decode(pemData); blk == nil || !bytes.Equal(blk.Bytes, serverCert) {
		t.Errorf("imported certificate is not the one murmurd presented")
	}
	if _, err := tls.LoadX509KeyPair(cfg.Server.Certificate, cfg.Server.Key); err != nil {
		t.Errorf("imported certificate and key: %v", err)
	}

	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByName("alice")
	if err != nil || u.CertHash != aliceHash {
		t.Errorf("alice in the store: %+v, %v (want cert %s)", u, err, aliceHash)
	}
	bans, err := st.Bans()
	if err != nil {
		t.Fatal(err)
	}
	if len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("192.0.2.0/24") || bans[0].CertHash != banHash ||
		bans[0].Name != "troll" || bans[0].Reason != "spam" || bans[0].Duration != 0 {
		t.Errorf("bans %+v", bans)
	}
	numbered, err := st.AssignChannelIDs(names) // as the server will at start
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]uint32{"Lobby": lobby, "Plenary": plenary, "Plenary/Room 1": room} {
		if got := numbered.Paths[path]; got != want {
			t.Errorf("%s has id %d in Plenum, %d in Murmur", path, got, want)
		}
	}

	// Running it again changes nothing in the store and needs -force.
	if err := runImportMurmur([]string{"-data", data, "-out", out, "-ini", iniPath, dbPath}, &bytes.Buffer{}); err == nil {
		t.Error("an existing -out file was overwritten without -force")
	}
	summary.Reset()
	if err := runImportMurmur([]string{"-force", "-data", data, "-out", out, "-ini", iniPath, dbPath}, &summary); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary.String(), "0 registered, 1 already registered") || !strings.Contains(summary.String(), "1 already present") {
		t.Errorf("second run:\n%s", summary.String())
	}
	if bans, _ := st.Bans(); len(bans) != 1 {
		t.Errorf("second run duplicated bans: %+v", bans)
	}
}

// startImportMurmurd runs murmurd in dir with its own ini, database and
// port, after setting the SuperUser password "supw-test". It returns the
// address, the ini file and a function that stops murmurd (SIGTERM, wait).
func startImportMurmurd(t *testing.T, dir, dbPath string) (addr, iniPath string, stop func()) {
	t.Helper()
	m := murmurtest.Start(t, murmurtest.Config{
		Dir:               dir,
		Database:          dbPath,
		Ini:               []string{`welcometext="Hello from Murmur"`},
		SuperUserPassword: "supw-test",
	})
	return m.Addr, m.IniPath, m.Stop
}

// testClientCert makes a self-signed client certificate and returns it with
// its hash as Murmur computes it (SHA-1 of the DER, lowercase hex).
func testClientCert(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:])
}

// murmurSchema is Murmur's SQLite schema (the columns import-murmur reads),
// with the table prefix %[1]s.
const murmurSchema = `
CREATE TABLE %[1]sservers (server_id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE %[1]sconfig (server_id INTEGER NOT NULL, key TEXT, value TEXT);
CREATE TABLE %[1]schannels (server_id INTEGER NOT NULL, channel_id INTEGER NOT NULL, parent_id INTEGER, name TEXT, inheritacl INTEGER);
CREATE TABLE %[1]schannel_info (server_id INTEGER NOT NULL, channel_id INTEGER NOT NULL, key INTEGER, value TEXT);
CREATE TABLE %[1]susers (server_id INTEGER NOT NULL, user_id INTEGER NOT NULL, name TEXT NOT NULL, pw TEXT, salt TEXT, kdfiterations INTEGER, lastchannel INTEGER, texture BLOB, last_active DATE);
CREATE TABLE %[1]suser_info (server_id INTEGER NOT NULL, user_id INTEGER NOT NULL, key INTEGER, value TEXT);
CREATE TABLE %[1]sgroups (group_id INTEGER PRIMARY KEY AUTOINCREMENT, server_id INTEGER NOT NULL, name TEXT, channel_id INTEGER NOT NULL, inherit INTEGER, inheritable INTEGER);
CREATE TABLE %[1]sgroup_members (group_id INTEGER NOT NULL, server_id INTEGER NOT NULL, user_id INTEGER NOT NULL, addit INTEGER);
CREATE TABLE %[1]sacl (server_id INTEGER NOT NULL, channel_id INTEGER NOT NULL, priority INTEGER, user_id INTEGER, group_name TEXT, apply_here INTEGER, apply_sub INTEGER, grantpriv INTEGER, revokepriv INTEGER);
CREATE TABLE %[1]schannel_links (server_id INTEGER NOT NULL, channel_id INTEGER NOT NULL, link_id INTEGER NOT NULL);
CREATE TABLE %[1]sbans (server_id INTEGER NOT NULL, base BLOB, mask INTEGER, name TEXT, hash TEXT, reason TEXT, start DATE, duration INTEGER);
`

// makeMurmurDB creates a Murmur-schema database with the given table
// prefix and fills it with stmts.
func makeMurmurDB(t *testing.T, path, prefix string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{fmt.Sprintf(murmurSchema, prefix)}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestImportMurmurEdgeCases runs the import on a hand-made database.
func TestImportMurmurEdgeCases(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "murmur.sqlite")
	bob := strings.Repeat("b", 40)
	carol := strings.Repeat("c", 40)
	all := uint32(acl.All)
	makeMurmurDB(t, dbPath, "",
		`INSERT INTO servers VALUES (1), (2)`,
		`INSERT INTO config VALUES (1, 'registername', 'Assembly'), (1, 'users', '250'), (1, 'defaultchannel', '2'),
			(1, 'timeout', '45'), (1, 'allowhtml', 'false'), (1, 'certrequired', 'true'), (1, 'bonjour', 'true'),
			(2, 'registername', 'Other server')`,
		`INSERT INTO channels VALUES (1, 0, NULL, 'Root', 1), (1, 1, 0, 'Hall', 1), (1, 2, 1, 'Side/room', 0),
			(1, 3, 0, 'Hall', 1), (1, 4, 99, 'Orphan', 1), (2, 0, NULL, 'Root', 1)`,
		`INSERT INTO channel_info VALUES (1, 1, 0, 'Main hall'), (1, 1, 1, '-3'), (1, 1, 2, 'x')`,
		`INSERT INTO channel_links VALUES (1, 1, 3), (1, 3, 1), (1, 0, 1)`,
		`INSERT INTO users (server_id, user_id, name, pw) VALUES (1, 0, 'SuperUser', 'hash'), (1, 1, 'Bob', NULL),
			(1, 2, 'carol', 'pwhash'), (1, 3, 'dave', 'pwhash'), (1, 4, 'erin', NULL)`,
		`INSERT INTO user_info VALUES (1, 1, 3, '`+strings.ToUpper(bob)+`'), (1, 1, 2, 'Hi, I am Bob'), (1, 2, 3, '`+carol+`')`,
		`INSERT INTO groups VALUES (1, 1, 'admin', 0, 1, 1), (2, 1, 'admin', 1, 1, 0), (3, 1, '~bad', 1, 1, 1)`,
		`INSERT INTO group_members VALUES (1, 1, 1, 1), (1, 1, 2, 1), (1, 1, 3, 1), (2, 1, 1, 0), (2, 1, 4, 1)`,
		fmt.Sprintf(`INSERT INTO acl VALUES
			(1, 0, 1, NULL, 'admin', 1, 1, %d, 0),
			(1, 0, 2, NULL, 'all', 0, 1, %d, 0),
			(1, 1, 1, 2, NULL, 1, 0, %d, %d),
			(1, 1, 2, NULL, 'admin', 1, 1, %d, 0),
			(1, 1, 3, NULL, 'auth', 1, 1, %d, 0),
			(1, 1, 4, 3, NULL, 1, 1, %d, 0),
			(1, 1, 5, NULL, '!$%s', 1, 1, 0, %d)`,
			all, uint32(acl.Enter|acl.Register), uint32(acl.Speak|acl.MuteDeafen), uint32(acl.Whisper),
			uint32(acl.Kick|acl.Ban|acl.Move)|uint32(acl.Cached), uint32(acl.Kick), uint32(acl.Move),
			strings.ToUpper(carol), uint32(acl.Enter)),
		`INSERT INTO bans VALUES
			(1, X'00000000000000000000FFFFC6336400', 120, 'troll', '', 'flooding', '2024-03-01T10:00:00', 0),
			(1, NULL, 0, 'old', '`+bob+`', 'expired', '2020-01-01T00:00:00', 60),
			(1, NULL, 0, 'nobody', '', 'nothing', '2024-03-01T10:00:00', 0)`,
	)
	before, _ := os.ReadFile(dbPath)

	data := filepath.Join(dir, "data")
	out := filepath.Join(dir, "out.toml")
	var summary bytes.Buffer
	if err := runImportMurmur([]string{"-data", data, "-out", out, dbPath}, &summary); err != nil {
		t.Fatalf("%v\n%s", err, summary.String())
	}
	s := summary.String()
	t.Logf("summary:\n%s", s)
	if after, _ := os.ReadFile(dbPath); !bytes.Equal(before, after) {
		t.Error("Murmur's database was modified")
	}
	cfg, err := conf.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	sv := cfg.Server
	if sv.Name != "Assembly" || sv.MaxUsers != 250 || sv.Timeout.Duration != 45*time.Second || sv.AllowHTML || sv.DefaultChannel != "Hall/Side-room" {
		t.Errorf("server settings %+v", sv)
	}
	if abs, _ := filepath.Abs(data); sv.DataDir != abs {
		t.Errorf("data_dir %q, want %q", sv.DataDir, abs)
	}
	var paths []string
	cfg.Walk(func(p string, _ *conf.Channel, _ string) { paths = append(paths, p) })
	if want := []string{"Hall", "Hall/Side-room", "Hall (3)"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("channels %q, want %q", paths, want)
	}
	hall := cfg.Lookup("Hall")
	if hall.Description != "Main hall" || hall.Position != -3 || hall.MaxUsers != 0 || !hall.InheritsACL() {
		t.Errorf("Hall %+v", hall)
	}
	if side := cfg.Lookup("Hall/Side-room"); side.InheritsACL() {
		t.Error("inheritacl 0 lost")
	}
	if !reflect.DeepEqual(hall.Links, []string{"Hall (3)"}) {
		t.Errorf("Hall links %q", hall.Links)
	}

	// Groups: root admin has Bob (Bob's name as registered) and carol; dave
	// has no certificate and is left out. Hall's admin removes Bob and
	// adds erin (skipped: no certificate); the "~bad" group is left out.
	if g := cfg.Groups["admin"]; g == nil || !reflect.DeepEqual(g.Add, []string{"Bob", "carol"}) || len(g.Remove) != 0 {
		t.Errorf("root admin group %+v", g)
	}
	if g := hall.Groups["admin"]; g == nil || !reflect.DeepEqual(g.Remove, []string{"Bob"}) || len(g.Add) != 0 || g.IsInheritable() {
		t.Errorf("Hall admin group %+v", g)
	}
	if _, ok := hall.Groups["~bad"]; ok {
		t.Error("group ~bad kept")
	}

	// ACL: root entries keep their root-only bits only with apply_here;
	// Hall's user entry names carol, Kick|Ban are masked, the Kick-only
	// entry disappears and dave's entry (no certificate) is left out. The
	// entry for an upper-case hash is kept: negated, Murmur matches
	// everybody with it.
	rootAllow := func(i int) acl.Permission { a, _ := cfg.ACL[i].Permissions(); return a }
	if len(cfg.ACL) != 2 || rootAllow(0) != acl.All || rootAllow(1) != acl.Enter {
		t.Errorf("root ACL %+v", cfg.ACL)
	}
	if len(hall.ACL) != 3 {
		t.Fatalf("Hall ACL %+v", hall.ACL)
	}
	if e := hall.ACL[2]; e.Group != "!$"+strings.ToUpper(carol) || !slices.Equal(e.Deny, []string{"Enter"}) {
		t.Errorf("Hall entry for an upper-case hash %+v", e)
	}
	if e := hall.ACL[0]; e.User != "carol" || e.Subs() || !slices.Equal(e.Allow, []string{"Speak", "MuteDeafen"}) || !slices.Equal(e.Deny, []string{"Whisper"}) {
		t.Errorf("Hall user entry %+v", e)
	}
	if e := hall.ACL[1]; e.Group != "admin" || !slices.Equal(e.Allow, []string{"Move"}) {
		t.Errorf("Hall admin entry %+v", e)
	}

	for _, want := range []string{
		"users: 2 registered, 2 skipped",
		`"dave" (Murmur id 3): no certificate, only a password`,
		`"erin" (Murmur id 4): no certificate hash`,
		"bans: 1 imported, 1 expired and left out, 1 invalid",
		"1 imported ban(s) keep the name or certificate hash Murmur recorded",
		"Kick|Ban left out",
		`kept: group "!$` + strings.ToUpper(carol) + `": a certificate hash is 40 lowercase hex digits`,
		"certrequired",
		"bonjour",
		"1 channel(s) are not reachable", // the orphan
		"root channel and \"Hall\"",
		`"carol" had a password as well as a certificate`,
		"plenum supw",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q", want)
		}
	}

	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByName("bob")
	if err != nil || u.Name != "Bob" || u.CertHash != bob || u.Comment != "Hi, I am Bob" {
		t.Errorf("Bob: %+v, %v", u, err)
	}
	if _, err := st.UserByName("dave"); err == nil {
		t.Error("dave registered without a certificate")
	}
	bans, _ := st.Bans()
	if len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("198.51.100.0/24") || bans[0].Reason != "flooding" ||
		!bans[0].Start.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("bans %+v", bans)
	}

	// Server 2 and a missing server.
	out2 := filepath.Join(dir, "two.toml")
	if err := runImportMurmur([]string{"-server", "2", "-data", filepath.Join(dir, "d2"), "-out", out2, dbPath}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if c, err := conf.Load(out2); err != nil || c.Server.Name != "Other server" || len(c.Channels) != 0 {
		t.Errorf("server 2: %v", err)
	}
	err = runImportMurmur([]string{"-server", "7", "-data", filepath.Join(dir, "d3"), "-out", filepath.Join(dir, "x.toml"), dbPath}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "it has: 1, 2") {
		t.Errorf("missing server: %v", err)
	}
}

// TestImportMurmurPrefix reads tables with a dbPrefix given by Murmur's ini.
func TestImportMurmurPrefix(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "murmur.sqlite")
	makeMurmurDB(t, dbPath, "mm_",
		`INSERT INTO mm_servers VALUES (1)`,
		`INSERT INTO mm_channels VALUES (1, 0, NULL, 'Top', 1), (1, 1, 0, 'A', 1)`,
	)
	ini := filepath.Join(dir, "murmur.ini")
	os.WriteFile(ini, []byte("; comment\ndbPrefix=mm_\nport=64000\nserverpassword=\"pa\\\"ss\"\n[Ice]\nusers=3\n"), 0o600)
	out := filepath.Join(dir, "out.toml")
	err := runImportMurmur([]string{"-data", filepath.Join(dir, "d0"), "-out", out, dbPath}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "dbPrefix") {
		t.Errorf("without the prefix: %v", err)
	}
	if err := runImportMurmur([]string{"-ini", ini, "-data", filepath.Join(dir, "d"), "-out", out, dbPath}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Name != "Top" || cfg.Lookup("A") == nil || cfg.Server.Listen != ":64000" || cfg.Server.Password != `pa"ss` || cfg.Server.MaxUsers != conf.DefaultMaxUsers {
		t.Errorf("got %+v", cfg.Server)
	}
}

// TestImportMurmurKeepsChannelIDs: Murmur's channel ids (not the file
// order) are the ids Plenum gives the imported channels, in a data
// directory that had none; one that had ids keeps them. The ini's
// rememberchannel comes along.
func TestImportMurmurKeepsChannelIDs(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "murmur.sqlite")
	makeMurmurDB(t, dbPath, "",
		`INSERT INTO servers VALUES (1)`,
		`INSERT INTO channels VALUES (1, 0, NULL, 'Root', 1), (1, 7, 0, 'Lobby', 1), (1, 3, 0, 'Hall', 1), (1, 12, 3, 'Gallery', 1)`,
	)
	ini := filepath.Join(dir, "murmur.ini")
	os.WriteFile(ini, []byte("rememberchannel=false\nrememberchannelduration=60\n"), 0o600)
	data := filepath.Join(dir, "data")
	out := filepath.Join(dir, "out.toml")
	var summary bytes.Buffer
	if err := runImportMurmur([]string{"-ini", ini, "-data", data, "-out", out, dbPath}, &summary); err != nil {
		t.Fatalf("%v\n%s", err, summary.String())
	}
	if !strings.Contains(summary.String(), "Murmur's channel ids are kept") {
		t.Errorf("summary does not say the ids are kept:\n%s", summary.String())
	}
	cfg, err := conf.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.RememberChannel {
		t.Error("rememberchannel=false in the ini did not become remember_channel = false")
	}
	paths := configPaths(cfg)
	st, err := store.Open(filepath.Join(data, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.AssignChannelIDs(paths) // what the server does at start
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]uint32{"Lobby": 7, "Hall": 3, "Hall/Gallery": 12} {
		if got.Paths[path] != want {
			t.Errorf("%s has id %d, want Murmur's %d (paths %q)", path, got.Paths[path], want, paths)
		}
	}

	// Again into the same data directory: the recorded ids stay.
	summary.Reset()
	if err := runImportMurmur([]string{"-force", "-data", data, "-out", out, dbPath}, &summary); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary.String(), "has channel ids already") {
		t.Errorf("second import does not say the ids stay:\n%s", summary.String())
	}
}
