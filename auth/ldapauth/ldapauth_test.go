package ldapauth_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/auth/ldapauth"
	"github.com/plenum-voice/plenum/internal/ldaptest"
)

// directory starts slapd with three people: ada (delegates), bo
// (delegates, board) and cy (in no group).
func directory(t testing.TB) *ldaptest.Server {
	dir := ldaptest.Start(t)
	dir.AddPerson("ada", "pw-ada", "Ada Lovelace")
	dir.AddPerson("bo", "pw-bo", "Bo Diddley")
	dir.AddPerson("cy", "pw-cy", "Cy Young")
	dir.AddGroup("delegates", "ada", "bo")
	dir.AddGroup("board", "bo")
	return dir
}

func newDirectory(t testing.TB, c ldapauth.Config) *ldapauth.Directory {
	t.Helper()
	d, err := ldapauth.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ask(t testing.TB, d auth.Authenticator, name, password string) (auth.Answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return d.Authenticate(ctx, auth.Request{Name: name, Password: password})
}

var groupMap = map[string]string{
	"cn=delegates,ou=groups,dc=example,dc=org": "delegates", // by DN
	"Board": "presidium", // by name, in another case
}

func TestBindAsUser(t *testing.T) {
	dir := directory(t)
	d := newDirectory(t, ldapauth.Config{URL: dir.URL, BindDNTemplate: ldaptest.PersonTemplate, DisplayNameAttribute: "displayName", Groups: groupMap})
	a, err := ask(t, d, "bo", "pw-bo")
	if err != nil || a.Verdict != auth.Accept {
		t.Fatalf("bo: %+v %v", a, err)
	}
	if a.DisplayName != "Bo Diddley" || !strings.HasPrefix(a.Subject, "entryuuid:") || !reflect.DeepEqual(a.Groups, []string{"delegates", "presidium"}) {
		t.Errorf("bo: %+v", a)
	}
	wantSources := map[string]string{"delegates": "cn=delegates,ou=groups,dc=example,dc=org", "presidium": "cn=board,ou=groups,dc=example,dc=org"}
	if !reflect.DeepEqual(a.GroupSources, wantSources) {
		t.Errorf("bo's groups came from %v, want %v", a.GroupSources, wantSources)
	}
	for _, c := range []struct{ name, pw string }{{"bo", "wrong"}, {"bo", ""}, {"nobody", "pw"}} {
		if a, err := ask(t, d, c.name, c.pw); err != nil || a.Verdict != auth.Refuse {
			t.Errorf("%s with %q: %+v %v, want a refusal", c.name, c.pw, a, err)
		}
	}
	if a, _ := ask(t, d, "cy", "pw-cy"); a.Verdict != auth.Accept || len(a.Groups) != 0 {
		t.Errorf("cy: %+v, want accepted without groups", a)
	}
}

func TestSearchThenBind(t *testing.T) {
	dir := directory(t)
	base := ldapauth.Config{URL: dir.URL, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass, BaseDN: ldaptest.People,
		DisplayNameAttribute: "cn", Groups: groupMap}
	withSearch := base
	withSearch.GroupBaseDN = ldaptest.Groups
	for name, c := range map[string]ldapauth.Config{"memberOf": base, "group search": withSearch} {
		t.Run(name, func(t *testing.T) {
			d := newDirectory(t, c)
			a, err := ask(t, d, "ada", "pw-ada")
			if err != nil || a.Verdict != auth.Accept || a.DisplayName != "Ada Lovelace" || !reflect.DeepEqual(a.Groups, []string{"delegates"}) {
				t.Errorf("ada: %+v %v", a, err)
			}
			if a, err := ask(t, d, "ada", "wrong"); err != nil || a.Verdict != auth.Refuse {
				t.Errorf("a wrong password: %+v %v", a, err)
			}
			if a, err := ask(t, d, "ada", ""); err != nil || a.Verdict != auth.Refuse {
				t.Errorf("no password: %+v %v", a, err)
			}
			// Unknown names, and names that would be filters, are not the directory's.
			for _, n := range []string{"nobody", "*", "ada)(uid=*", `a\2a`} {
				if a, err := ask(t, d, n, "pw-ada"); err != nil || a.Verdict != auth.Unknown {
					t.Errorf("%q: %+v %v, want unknown", n, a, err)
				}
			}
		})
	}
	bad := base
	bad.BindPassword = "wrong"
	if _, err := ask(t, newDirectory(t, bad), "ada", "pw-ada"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("a wrong service password: %v, want unavailable", err)
	}
}

// TestIDSurvivesRename: the id is the entryUUID, which a modrdn keeps;
// without it, a hash of the DN is used.
func TestIDSurvivesRename(t *testing.T) {
	dir := directory(t)
	d := newDirectory(t, ldapauth.Config{URL: dir.URL, BindDNTemplate: ldaptest.PersonTemplate})
	before, _ := ask(t, d, "cy", "pw-cy")
	dir.RenamePerson("cy", "cyrus")
	after, _ := ask(t, d, "cyrus", "pw-cy")
	if before.Subject == "" || after.Subject != before.Subject {
		t.Errorf("id %q before the rename, %q after", before.Subject, after.Subject)
	}
	byDN := newDirectory(t, ldapauth.Config{URL: dir.URL, BindDNTemplate: ldaptest.PersonTemplate, IDAttribute: "employeeNumber"})
	a, _ := ask(t, byDN, "ada", "pw-ada")
	again, _ := ask(t, byDN, "ada", "pw-ada")
	if !strings.HasPrefix(a.Subject, "dn-sha256:") || a.Subject != again.Subject {
		t.Errorf("without the attribute: %q then %q", a.Subject, again.Subject)
	}
}

// TestDeadDirectory: a stopped slapd and a port that accepts but never
// answers are unavailable, within the timeout.
func TestDeadDirectory(t *testing.T) {
	dir := directory(t)
	c := ldapauth.Config{URL: dir.URL, BindDNTemplate: ldaptest.PersonTemplate}
	dir.Stop()
	start := time.Now()
	if _, err := ask(t, newDirectory(t, c), "ada", "pw-ada"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("a stopped directory: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a stopped directory took %v", took)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accepts, reads and never answers
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c.URL = "ldap://" + silent.Addr().String()
	start = time.Now()
	_, err = auth.WithTimeout(newDirectory(t, c), 300*time.Millisecond).Authenticate(context.Background(), auth.Request{Name: "ada", Password: "pw-ada"})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("a silent directory: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a silent directory took %v with a timeout of 300ms", took)
	}
}

// BenchmarkSignIn is a sign-in through slapd on loopback, with a cold
// cache (every login binds and searches) and a warm one.
func BenchmarkSignIn(b *testing.B) {
	dir := directory(b)
	d := newDirectory(b, ldapauth.Config{URL: dir.URL, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.People, GroupBaseDN: ldaptest.Groups, DisplayNameAttribute: "cn", Groups: groupMap})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if a, err := ask(b, d, "ada", "pw-ada"); err != nil || a.Verdict != auth.Accept {
				b.Fatal(a, err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		cached := auth.NewCache(d, time.Hour)
		ask(b, cached, "ada", "pw-ada")
		for b.Loop() {
			if a, err := ask(b, cached, "ada", "pw-ada"); err != nil || a.Verdict != auth.Accept {
				b.Fatal(a, err)
			}
		}
	})
}
