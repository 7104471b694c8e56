package server_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth/oidcauth"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/oidctest"
	"github.com/plenum-voice/plenum/internal/webpeer"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

var mumbleLink = regexp.MustCompile(`id="mumble" href="([^"]+)"`)

// TestOIDCSignIn signs a person in with a real OpenID provider (ory
// hydra with its login and consent app) through the web listener's
// sign-in link, then: their Mumble client logs in with the one-time code
// of the mumble:// link, as them (display name, user id) with the group
// from the provider's claims, which lets them speak in the Plenary where
// a guest is suppressed; the same client reconnects with the code,
// another client cannot use it; and their browser joins as them through
// the cookie the sign-in set.
func TestOIDCSignIn(t *testing.T) {
	op := oidctest.Start(t)
	op.AddUser("ada", oidctest.User{Password: "pw-ada", Subject: "sub-ada-1", Name: "ada", DisplayName: "Ada Lovelace", Groups: []string{"/delegates", "/other"}})
	webAddr := freeLoopback(t)
	redirect := "http://" + webAddr + oidcauth.CallbackPath
	clientID, secret := op.AddClient(redirect)
	toml := plenaryForDelegates + fmt.Sprintf(`
[auth.oidc]
issuer = %q
client_id = %q
client_secret = %q
redirect_url = %q

[auth.oidc.groups]
"/delegates" = "delegates"
`, op.Issuer, clientID, secret, redirect)
	s := startTestServer(t, testOpts{toml: []byte(toml), web: true, webListen: webAddr})

	// The join page learns of the sign-in link here.
	if got := getBody(t, "http://"+webAddr+oidcauth.InfoPath); got != `{"login":"/auth/oidc/login"}`+"\n" {
		t.Errorf("%s answered %q, want the login path as JSON", oidcauth.InfoPath, got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := oidctest.NewBrowser()
	page, at, status, err := b.SignIn(ctx, "http://"+webAddr+oidcauth.LoginPath, "ada", "pw-ada")
	if err != nil || status != 200 || at.Path != oidcauth.CallbackPath || !strings.Contains(page, "Ada Lovelace") {
		t.Fatalf("sign-in ended at %v with %d, %v:\n%s", at, status, err, page)
	}
	m := mumbleLink.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no mumble:// link on the page:\n%s", page)
	}
	link, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	code, _ := link.User.Password()
	if link.Scheme != "mumble" || link.User.Username() != "ada" || link.Host != s.addr || !strings.HasPrefix(code, "sso-") {
		t.Fatalf("the link %s", link)
	}

	cert := selfSignedCert(t)
	withCode := func(c *client.Config) { c.Password, c.Certificate = code, cert }
	ada := s.join(t, link.User.Username(), withCode)
	guest := s.join(t, "guest", nil)
	ada.moveTo("Plenary", guest)
	guest.moveTo("Plenary", ada)
	state := func(p *peer) *mumblepb.UserState { return guest.Users()[p.Session()] }
	guest.waitFor("the signed-in delegate may speak, the guest not", func(*client.Client) bool {
		return !state(ada).GetSuppress() && state(guest).GetSuppress()
	})
	id := state(ada).GetUserId()
	if state(ada).GetName() != "Ada Lovelace" || !store.IsExternalID(int64(id)) {
		t.Errorf("ada is %q with id %v", state(ada).GetName(), state(ada).UserId)
	}

	// Mumble reconnects with the same password: still good for that client.
	ada.Close()
	again := s.join(t, "ada", withCode)
	if u := again.Users()[again.Session()]; u.GetUserId() != id {
		t.Errorf("the reconnect has id %d, want %d", u.GetUserId(), id)
	}
	// Someone else with the code: refused.
	err = s.dialAs(t, "ada", code)
	if rejectType(err) != mumblepb.Reject_WrongUserPW {
		t.Errorf("another client with a used code: %v", err)
	}

	// The browser that signed in joins as Ada, whatever name it typed.
	web, _ := url.Parse("http://" + webAddr + "/")
	var cookie string
	for _, c := range b.Jar.Cookies(web) {
		if c.Name == oidcauth.TokenCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("the sign-in set no browser cookie")
	}
	again.Close()
	br := s.browser(t, "typed name", func(c *webpeer.Config) { c.Cookie = cookie })
	if u := br.Users()[br.Session()]; u.GetName() != "Ada Lovelace" || u.GetUserId() != id {
		t.Errorf("the browser joined as %q with id %v, want Ada Lovelace with %d", u.GetName(), u.UserId, id)
	}
}

// TestOIDCWrongPasswordAndUnreachableProvider: a wrong password at the
// provider gets no code; a provider that is down makes the sign-in link
// say so rather than hang.
func TestOIDCWrongPasswordAndUnreachableProvider(t *testing.T) {
	op := oidctest.Start(t)
	op.AddUser("ada", oidctest.User{Password: "pw-ada", Subject: "sub-ada-1", Name: "ada"})
	webAddr := freeLoopback(t)
	redirect := "http://" + webAddr + oidcauth.CallbackPath
	clientID, secret := op.AddClient(redirect)
	dead := freeLoopback(t)
	toml := fmt.Sprintf(`
[auth.oidc]
issuer = %q
client_id = %q
client_secret = %q
redirect_url = %q
`, op.Issuer, clientID, secret, redirect)
	startTestServer(t, testOpts{toml: []byte(toml), web: true, webListen: webAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	page, at, _, err := oidctest.NewBrowser().SignIn(ctx, "http://"+webAddr+oidcauth.LoginPath, "ada", "wrong")
	if err != nil || at.Path == oidcauth.CallbackPath || strings.Contains(page, "sso-") || !strings.Contains(page, "wrong login or password") {
		t.Errorf("a wrong password at the provider ended at %v (%v):\n%s", at, err, page)
	}

	webAddr2 := freeLoopback(t)
	toml2 := fmt.Sprintf(`
[auth.oidc]
issuer = "http://%s"
client_id = "x"
redirect_url = "http://%s%s"
`, dead, webAddr2, oidcauth.CallbackPath)
	startTestServer(t, testOpts{toml: []byte(toml2), web: true, webListen: webAddr2})
	resp, err := oidctest.NewBrowser().Get("http://" + webAddr2 + oidcauth.LoginPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("with the provider down the link answered %s, want 503", resp.Status)
	}
}

func freeLoopback(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestNoSignInLinkWithoutOIDC: without [auth.oidc] the info path is the
// join page itself, which the page does not take for a sign-in link.
func TestNoSignInLinkWithoutOIDC(t *testing.T) {
	webAddr := freeLoopback(t)
	startTestServer(t, testOpts{web: true, webListen: webAddr})
	if got := getBody(t, "http://"+webAddr+oidcauth.InfoPath); !strings.Contains(got, "<html") {
		t.Errorf("%s without [auth.oidc] answered %q, want the join page", oidcauth.InfoPath, got)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
