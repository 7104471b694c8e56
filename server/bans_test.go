package server_test

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// standIns is the range the ban editor's stand-in addresses come from.
var standIns = netip.MustParsePrefix("2001:db8::/32")

// seedBans stores bans in dir's database before the server starts, as an
// earlier run or `plenum import-murmur` leaves them, and returns them as
// stored.
func seedBans(t *testing.T, dir string, bans ...store.Ban) []store.Ban {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetBans(bans); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Bans()
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

var (
	banStart   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	trollHash  = strings.Repeat("ab", 20)
	impostHash = strings.Repeat("cd", 20)
)

// seededBans covers every kind of ban: an IPv4 range with everything
// typed, an IPv6 range, one IPv4 host, and a certificate-only ban.
func seededBans() []store.Ban {
	return []store.Ban{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Name: "troll", CertHash: trollHash, Reason: "spam", Start: banStart},
		{Prefix: netip.MustParsePrefix("3fff:1:2:3::/64"), Reason: "flood", Start: banStart.Add(time.Hour), Duration: 20 * 365 * 24 * time.Hour},
		{Prefix: netip.MustParsePrefix("198.51.100.23/32"), Start: banStart.Add(2 * time.Hour)},
		{CertHash: impostHash, Name: "impostor", Reason: "impersonation", Start: banStart.Add(3 * time.Hour), Duration: 20 * 365 * 24 * time.Hour},
	}
}

func banList(t *testing.T, p *peer) []client.Ban {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bans, err := p.BanList(ctx)
	if err != nil {
		t.Fatalf("ban list: %v", err)
	}
	return bans
}

// saveBans sends the list as the editor's OK does and waits until the
// server has handled it.
func saveBans(t *testing.T, p *peer, bans []client.Ban) {
	t.Helper()
	if err := p.SetBanList(bans); err != nil {
		t.Fatal(err)
	}
	syncControl(t, p)
}

func storedBans(t *testing.T, st *store.Store) []store.Ban {
	t.Helper()
	bans, err := st.Bans()
	if err != nil {
		t.Fatal(err)
	}
	return bans
}

// byReason finds the editor's entry with the given reason.
func byReason(t *testing.T, list []client.Ban, reason string) int {
	t.Helper()
	i := slices.IndexFunc(list, func(b client.Ban) bool { return b.Reason == reason })
	if i < 0 {
		t.Fatalf("no entry with reason %q in %+v", reason, list)
	}
	return i
}

// notices returns the server's text messages p received.
func notices(p *peer) string {
	var all []string
	for _, m := range messagesOf[*mumblepb.TextMessage](p) {
		all = append(all, m.GetMessage())
	}
	return strings.Join(all, "\n")
}

func TestBanBySessionStoresOnlyAddressAndReason(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "carol")
	s := startTestServer(t, testOpts{dataDir: dir, edit: hideAddresses, policy: grantAll{}})
	mod := s.join(t, "mod", nil)
	carol := s.join(t, "carol", as(certs["carol"]))
	troll := s.join(t, "troll", withCert(t)) // unregistered, with a certificate

	// A registered user: the ban keeps the name and hash the store has.
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(carol.Session()), Ban: proto.Bool(true), Reason: proto.String("off topic")})
	// Someone unregistered: only the address and the reason typed.
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(troll.Session()), Ban: proto.Bool(true), Reason: proto.String("spam")})
	for _, p := range []*peer{carol, troll} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("banned user still connected")
		}
	}
	// Every test client comes from 127.0.0.1, which is now banned: a new
	// connection just ends, as with Murmur.
	if err := dialErr(s, func(c *client.Config) { c.Username = "newcomer" }); err == nil {
		t.Fatal("connected from a banned address")
	}

	// The rows as SQLite has them.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "plenum.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM bans ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var dump []string
	for rows.Next() {
		var id, start, duration int64
		var prefix, hash sql.NullString
		var name, reason string
		if err := rows.Scan(&id, &prefix, &hash, &name, &reason, &start, &duration); err != nil {
			t.Fatal(err)
		}
		if age := time.Since(time.Unix(start, 0)); age < 0 || age > time.Minute {
			t.Errorf("ban %d starts %v ago, want now", id, age)
		}
		dump = append(dump, fmt.Sprintf("prefix=%v hash=%v name=%q reason=%q duration=%d", prefix, hash, name, reason, duration))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(certs["carol"].Certificate[0])
	want := []string{
		fmt.Sprintf(`prefix={127.0.0.1/32 true} hash={%s true} name="carol" reason="off topic" duration=0`, hex.EncodeToString(sum[:])),
		`prefix={127.0.0.1/32 true} hash={ false} name="" reason="spam" duration=0`,
	}
	if !slices.Equal(dump, want) {
		t.Errorf("bans table:\n%s\nwant\n%s", strings.Join(dump, "\n"), strings.Join(want, "\n"))
	}

	// The editor shows them under stand-ins, with the host mask.
	list := banList(t, mod)
	if len(list) != 2 {
		t.Fatalf("ban list %+v", list)
	}
	for _, b := range list {
		if !standIns.Contains(b.Address) || b.Bits != 128 {
			t.Errorf("entry %+v: want a stand-in address with mask 128", b)
		}
	}
}

func TestBanEditorRoundTripKeepsHiddenAddresses(t *testing.T) {
	dir := t.TempDir()
	before := seedBans(t, dir, seededBans()...)
	s := startTestServer(t, testOpts{dataDir: dir, edit: hideAddresses, policy: grantAll{}})
	mod := s.join(t, "mod", nil)
	st := s.openStore(t)

	// The editor is shown no address, each ban under its own stand-in
	// with the ban's mask over 128 bits.
	list := banList(t, mod)
	if len(list) != len(before) {
		t.Fatalf("editor shows %d bans, want %d: %+v", len(list), len(before), list)
	}
	seen := map[netip.Addr]bool{}
	for _, b := range list {
		if !standIns.Contains(b.Address) || seen[b.Address] {
			t.Errorf("entry %+v: want a stand-in of its own in %v", b, standIns)
		}
		seen[b.Address] = true
	}
	for reason, bits := range map[string]int{"spam": 120, "flood": 64, "": 128, "impersonation": 128} {
		if b := list[byReason(t, list, reason)]; b.Bits != bits {
			t.Errorf("ban %q shown with mask %d, want %d", reason, b.Bits, bits)
		}
	}

	// Saved unchanged (in the editor's order, not the store's): nothing
	// changes.
	saveBans(t, mod, list)
	if got := storedBans(t, st); !slices.Equal(got, before) {
		t.Fatalf("after an unchanged save:\n got %+v\nwant %+v", got, before)
	}

	// One reason edited, one ban removed: exactly that changes.
	list = banList(t, mod)
	list[byReason(t, list, "flood")].Reason = "flooding the hall"
	list = slices.Delete(list, byReason(t, list, ""), byReason(t, list, "")+1)
	saveBans(t, mod, list)
	want := slices.Clone(before)
	want[1].Reason = "flooding the hall"
	want = slices.Delete(want, 2, 3)
	if got := storedBans(t, st); !slices.Equal(got, want) {
		t.Fatalf("after editing one reason and removing one ban:\n got %+v\nwant %+v", got, want)
	}

	// A widened and a narrowed mask are not taken (the rest of the edit
	// is); an entry whose stand-in was changed, and one typed in the
	// stand-in range, name no ban and are left out; a ban typed with a
	// real address is stored as typed.
	list = banList(t, mod)
	spam := byReason(t, list, "spam")
	list[spam].Bits, list[spam].Duration = 8, time.Hour
	list[byReason(t, list, "flooding the hall")].Bits = 128
	imp := byReason(t, list, "impersonation")
	a := list[imp].Address.As16()
	a[15] ^= 1
	list[imp].Address = netip.AddrFrom16(a)
	typedStart := time.Now().UTC().Truncate(time.Second)
	list = append(list,
		client.Ban{Address: netip.MustParseAddr("2001:db8::1"), Bits: 128, Reason: "typed stand-in", Start: typedStart},
		client.Ban{Address: netip.MustParseAddr("203.0.113.9"), Bits: 32, Reason: "typed", Start: typedStart})
	saveBans(t, mod, list)
	want = []store.Ban{want[0], want[1],
		{Prefix: netip.MustParsePrefix("203.0.113.9/32"), Reason: "typed", Start: typedStart}}
	want[0].Duration = time.Hour
	got := storedBans(t, st)
	if !slices.Equal(got, want) {
		t.Fatalf("after widening, narrowing and tampering:\n got %+v\nwant %+v", got, want)
	}
	for _, b := range got {
		if b.Prefix.Overlaps(standIns) {
			t.Errorf("stored a ban in the stand-in range: %+v", b)
		}
	}
	n := notices(mod)
	if !strings.Contains(n, "mask of 2 edited ban(s) was kept") || !strings.Contains(n, "2 ban(s) with an address in 2001:db8::/32") {
		t.Errorf("the editor was not told what was not taken: %q", n)
	}
}

func TestBanEditorRoundTripEnforcesRestoredAddresses(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "impostor")
	sum := sha1.Sum(certs["impostor"].Certificate[0])
	seedBans(t, dir, store.Ban{CertHash: hex.EncodeToString(sum[:]), Reason: "impersonation"})
	s := startTestServer(t, testOpts{dataDir: dir, edit: hideAddresses, policy: grantAll{}})
	mod := s.join(t, "mod", nil)
	impostor := func(c *client.Config) { c.Username, c.Certificate = "impostor", certs["impostor"] }
	if dialErr(s, impostor) == nil {
		t.Fatal("a stored certificate ban did not apply")
	}

	// A ban typed with a real address applies to new connections, and
	// keeps applying after the list went through the editor, where its
	// address was hidden.
	list := banList(t, mod)
	list = append(list, client.Ban{Address: netip.MustParseAddr("127.0.0.1"), Bits: 32, Reason: "everyone here", Start: time.Now().UTC()})
	saveBans(t, mod, list)
	saveBans(t, mod, banList(t, mod))
	if dialErr(s, func(c *client.Config) { c.Username = "newcomer" }) == nil {
		t.Fatal("connected from an address banned through the editor")
	}
	list = banList(t, mod)
	for _, b := range list {
		if !standIns.Contains(b.Address) {
			t.Errorf("entry %+v shows an address", b)
		}
	}
	list = slices.Delete(list, byReason(t, list, "everyone here"), byReason(t, list, "everyone here")+1)
	saveBans(t, mod, list)
	s.join(t, "newcomer", nil)
	if dialErr(s, impostor) == nil {
		t.Fatal("the certificate ban was lost in the editor")
	}
	saveBans(t, mod, nil)
	s.join(t, "impostor", as(certs["impostor"]))
}

func TestBanEditorShowsRealAddressesWhenConfigured(t *testing.T) {
	dir := t.TempDir()
	before := seedBans(t, dir, seededBans()...)
	s := startTestServer(t, testOpts{dataDir: dir, edit: showAddresses, policy: grantAll{}})
	mod := s.join(t, "mod", nil)
	st := s.openStore(t)

	list := banList(t, mod)
	for reason, want := range map[string]string{"spam": "192.0.2.0/24", "flood": "3fff:1:2:3::/64", "": "198.51.100.23/32"} {
		b := list[byReason(t, list, reason)]
		if got := netip.PrefixFrom(b.Address, b.Bits); got.String() != want {
			t.Errorf("ban %q shown as %v, want %s", reason, got, want)
		}
	}
	// A ban without an address still gets a stand-in: the editor would
	// drop an entry with the all-zero address and delete the ban on save.
	if b := list[byReason(t, list, "impersonation")]; !standIns.Contains(b.Address) {
		t.Errorf("certificate-only ban shown as %v", b.Address)
	}

	saveBans(t, mod, list)
	got := storedBans(t, st)
	sortBans(got)
	want := slices.Clone(before)
	sortBans(want)
	if !slices.Equal(got, want) {
		t.Fatalf("after an unchanged save:\n got %+v\nwant %+v", got, want)
	}

	// Here an edited mask is taken, as Murmur takes it.
	list = banList(t, mod)
	list[byReason(t, list, "spam")].Bits = 16
	saveBans(t, mod, list)
	if !slices.ContainsFunc(storedBans(t, st), func(b store.Ban) bool {
		return b.Reason == "spam" && b.Prefix == netip.MustParsePrefix("192.0.0.0/16")
	}) {
		t.Errorf("edited mask not stored: %+v", storedBans(t, st))
	}
}

func TestBanListDropsExpiredBans(t *testing.T) {
	dir := t.TempDir()
	old := store.Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Reason: "long over", Start: banStart, Duration: time.Hour}
	seedBans(t, dir, old)
	s := startTestServer(t, testOpts{dataDir: dir, edit: hideAddresses, policy: grantAll{}})
	st := s.openStore(t)
	if got := storedBans(t, st); len(got) != 0 {
		t.Fatalf("expired ban kept at start: %+v", got)
	}
	mod := s.join(t, "mod", nil)
	now := time.Now().UTC().Truncate(time.Second)
	saveBans(t, mod, []client.Ban{
		{Address: netip.MustParseAddr("192.0.2.2"), Bits: 32, Reason: "just over", Start: now.Add(-time.Minute), Duration: time.Second},
		{Address: netip.MustParseAddr("192.0.2.3"), Bits: 32, Reason: "running", Start: now, Duration: time.Hour},
	})
	list := banList(t, mod)
	if len(list) != 1 || list[0].Reason != "running" {
		t.Errorf("editor shows %+v, want only the running ban", list)
	}
	if got := storedBans(t, st); len(got) != 1 || got[0].Reason != "running" {
		t.Errorf("stored %+v, want only the running ban", got)
	}
}

func sortBans(bans []store.Ban) {
	slices.SortFunc(bans, func(x, y store.Ban) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
}

func TestTwoBanEditorsAtOnceLoseNoBan(t *testing.T) {
	dir := t.TempDir()
	before := seedBans(t, dir, seededBans()...)
	s := startTestServer(t, testOpts{dataDir: dir, edit: hideAddresses, policy: grantAll{}})
	a := s.join(t, "admin-a", nil)
	b := s.join(t, "admin-b", nil)
	st := s.openStore(t)

	listA, listB := banList(t, a), banList(t, b)
	listA[byReason(t, listA, "spam")].Name = "spammer"
	saveBans(t, a, listA)
	// B saves the list it opened before A saved: its stand-ins still name
	// the same bans, so B's deletion is the only change B makes (A's edit
	// is overwritten, as with Murmur: the last save wins).
	listB = slices.Delete(listB, byReason(t, listB, "flood"), byReason(t, listB, "flood")+1)
	saveBans(t, b, listB)
	want := slices.Delete(slices.Clone(before), 1, 2)
	if got := storedBans(t, st); !slices.Equal(got, want) {
		t.Fatalf("after two editors saved:\n got %+v\nwant %+v", got, want)
	}
	if n := notices(b); n != "" {
		t.Errorf("editor B was told %q", n)
	}
}
