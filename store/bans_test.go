package store

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ipBan(prefix, hash string) Ban {
	return Ban{Prefix: netip.MustParsePrefix(prefix), CertHash: hash, Name: "troll", Reason: "spam", Start: t0}
}

func mustBan(t testing.TB, b Ban) Ban {
	t.Helper()
	n, err := b.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mapped(s string) []byte {
	a := netip.MustParseAddr(s).As16()
	return a[:]
}

func TestBanWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		addr       string
		mask       uint32
		wantPrefix string
		wantAddr   []byte // sent back: masked
	}{
		{"192.0.2.77", 128, "192.0.2.77/32", mapped("192.0.2.77")},
		{"192.0.2.77", 120, "192.0.2.0/24", mapped("192.0.2.0")},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64", mapped("2001:db8:1:2::")},
		{"::ffff:10.1.2.3", 88, "::ff00:0:0/88", mapped("::ff00:0:0")}, // wider than IPv4: stays IPv6
	} {
		addr := mapped(tc.addr)
		if len(addr) != 16 {
			t.Fatal("helper")
		}
		b, err := BanFromWire(addr, tc.mask, "troll", "ABCDEF", "spam", "2025-06-01T12:00:00Z", 3600)
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.addr, tc.mask, err)
		}
		if b.Prefix != netip.MustParsePrefix(tc.wantPrefix) {
			t.Errorf("%s/%d: prefix %v, want %s", tc.addr, tc.mask, b.Prefix, tc.wantPrefix)
		}
		if b.CertHash != "abcdef" || b.Name != "troll" || b.Reason != "spam" || !b.Start.Equal(t0) || b.Duration != time.Hour {
			t.Errorf("%s/%d: fields %+v", tc.addr, tc.mask, b)
		}
		a, m, start, dur := b.Wire()
		if !bytes.Equal(a, tc.wantAddr) || m != tc.mask || start != "2025-06-01T12:00:00Z" || dur != 3600 {
			t.Errorf("%s/%d: Wire() = %x %d %q %d", tc.addr, tc.mask, a, m, start, dur)
		}
		again, err := BanFromWire(a, m, b.Name, b.CertHash, b.Reason, start, dur)
		if err != nil || again != b {
			t.Errorf("%s/%d: second round trip %+v, %v", tc.addr, tc.mask, again, err)
		}
	}
}

func TestBanFromWireValidation(t *testing.T) {
	v4 := mapped("192.0.2.1")
	for _, tc := range []struct {
		name    string
		addr    []byte
		mask    uint32
		hash    string
		start   string
		wantErr bool
	}{
		{"short address", v4[:4], 32, "", "", true},
		{"long address", append(v4, 0), 128, "", "", true},
		{"mask too big", v4, 129, "", "", true},
		{"mask too small", mapped("2001:db8::"), 7, "", "", true},
		{"nothing to match", make([]byte, 16), 128, "", "", true},
		{"no address at all", nil, 0, "", "", true},
		{"bad start", v4, 128, "", "yesterday", true},
		{"hash only, zero address", make([]byte, 16), 0, "abc", "", false},
		{"hash only, no address", nil, 0, "abc", "", false},
		{"start without zone", v4, 128, "", "2025-06-01T12:00:00", false},
		{"start with fraction", v4, 128, "", "2025-06-01T12:00:00.250Z", false},
		{"start with offset", v4, 128, "", "2025-06-01T14:00:00+02:00", false},
	} {
		b, err := BanFromWire(tc.addr, tc.mask, "", tc.hash, "", tc.start, 0)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.name, err)
		}
		if err == nil && tc.start != "" && !b.Start.Equal(t0) {
			t.Errorf("%s: start %v, want %v", tc.name, b.Start, t0)
		}
		if err == nil && tc.start == "" && time.Since(b.Start) > time.Minute {
			t.Errorf("%s: empty start gave %v, want now", tc.name, b.Start)
		}
	}
	// A hash-only ban is sent as the zero address.
	b, _ := BanFromWire(nil, 0, "", "abc", "", "", 0)
	if a, m, _, _ := b.Wire(); !bytes.Equal(a, make([]byte, 16)) || m != 128 || b.Prefix.IsValid() {
		t.Errorf("hash-only ban: prefix %v, wire %x/%d", b.Prefix, a, m)
	}
}

func TestBanMatches(t *testing.T) {
	hash := "0123456789abcdef0123456789abcdef01234567"
	v4 := ipBan("192.0.2.0/24", "")
	v6 := ipBan("2001:db8:1:2::/64", "")
	byCert := Ban{CertHash: hash, Start: t0}
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		ban  Ban
		addr string
		hash string
		want bool
	}{
		{v4, "192.0.2.200", "", true},
		{v4, "::ffff:192.0.2.200", "", true}, // dual-stack socket form
		{v4, "192.0.3.1", "", false},
		{v4, "2001:db8:1:2::1", "", false},
		{v6, "2001:db8:1:2:ffff::1", "", true},
		{v6, "2001:db8:1:3::1", "", false},
		{v6, "192.0.2.1", "", false},
		{byCert, "198.51.100.1", hash, true},
		{byCert, "198.51.100.1", "ABCDEF", false},
		{byCert, "198.51.100.1", "", false},
		{Ban{Prefix: netip.MustParsePrefix("192.0.2.0/24")}, "198.51.100.1", "", false}, // empty hashes never match each other
		{ipBan("192.0.2.0/24", hash), "198.51.100.1", hash, true},
	} {
		if got := tc.ban.Matches(netip.MustParseAddr(tc.addr), tc.hash, now); got != tc.want {
			t.Errorf("%v/%q matches %s/%q = %v, want %v", tc.ban.Prefix, tc.ban.CertHash, tc.addr, tc.hash, got, tc.want)
		}
	}

	temp := ipBan("192.0.2.0/24", hash)
	temp.Duration = time.Hour
	addr := netip.MustParseAddr("192.0.2.1")
	if temp.Expired(t0.Add(time.Hour)) || !temp.Matches(addr, "", t0.Add(time.Hour)) {
		t.Error("ban expired at exactly start+duration")
	}
	if !temp.Expired(t0.Add(time.Hour+time.Second)) || temp.Matches(addr, hash, t0.Add(time.Hour+time.Second)) {
		t.Error("expired ban still matches")
	}
	perm := ipBan("192.0.2.0/24", "")
	if perm.Expired(t0.AddDate(100, 0, 0)) {
		t.Error("permanent ban expired")
	}
}

func TestBanStore(t *testing.T) {
	s, _ := openTemp(t)
	if bans, err := s.Bans(); err != nil || len(bans) != 0 {
		t.Fatalf("new store has bans %v, %v", bans, err)
	}
	a := ipBan("192.0.2.77/24", "") // host bits set: stored masked
	b := Ban{CertHash: "ABCDEF", Reason: "r", Duration: 1500 * time.Millisecond}
	must(t, s.AddBan(a))
	must(t, s.AddBan(b))
	bans, err := s.Bans()
	if err != nil {
		t.Fatal(err)
	}
	if len(bans) != 2 {
		t.Fatalf("%d bans", len(bans))
	}
	if bans[0].Prefix != netip.MustParsePrefix("192.0.2.0/24") || bans[0].Name != "troll" || !bans[0].Start.Equal(t0) {
		t.Errorf("ban 0 = %+v", bans[0])
	}
	if bans[1].CertHash != "abcdef" || bans[1].Prefix.IsValid() || bans[1].Duration != 2*time.Second ||
		time.Since(bans[1].Start) > time.Minute {
		t.Errorf("ban 1 = %+v (want lowercase hash, duration rounded up to 2s, start now)", bans[1])
	}
	if err := s.AddBan(Ban{Reason: "nothing"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddBan without address or hash = %v", err)
	}
	if err := s.AddBan(ipBan("2001:db8::/4", "")); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddBan with a /4 = %v", err)
	}

	// SetBans replaces, keeps order and bans of the same address (as
	// Murmur does), and is all-or-nothing.
	c := ipBan("2001:db8:1:2::/64", "")
	d := ipBan("198.51.100.0/24", "0123456789abcdef0123456789abcdef01234567")
	same := d
	same.Reason, same.Duration = "second offence", time.Hour
	must(t, s.SetBans([]Ban{same, c, d}))
	bans, _ = s.Bans()
	if len(bans) != 3 || bans[0] != same || bans[1] != c || bans[2] != d {
		t.Errorf("after SetBans: %+v", bans)
	}
	if err := s.SetBans([]Ban{a, {}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetBans with an invalid ban = %v", err)
	}
	if bans, _ = s.Bans(); len(bans) != 3 {
		t.Errorf("failed SetBans changed the list: %+v", bans)
	}
	must(t, s.SetBans(nil))
	if bans, _ = s.Bans(); len(bans) != 0 {
		t.Errorf("SetBans(nil) left %+v", bans)
	}

	// PurgeExpiredBans removes exactly the expired temporary bans.
	short := ipBan("192.0.2.1/32", "")
	short.Duration = time.Minute
	long := ipBan("192.0.2.2/32", "")
	long.Duration = time.Hour
	perm := ipBan("192.0.2.3/32", "")
	must(t, s.SetBans([]Ban{short, long, perm}))
	if n, err := s.PurgeExpiredBans(t0.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("purge at the expiry instant = %d, %v", n, err)
	}
	now := t0.Add(2 * time.Minute)
	n, err := s.PurgeExpiredBans(now)
	if err != nil || n != 1 {
		t.Errorf("PurgeExpiredBans = %d, %v; want 1", n, err)
	}
	bans, _ = s.Bans()
	if len(bans) != 2 || bans[0] != long || bans[1] != perm {
		t.Errorf("after purge: %+v", bans)
	}
	for _, b := range bans {
		if b.Expired(now) {
			t.Errorf("expired ban kept: %+v", b)
		}
	}
}
