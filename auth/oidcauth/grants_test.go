package oidcauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/plenum-voice/plenum/auth"
)

func TestGrants(t *testing.T) {
	now := time.Unix(1000, 0)
	g := NewGrants(10 * time.Minute)
	g.Now = func() time.Time { return now }
	ada := Identity{Subject: "sub-ada", Name: "ada", DisplayName: "Ada Lovelace", Groups: []string{"delegates"}}
	code := g.Issue(ada)
	if !strings.HasPrefix(code, codePrefix) || len(code) < 30 {
		t.Fatalf("code %q", code)
	}
	ask := func(password, cert string, kind auth.Kind) auth.Answer {
		a, err := g.Authenticate(context.Background(), auth.Request{Name: "whoever", Password: password, CertHash: cert, Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := ask("an ordinary password", "", auth.Mumble); a.Verdict != auth.Unknown {
		t.Errorf("an ordinary password: %v", a.Verdict)
	}
	if a := ask(codePrefix+"forged", "", auth.Mumble); a.Verdict != auth.Refuse || a.Reason != refusedExpired {
		t.Errorf("a forged code: %+v", a)
	}
	a := ask(code, "cert-1", auth.Mumble)
	if a.Verdict != auth.Accept || a.Subject != "sub-ada" || a.DisplayName != "Ada Lovelace" || a.Groups[0] != "delegates" {
		t.Fatalf("first use: %+v", a)
	}
	now = now.Add(time.Hour) // past the code's ttl, within the reconnect window
	if a := ask(code, "cert-1", auth.Mumble); a.Verdict != auth.Accept {
		t.Errorf("the same client reconnecting: %+v", a)
	}
	if a := ask(code, "cert-2", auth.Mumble); a.Verdict != auth.Refuse || a.Reason != refusedUsed {
		t.Errorf("another client with the used code: %+v", a)
	}
	if a := ask(code, "cert-1", auth.Web); a.Verdict != auth.Refuse {
		t.Errorf("a browser with a Mumble client's code: %+v", a)
	}
	now = now.Add(DefaultReconnectTTL)
	if a := ask(code, "cert-1", auth.Mumble); a.Verdict != auth.Refuse {
		t.Errorf("after the reconnect window: %+v", a)
	}
	late := g.Issue(ada)
	now = now.Add(11 * time.Minute)
	if a := ask(late, "", auth.Web); a.Verdict != auth.Refuse || a.Reason != refusedExpired {
		t.Errorf("a code never used within its ttl: %+v", a)
	}
	if g.Len() != 0 {
		t.Errorf("%d grants left after all expired", g.Len())
	}
}

func TestIdentityOfClaims(t *testing.T) {
	h, err := NewHandler(Config{Issuer: "https://sso.example.org", ClientID: "plenum", RedirectURL: "https://p.example.org" + CallbackPath,
		Groups: map[string]string{"/delegates": "delegates", "board": "presidium", "evil": "all"}}, NewGrants(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	id := h.identityOf("s1", map[string]any{"preferred_username": "ada lovelace<script>", "name": "Ada Lovelace",
		"groups": []any{"/delegates", "board", "evil", 7}})
	if id.Name != "ada lovelace_script_" || id.DisplayName != "Ada Lovelace" || strings.Join(id.Groups, ",") != "delegates,presidium" {
		t.Errorf("identity %+v", id)
	}
	id = h.identityOf("s2", map[string]any{"email": "bo@example.org", "groups": "board"})
	if id.Name != "bo" || id.DisplayName != "bo" || strings.Join(id.Groups, ",") != "presidium" {
		t.Errorf("from email and a single group: %+v", id)
	}
	if got := MumbleURL("ada lovelace", "sso-abc", "p.example.org:64738"); got != "mumble://ada%20lovelace:sso-abc@p.example.org:64738/?version=1.2.0" {
		t.Errorf("MumbleURL = %s", got)
	}
	if _, err := NewHandler(Config{Issuer: "https://x", ClientID: "c", RedirectURL: "https://p/elsewhere"}, nil); err == nil {
		t.Error("a redirect URL off the callback path was taken")
	}
}

// TestCallbackNeedsItsBrowsersState: a callback whose state is not the
// one this browser's cookie holds (login CSRF, or a link someone sent)
// gets no code.
func TestCallbackNeedsItsBrowsersState(t *testing.T) {
	g := NewGrants(time.Minute)
	h, err := NewHandler(Config{Issuer: "http://127.0.0.1:9", ClientID: "c", RedirectURL: "http://p.example.org" + CallbackPath}, g)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, cookie string }{
		{CallbackPath + "?state=abc&code=x", ""},
		{CallbackPath + "?state=abc&code=x", "other"},
		{CallbackPath + "?code=x", ""},
		{CallbackPath + "?state=abc&code=x", "abc"}, // the cookie matches, but no such sign-in was started
	} {
		req := httptest.NewRequest("GET", c.url, nil)
		if c.cookie != "" {
			req.AddCookie(&http.Cookie{Name: stateCookie, Value: c.cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || g.Len() != 0 || strings.Contains(rec.Body.String(), codePrefix) {
			t.Errorf("%s with cookie %q: %d, %d grants", c.url, c.cookie, rec.Code, g.Len())
		}
	}
}

func TestLoginName(t *testing.T) {
	for in, want := range map[string]string{"Jürgen Müller": "Jürgen Müller", "a<b>": "a_b_", "": "member", "  ": "member", "x/y": "x_y"} {
		if got := LoginName(in); got != want {
			t.Errorf("LoginName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := LoginName(strings.Repeat("ü", 40)); !utf8.ValidString(got) || len(got) > 64 {
		t.Errorf("a long name became %q", got)
	}
}
