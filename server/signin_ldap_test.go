package server_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/ldaptest"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// startLDAPServer runs slapd with a delegate (ada), a member of the
// presidium (bo) and a member in no group (cy), and a Plenum server that
// signs people in there, finding them with the service account.
func startLDAPServer(t *testing.T, extra string) (*testServer, *ldaptest.Server) {
	t.Helper()
	dir := ldaptest.Start(t)
	dir.AddPerson("ada", "pw-ada", "Ada Lovelace")
	dir.AddPerson("bo", "pw-bo", "Bo Diddley")
	dir.AddPerson("cy", "pw-cy", "Cy Young")
	dir.AddGroup("delegates", "ada")
	dir.AddGroup("board", "bo")
	toml := plenaryForDelegates + fmt.Sprintf(`
[auth]
%s

[auth.ldap]
url = %q
bind_dn = %q
bind_password = %q
base_dn = %q
display_name_attribute = "displayName"
timeout = "500ms"

[auth.ldap.groups]
"cn=delegates,ou=groups,dc=example,dc=org" = "delegates"
board = "presidium"
`, extra, dir.URL, ldaptest.ServiceDN, ldaptest.ServicePass, ldaptest.People)
	return startTestServer(t, testOpts{toml: []byte(toml)}), dir
}

// TestLDAPSignIn: Mumble clients log in with their directory password; a
// member of "delegates" may speak in the Plenary, whose ACL lets only
// that group (and the presidium) speak; a member in no group and a guest
// whose name the directory does not know are suppressed.
func TestLDAPSignIn(t *testing.T) {
	s, _ := startLDAPServer(t, "")
	ada := s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada" })
	bo := s.join(t, "bo", func(c *client.Config) { c.Password = "pw-bo" })
	cy := s.join(t, "cy", func(c *client.Config) { c.Password = "pw-cy" })
	guest := s.join(t, "visitor", nil) // unknown: falls through to a guest
	all := []*peer{ada, bo, cy, guest}
	for _, p := range all {
		p.moveTo("Plenary", all...)
	}
	state := func(p *peer) *mumblepb.UserState { return guest.Users()[p.Session()] }
	guest.waitFor("delegate and presidium unsuppressed, the others suppressed", func(*client.Client) bool {
		return !state(ada).GetSuppress() && !state(bo).GetSuppress() && state(cy).GetSuppress() && state(guest).GetSuppress()
	})
	if state(ada).GetName() != "Ada Lovelace" || state(ada).UserId == nil || state(guest).UserId != nil {
		t.Errorf("ada is %q (id %v), the guest has id %v", state(ada).GetName(), state(ada).UserId, state(guest).UserId)
	}
	// The delegate is heard in the hall; the member without the group is not.
	ada.waitUDP()
	guest.waitUDP()
	ada.SendAudio(0, 1, opus, false, nil)
	guest.expectFrame(1)
	// The presidium may mute there; a delegate may not.
	bo.Send(&mumblepb.UserState{Session: proto.Uint32(cy.Session()), Mute: proto.Bool(true)})
	guest.waitFor("the presidium muted cy", func(*client.Client) bool { return state(cy).GetMute() })
	if err := s.dialAs(t, "ada", "wrong"); rejectType(err) != mumblepb.Reject_WrongUserPW {
		t.Errorf("a wrong directory password: %v", err)
	}
}

// TestLDAPFallThrough: an unknown name is refused with unknown = refuse;
// a stopped directory refuses within the timeout, or with unavailable =
// guest admits a guest; a directory port that never answers refuses
// within the timeout too.
func TestLDAPFallThrough(t *testing.T) {
	t.Run("unknown refused, dead directory refuses", func(t *testing.T) {
		s, dir := startLDAPServer(t, `unknown = "refuse"`)
		if err := s.dialAs(t, "visitor", ""); rejectType(err) != mumblepb.Reject_WrongUserPW {
			t.Errorf("an unknown name: %v", err)
		}
		dir.Stop()
		start := time.Now()
		if err := s.dialAs(t, "ada", "pw-ada-other"); rejectType(err) != mumblepb.Reject_AuthenticatorFail {
			t.Errorf("with the directory stopped: %v", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("refused after %v", took)
		}
	})
	t.Run("dead directory admits a guest", func(t *testing.T) {
		s, dir := startLDAPServer(t, `unavailable = "guest"`)
		dir.Stop()
		c := s.join(t, "ada", func(c *client.Config) { c.Password = "pw-ada" })
		if u := c.Users()[c.Session()]; u.UserId != nil || u.GetName() != "ada" {
			t.Errorf("ada came in as %q with id %v, want a guest", u.GetName(), u.UserId)
		}
	})
	t.Run("blackholed directory refuses within the timeout", func(t *testing.T) {
		hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
		if err != nil {
			t.Fatal(err)
		}
		defer hole.Close()
		toml := plenaryForDelegates + fmt.Sprintf(`
[auth.ldap]
url = "ldap://%s"
bind_dn_template = "uid={name},ou=people,dc=example,dc=org"
timeout = "500ms"
`, hole.Addr())
		s := startTestServer(t, testOpts{toml: []byte(toml)})
		start := time.Now()
		if err := s.dialAs(t, "ada", "pw-ada"); rejectType(err) != mumblepb.Reject_AuthenticatorFail {
			t.Errorf("with the directory silent: %v", err)
		}
		if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
			t.Errorf("refused after %v, want about the timeout of 500ms", took)
		}
	})
}

// BenchmarkLDAPLogin is a whole Mumble login (TLS, Authenticate, the
// server's state, ServerSync) of a directory user through slapd on
// loopback, with the cache off (every login binds and searches) and warm.
func BenchmarkLDAPLogin(b *testing.B) {
	dir := ldaptest.Start(b)
	dir.AddPerson("ada", "pw-ada", "Ada Lovelace")
	dir.AddGroup("delegates", "ada")
	for _, c := range []struct{ name, ttl string }{{"cold", "0s"}, {"warm", "1h"}} {
		b.Run(c.name, func(b *testing.B) {
			toml := fmt.Sprintf(`
[auth.ldap]
url = %q
bind_dn = %q
bind_password = %q
base_dn = %q
cache_ttl = %q

[auth.ldap.groups]
delegates = "delegates"
`, dir.URL, ldaptest.ServiceDN, ldaptest.ServicePass, ldaptest.People, c.ttl)
			s := startTestServer(b, testOpts{toml: []byte(toml)})
			login := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cl, err := client.Dial(ctx, client.Config{Address: s.addr, Username: "ada", Password: "pw-ada"})
				if err != nil {
					b.Fatal(err)
				}
				cl.Close()
			}
			login() // the warm cache is filled, the cold one stays empty
			for b.Loop() {
				login()
			}
		})
	}
}
