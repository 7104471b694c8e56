package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// waitStats polls the server's counters until cond holds, failing after 10 s.
func waitStats(t testing.TB, s *testServer, what string, cond func(server.Stats) bool) server.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A failed attempt of each kind the autoban counts.
type failure int

const (
	notTLS  failure = iota // plain garbage instead of a TLS ClientHello
	noAuth                 // TLS, then closed before Authenticate
	wrongPW                // rejected authentication
	numFailures
)

func (s *testServer) fail(t testing.TB, kind failure) {
	t.Helper()
	switch kind {
	case notTLS:
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Error(err)
			return
		}
		nc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		nc.Close()
	case noAuth:
		tc, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Error(err)
			return
		}
		tc.Close()
	case wrongPW:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: "guesser", Password: "wrong", DisableUDP: true})
		var rej *client.RejectError
		if !errors.As(err, &rej) {
			t.Errorf("wrong password: %v, want a Reject", err)
		}
		if err == nil {
			c.Close()
		}
	}
}

// refusedWithReason dials as a Mumble client and returns the reason of
// the Reject it gets, failing if it gets anything else.
func refusedWithReason(t testing.TB, s *testServer) string {
	t.Helper()
	err := dialErr(s, func(c *client.Config) { c.Username = "refused" })
	var rej *client.RejectError
	if !errors.As(err, &rej) || rej.Type != mumblepb.Reject_None {
		t.Fatalf("a refused login: %v, want a Reject of type None with the reason", err)
	}
	return rej.Reason
}

// TestAutobanStopsAFloodOfFailedHandshakes: an address that keeps failing
// is refused at accept for autoban_duration, then let in again.
func TestAutobanStopsAFloodOfFailedHandshakes(t *testing.T) {
	const attempts = 5
	s := startServer(t, func(c *conf.Config) {
		c.Server.Password = "venue"
		c.Server.AutobanAttempts = attempts
		c.Server.AutobanDuration.Duration = 2 * time.Second // long enough to look at on a loaded machine
	})
	for i := 0; i < attempts+1; i++ {
		s.fail(t, failure(i%int(numFailures)))
	}
	waitStats(t, s, "the failures counted", func(st server.Stats) bool { return st.ConnFailed == attempts+1 })
	bannedAt := time.Now()
	if st := s.Stats(); st.Autobans != 1 {
		t.Fatalf("%d autobans after %d failures, want 1", st.Autobans, attempts+1)
	}
	// The client is told why, not just cut off.
	if r := refusedWithReason(t, s); !strings.Contains(r, "failed connection attempts") || !strings.Contains(r, "2 seconds") {
		t.Fatalf("the reason of an autoban refusal: %q", r)
	}
	refusedWithReason(t, s)
	st := s.Stats()
	if st.ConnRefusedBanned < 2 || st.ConnFailed != attempts+1 {
		t.Fatalf("refused %d (want 2+), failed %d (refusals are no failures, want %d)", st.ConnRefusedBanned, st.ConnFailed, attempts+1)
	}
	// Released after the duration.
	time.Sleep(time.Until(bannedAt.Add(2*time.Second + 100*time.Millisecond)))
	s.join(t, "alice", func(c *client.Config) { c.Password = "venue" })
}

// TestAutobanSparesAVenueBehindOneAddress: 300 people logging in from one
// address at once, with failed attempts of every kind mixed in, are never
// banned: successful logins never count, and users online raise the
// address's limit.
func TestAutobanSparesAVenueBehindOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("300 logins")
	}
	const venue = 300
	// burst logs in delegates first..first+logins-1 at once, with
	// failures spread evenly among them, and keeps them online.
	burst := func(t *testing.T, s *testServer, first, logins, failures int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var online []*client.Client
		t.Cleanup(func() {
			for _, c := range online {
				c.Close()
			}
		})
		total := logins + failures
		for j, name := 0, first; j < total; j++ {
			wg.Add(1)
			if (j+1)*failures/total > j*failures/total {
				go func() {
					defer wg.Done()
					s.fail(t, failure(j%int(numFailures)))
				}()
				continue
			}
			go func(name string) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := client.Dial(ctx, client.Config{Address: s.addr, Username: name, Password: "venue", DisableUDP: true})
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				mu.Lock()
				online = append(online, c)
				mu.Unlock()
			}(fmt.Sprintf("delegate%03d", name))
			name++
		}
		wg.Wait()
	}
	venueConfig := func(attempts int) func(*conf.Config) {
		return func(c *conf.Config) {
			c.Server.Password = "venue"
			c.Server.AutobanAttempts = attempts
			// Here the test machine is the slow network: 300 TLS
			// handshakes at both ends under the race detector.
			c.Server.HandshakeTimeout.Duration = time.Minute
		}
	}

	t.Run("defaults, from nobody online", func(t *testing.T) {
		s := startServer(t, venueConfig(conf.DefaultAutobanAttempts))
		burst(t, s, 0, venue, 60)
		st := waitStats(t, s, "the failures counted", func(st server.Stats) bool { return st.ConnFailed >= 60 })
		if st.Users != venue || st.Autobans != 0 || st.ConnRefusedBanned != 0 || st.ConnRefusedPending != 0 {
			t.Fatalf("after the burst: %+v", st)
		}
	})
	t.Run("tight limit, people online", func(t *testing.T) {
		// autoban_attempts 5 would ban a lone address after 6 failures;
		// with 20 people of the venue online it takes 105, and more as
		// more come.
		s := startServer(t, venueConfig(5))
		burst(t, s, 0, 20, 0)
		burst(t, s, 20, 80, 100)
		st := waitStats(t, s, "the failures counted", func(st server.Stats) bool { return st.ConnFailed >= 100 })
		if st.Users != 100 || st.Autobans != 0 || st.ConnRefusedBanned != 0 {
			t.Fatalf("after the burst: %+v", st)
		}
		s.join(t, "latecomer", func(c *client.Config) { c.Password = "venue" })
	})
}

// TestServerFullIsNotAFailedAttempt: people retrying a full server are
// not banned for it.
func TestServerFullIsNotAFailedAttempt(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Server.MaxUsers = 1
		c.Server.AutobanAttempts = 2
	})
	s.join(t, "alice", nil)
	for i := 0; i < 10; i++ {
		wantReject(t, dialErr(s, func(c *client.Config) { c.Username = fmt.Sprintf("retry%d", i) }), mumblepb.Reject_ServerFull)
	}
	st := waitStats(t, s, "the rejected connections gone", func(st server.Stats) bool { return st.Unauthenticated == 0 })
	if st.ConnFailed != 0 || st.Autobans != 0 {
		t.Fatalf("server-full rejects counted as failures: %+v", st)
	}
}

// halfOpen opens n connections of each kind that never authenticate:
// plain TCP, a stalled TLS ClientHello, and TLS done but nothing sent.
func halfOpen(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		switch i % 3 {
		case 1:
			nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a record header and the start of a ClientHello
		case 2:
			tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			conns[len(conns)-1] = tc
		}
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// TestUnauthenticatedConnectionsTakeNoUserSlots: a server whose
// max_users is exceeded by half-open connections still lets real users
// in, up to max_users.
func TestUnauthenticatedConnectionsTakeNoUserSlots(t *testing.T) {
	const maxUsers = 3
	s := startServer(t, func(c *conf.Config) { c.Server.MaxUsers = maxUsers })
	halfOpen(t, s.addr, 4*maxUsers)
	// Some that sent Version too.
	for i := 0; i < maxUsers; i++ {
		s.raw(t).send(&mumblepb.Version{VersionV1: proto.Uint32(0x10500)})
	}
	waitStats(t, s, "the half-open connections", func(st server.Stats) bool { return st.Unauthenticated == 5*maxUsers })
	for i := 0; i < maxUsers; i++ {
		s.join(t, fmt.Sprintf("user%d", i), nil)
	}
	wantReject(t, dialErr(s, func(c *client.Config) { c.Username = "one too many" }), mumblepb.Reject_ServerFull)
	// The rejected connection is unauthenticated until the server has closed it.
	waitStats(t, s, "the rejected connection gone", func(st server.Stats) bool { return st.Unauthenticated == 5*maxUsers })
	if st := s.Stats(); st.Users != maxUsers {
		t.Fatalf("%d users, want %d", st.Users, maxUsers)
	}
}

// TestUnauthenticatedCapRefusesBeforeTLS: beyond max_unauthenticated_per_ip
// a connection is refused at accept, takes no slot and is no failure; it
// is told why (the refusal budget allows that here); a slot that frees up
// admits the next one.
func TestUnauthenticatedCapRefusesBeforeTLS(t *testing.T) {
	const limit = 6
	s := startServer(t, func(c *conf.Config) { c.Server.MaxUnauthenticatedPerIP = limit })
	conns := halfOpen(t, s.addr, limit)
	waitStats(t, s, "the half-open connections", func(st server.Stats) bool { return st.Unauthenticated == limit })
	if r := refusedWithReason(t, s); !strings.Contains(r, "logging in at this moment") {
		t.Fatalf("the reason of a refusal by the cap: %q", r)
	}
	if st := s.Stats(); st.ConnRefusedPending != 1 || st.ConnFailed != 0 || st.Unauthenticated != limit {
		t.Fatalf("refused %d, failed %d, unauthenticated %d: want 1, 0 and %d", st.ConnRefusedPending, st.ConnFailed, st.Unauthenticated, limit)
	}
	conns[0].Close()
	waitStats(t, s, "a slot freed", func(st server.Stats) bool { return st.Unauthenticated == limit-1 })
	s.join(t, "alice", nil)
}
