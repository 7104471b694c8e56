package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
)

func guardSettings(edit func(*conf.Server)) *conf.Server {
	s := conf.DefaultServer()
	s.AutobanAttempts = 5
	s.AutobanWindow.Duration = time.Minute
	s.AutobanDuration.Duration = 10 * time.Minute
	if edit != nil {
		edit(&s)
	}
	return &s
}

// attempt runs one connection from addr through the guard: admitted, and
// then authenticated or failed. It reports the refusal, if any.
func (g *hostGuard) attempt(addr netip.Addr, now time.Time, cfg *conf.Server, succeed bool) refusal {
	if r := g.admit(addr, now, cfg); r != admitted {
		return r
	}
	if succeed {
		g.promote(addr)
		g.release(addr, true, false, now, cfg)
	} else {
		g.release(addr, false, true, now, cfg)
	}
	return admitted
}

func TestHostKeyGroupsIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"::ffff:192.0.2.7":      "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1":  "2001:db8:1:2::",
		"fe80::1%eth0":          "fe80::",
		"2001:db8:1:3::1":       "2001:db8:1:3::",
		"::1":                   "::",
		"2001:db8:1:2::abcd:ef": "2001:db8:1:2::",
	} {
		if got := hostKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("hostKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestAutobanCountsOnlyFailures(t *testing.T) {
	var g hostGuard
	cfg := guardSettings(nil)
	addr := netip.MustParseAddr("192.0.2.7")
	now := time.Unix(1e9, 0)

	// Successful logins never count, however many.
	for i := 0; i < 1000; i++ {
		if r := g.attempt(addr, now, cfg, true); r != admitted {
			t.Fatalf("login %d refused (%d)", i, r)
		}
	}
	// autoban_attempts failures are tolerated, one more bans.
	for i := 0; i < 5; i++ {
		g.attempt(addr, now, cfg, false)
	}
	if r := g.admit(addr, now, cfg); r != admitted {
		t.Fatalf("refused after 5 failures: %d", r)
	}
	g.release(addr, false, true, now, cfg)
	if r := g.admit(addr, now, cfg); r != refusedBanned {
		t.Fatalf("not banned after 6 failures: %d", r)
	}
	if g.bans.Load() != 1 || g.failed.Load() != 6 || g.refusedBanned.Load() != 1 {
		t.Fatalf("bans %d, failed %d, refused %d", g.bans.Load(), g.failed.Load(), g.refusedBanned.Load())
	}
	if r := g.admit(netip.MustParseAddr("192.0.2.8"), now, cfg); r != admitted {
		t.Fatal("the ban hit a neighbouring address")
	}
	// The ban ends after autoban_duration, and the count starts afresh.
	later := now.Add(10*time.Minute + time.Second)
	for i := 0; i < 5; i++ {
		if r := g.attempt(addr, later, cfg, false); r != admitted {
			t.Fatalf("attempt %d after the ban refused: %d", i, r)
		}
	}
}

func TestAutobanFailuresDrainOverTheWindow(t *testing.T) {
	var g hostGuard
	cfg := guardSettings(nil)
	addr := netip.MustParseAddr("192.0.2.7")
	now := time.Unix(1e9, 0)
	// Five failures a minute, for an hour: never more than five within
	// a window, so never banned.
	for i := 0; i < 300; i++ {
		if r := g.attempt(addr, now.Add(time.Duration(i)*12*time.Second), cfg, false); r != admitted {
			t.Fatalf("failure %d (at 5 a minute) was banned", i)
		}
	}
	// Twice that rate is a flood.
	start := now.Add(time.Hour)
	for i := 0; i < 20; i++ {
		if g.attempt(addr, start.Add(time.Duration(i)*6*time.Second), cfg, false) == refusedBanned {
			return
		}
	}
	t.Fatal("10 failures a minute never led to a ban")
}

// TestAutobanSparesAddressesWithUsersOnline: each user online from an
// address allows it another autoban_attempts failures, so a venue NAT
// full of people reconnecting after a Wi-Fi hiccup is never banned.
func TestAutobanSparesAddressesWithUsersOnline(t *testing.T) {
	var g hostGuard
	cfg := guardSettings(nil)
	venue := netip.MustParseAddr("198.51.100.1")
	now := time.Unix(1e9, 0)
	for i := 0; i < 300; i++ { // 300 people online
		g.admit(venue, now, cfg)
		g.promote(venue)
	}
	for i := 0; i < 1000; i++ {
		if r := g.attempt(venue, now, cfg, false); r != admitted {
			t.Fatalf("the venue was refused after %d failures with 300 users online", i)
		}
	}
	// Once everyone has left, it is an address like any other.
	for i := 0; i < 300; i++ {
		g.release(venue, true, false, now, cfg)
	}
	for i := 0; i < 6; i++ {
		g.attempt(venue, now.Add(time.Hour), cfg, false)
	}
	if r := g.admit(venue, now.Add(time.Hour), cfg); r != refusedBanned {
		t.Fatalf("an address without users was not banned after 6 failures: %d", r)
	}
}

func TestAutobanExemptAndOff(t *testing.T) {
	var g hostGuard
	addr := netip.MustParseAddr("203.0.113.9")
	now := time.Unix(1e9, 0)
	exempt := guardSettings(func(s *conf.Server) { s.AutobanExempt = []string{"203.0.113.0/24"} })
	for i := 0; i < 50; i++ {
		if r := g.attempt(addr, now, exempt, false); r != admitted {
			t.Fatalf("an exempt address was refused after %d failures", i)
		}
	}
	// Banned under one configuration, the ban is lifted by exempting the
	// address or turning autoban off (a reload), and back when undone.
	plain := guardSettings(nil)
	for i := 0; i < 6; i++ {
		g.attempt(addr, now, plain, false)
	}
	off := guardSettings(func(s *conf.Server) { s.AutobanAttempts = 0 })
	for _, tc := range []struct {
		cfg  *conf.Server
		want refusal
	}{{plain, refusedBanned}, {exempt, admitted}, {off, admitted}, {plain, refusedBanned}} {
		if r := g.admit(addr, now, tc.cfg); r != tc.want {
			t.Fatalf("admit = %d, want %d", r, tc.want)
		} else if r == admitted {
			g.release(addr, false, false, now, tc.cfg)
		}
	}
}

func TestUnauthenticatedCapPerAddress(t *testing.T) {
	var g hostGuard
	cfg := guardSettings(func(s *conf.Server) { s.MaxUnauthenticatedPerIP = 3 })
	addr := netip.MustParseAddr("192.0.2.7")
	now := time.Unix(1e9, 0)
	for i := 0; i < 3; i++ {
		if r := g.admit(addr, now, cfg); r != admitted {
			t.Fatalf("connection %d refused", i)
		}
	}
	for i := 0; i < 100; i++ {
		if r := g.admit(addr, now, cfg); r != refusedBusy {
			t.Fatalf("connection over the cap: %d", r)
		}
	}
	if g.failed.Load() != 0 || g.refusedPending.Load() != 100 || g.unauthenticated() != 3 {
		t.Fatalf("failed %d, refused %d, unauthenticated %d", g.failed.Load(), g.refusedPending.Load(), g.unauthenticated())
	}
	// An authenticated connection leaves room for the next one.
	g.promote(addr)
	if r := g.admit(addr, now, cfg); r != admitted {
		t.Fatalf("refused after one authenticated: %d", r)
	}
	// Other addresses have their own cap; 0 means none.
	if r := g.admit(netip.MustParseAddr("192.0.2.8"), now, cfg); r != admitted {
		t.Fatal("another address was refused")
	}
	uncapped := guardSettings(func(s *conf.Server) { s.MaxUnauthenticatedPerIP = 0 })
	if r := g.admit(addr, now, uncapped); r != admitted {
		t.Fatal("refused with no cap")
	}
}

// TestGuardForgetsIdleAddresses: the table only holds addresses with
// connections, a ban or recent failures.
func TestGuardForgetsIdleAddresses(t *testing.T) {
	var g hostGuard
	cfg := guardSettings(nil)
	now := time.Unix(1e9, 0)
	for i := 0; i < 100; i++ {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)})
		g.attempt(addr, now, cfg, i%2 == 0) // half succeed, half fail once
	}
	if n := len(g.hosts); n != 50 {
		t.Fatalf("%d addresses remembered, want the 50 with a failure", n)
	}
	g.admit(netip.MustParseAddr("192.0.2.1"), now.Add(2*time.Hour), cfg) // sweeps
	if n := len(g.hosts); n != 1 {
		t.Fatalf("%d addresses remembered after their failures drained, want 1", n)
	}
}

// TestRefusalBudget: refusals are explained at most explainedRefusalsAtOnce
// at a time and explainedRefusalsPerSecond a second; the rest are reset.
func TestRefusalBudget(t *testing.T) {
	b := refusalBudget{slots: make(chan struct{}, explainedRefusalsAtOnce)}
	t0 := time.Unix(1000, 0)
	held := 0
	for b.take(t0) {
		held++
	}
	if held != explainedRefusalsAtOnce {
		t.Fatalf("%d explained at once, want %d", held, explainedRefusalsAtOnce)
	}
	explained := held
	for ; held > 0; held-- {
		b.done()
	}
	for b.take(t0) { // within the same second
		b.done()
		explained++
	}
	if explained != explainedRefusalsPerSecond {
		t.Fatalf("%d explained within a second, want %d", explained, explainedRefusalsPerSecond)
	}
	if !b.take(t0.Add(time.Second)) {
		t.Fatal("nothing explained a second later")
	}
}

func TestRefusalInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5 minutes", 2 * time.Second: "2 seconds", time.Second: "1 second",
		90 * time.Second: "90 seconds", 150 * time.Second: "3 minutes",
	} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%v) = %q, want %q", d, got, want)
		}
	}
}
