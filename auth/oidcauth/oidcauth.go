// Package oidcauth is single sign-on with an organisation's OpenID
// Connect provider: a sign-in link on the web listener sends the person
// to the provider (authorization code flow with PKCE, state and nonce),
// and on their return gives them a browser token (a cookie, so the join
// page's WebSocket logs in as them) and a one-time code with a mumble://
// link that logs their Mumble client in as them, with the groups from
// the provider's claims. The codes and tokens are Grants, which the
// server also asks as an auth.Authenticator.
package oidcauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/plenum-voice/plenum/auth"
)

// Paths on the web listener.
const (
	LoginPath = "/auth/oidc/login"
	// InfoPath tells the join page that single sign-on is on and where
	// its link goes; without [auth.oidc] the path is the page's own.
	InfoPath     = "/auth/oidc/info"
	CallbackPath = "/auth/oidc/callback"
)

// Cookies.
const (
	stateCookie = "plenum_oidc_state" // ties the callback to the browser that started
	// TokenCookie carries the browser token; the join page's WebSocket
	// upgrade sends it.
	TokenCookie = "plenum_signin"
)

// loginTTL bounds how long a sign-in may take at the provider, and
// maxPending how many may be under way at once.
const (
	loginTTL   = 10 * time.Minute
	maxPending = 10000
)

// Defaults.
const (
	DefaultNameClaim   = "preferred_username"
	DefaultGroupsClaim = "groups"
	DefaultMumblePort  = "64738"
)

// Config is the provider and how its answers are read; see conf.OIDC.
type Config struct {
	Issuer, ClientID, ClientSecret, RedirectURL string
	Scopes                                      []string
	NameClaim, GroupsClaim                      string
	Groups                                      map[string]string
	// MumbleHost is host:port of the Mumble listener for the mumble://
	// link.
	MumbleHost string
	// HTTPClient talks to the provider; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger // nil means slog.Default()
}

// Handler serves the sign-in link and the provider's callback.
type Handler struct {
	c      Config
	grants *Grants
	log    *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider // found on first use, kept once found
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
	pending  map[string]pendingLogin // by state
}

type pendingLogin struct {
	nonce, verifier string
	started         time.Time
}

// NewHandler checks c; the provider is asked for its configuration only
// when the first person signs in (so a provider that is down does not
// stop the server).
func NewHandler(c Config, grants *Grants) (*Handler, error) {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client_id and redirect_url are required")
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || u.Path != CallbackPath {
		return nil, fmt.Errorf("oidc: redirect_url must end in %s (the web listener's callback), got %q", CallbackPath, c.RedirectURL)
	}
	if c.NameClaim == "" {
		c.NameClaim = DefaultNameClaim
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"profile"}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Handler{c: c, grants: grants, log: c.Log, pending: map[string]pendingLogin{}}, nil
}

// ServeHTTP serves LoginPath and CallbackPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	switch r.URL.Path {
	case InfoPath:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"login\":%q}\n", LoginPath)
	case LoginPath:
		h.login(w, r)
	case CallbackPath:
		h.callback(w, r)
	default:
		http.NotFound(w, r)
	}
}

// setup finds the provider's configuration on first use.
func (h *Handler) setup() (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.oauth, h.verifier, nil
	}
	// The context is kept by the provider for fetching its keys later, so
	// it must not end; the client's timeout bounds each request.
	ctx := oidc.ClientContext(context.Background(), h.c.HTTPClient)
	p, err := oidc.NewProvider(ctx, h.c.Issuer)
	if err != nil {
		return nil, nil, err
	}
	h.provider = p
	h.verifier = p.Verifier(&oidc.Config{ClientID: h.c.ClientID})
	h.oauth = &oauth2.Config{
		ClientID: h.c.ClientID, ClientSecret: h.c.ClientSecret, RedirectURL: h.c.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, h.c.Scopes...),
	}
	return h.oauth, h.verifier, nil
}

func random() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Handler) secure() bool { return strings.HasPrefix(h.c.RedirectURL, "https:") }

// login sends the browser to the provider.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	oc, _, err := h.setup()
	if err != nil {
		h.log.Warn("the OpenID provider cannot be reached", "err", err)
		h.page(w, http.StatusServiceUnavailable, pageData{Problem: "The sign-in service cannot be reached. Please try again in a minute."})
		return
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	now := time.Now()
	h.mu.Lock()
	for s, p := range h.pending {
		if now.Sub(p.started) > loginTTL {
			delete(h.pending, s)
		}
	}
	full := len(h.pending) >= maxPending
	if !full {
		h.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, started: now}
	}
	h.mu.Unlock()
	if full {
		h.page(w, http.StatusServiceUnavailable, pageData{Problem: "Too many sign-ins are under way. Please try again in a minute."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/auth/oidc/", MaxAge: int(loginTTL / time.Second),
		HttpOnly: true, Secure: h.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback takes the provider's answer: the state must be this
// browser's, the code is exchanged (with the PKCE verifier), the ID
// token verified (signature, issuer, audience, expiry, nonce).
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	cookie, err := r.Cookie(stateCookie)
	if err != nil || state == "" || cookie.Value != state {
		h.page(w, http.StatusBadRequest, pageData{Problem: "This sign-in was not started in this browser, or took too long. Please start again.", Retry: true})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: h.secure(), SameSite: http.SameSiteLaxMode})
	h.mu.Lock()
	p, ok := h.pending[state]
	delete(h.pending, state)
	h.mu.Unlock()
	if !ok || time.Since(p.started) > loginTTL {
		h.page(w, http.StatusBadRequest, pageData{Problem: "This sign-in took too long. Please start again.", Retry: true})
		return
	}
	if e := q.Get("error"); e != "" {
		h.page(w, http.StatusForbidden, pageData{Problem: "The sign-in was not completed (" + limit(e, 64) + ").", Retry: true})
		return
	}
	id, err := h.identify(r.Context(), q.Get("code"), p)
	if err != nil {
		h.log.Warn("an OpenID sign-in failed", "err", err)
		h.page(w, http.StatusBadGateway, pageData{Problem: "The sign-in could not be completed. Please start again.", Retry: true})
		return
	}
	code := h.grants.Issue(id)
	token := h.grants.Issue(id)
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: token, Path: "/", MaxAge: int(h.grants.ReconnectTTL / time.Second),
		HttpOnly: true, Secure: h.secure(), SameSite: http.SameSiteLaxMode})
	h.page(w, http.StatusOK, pageData{
		Name: id.DisplayName, Groups: strings.Join(id.Groups, ", "), Code: code,
		Mumble: template.URL(MumbleURL(id.Name, code, h.c.MumbleHost)), Minutes: int(h.grants.CodeTTL / time.Minute),
	})
}

// identify exchanges the code and reads the verified ID token's claims.
func (h *Handler) identify(ctx context.Context, code string, p pendingLogin) (Identity, error) {
	oc, verifier, err := h.setup()
	if err != nil {
		return Identity{}, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, h.c.HTTPClient), 15*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("exchanging the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return Identity{}, errors.New("the token response has no id_token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("verifying the ID token: %w", err)
	}
	if idt.Nonce != p.nonce {
		return Identity{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, err
	}
	return h.identityOf(idt.Subject, claims), nil
}

// identityOf reads the name, display name and groups from the claims.
func (h *Handler) identityOf(sub string, claims map[string]any) Identity {
	id := Identity{Subject: sub}
	name, _ := claims[h.c.NameClaim].(string)
	if name == "" {
		if mail, _ := claims["email"].(string); mail != "" {
			name, _, _ = strings.Cut(mail, "@")
		}
	}
	id.Name = LoginName(name)
	if display, _ := claims["name"].(string); display != "" {
		id.DisplayName = limit(display, 128)
	} else {
		id.DisplayName = id.Name
	}
	var theirs []string
	switch g := claims[h.c.GroupsClaim].(type) {
	case string:
		theirs = []string{g}
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				theirs = append(theirs, s)
			}
		}
	}
	keys := make([]string, 0, len(h.c.Groups))
	for k := range h.c.Groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var mapped []string
	for _, k := range keys {
		if slices.Contains(theirs, k) {
			mapped = append(mapped, h.c.Groups[k])
		}
	}
	id.Groups = auth.CleanGroups(mapped)
	return id
}

// notInName is what Plenum's default username pattern does not allow
// (it takes letters and digits of any script, as Qt's \w does).
var notInName = regexp.MustCompile(`[^ \-=\p{L}\p{N}_\[\]{}()@|.]`)

// LoginName makes a claim into a name the default username pattern
// accepts (the display name is shown anyway).
func LoginName(s string) string {
	s = strings.TrimSpace(notInName.ReplaceAllString(limit(s, 64), "_"))
	if s == "" {
		return "member"
	}
	return s
}

// MumbleURL is the link that logs a Mumble client in as name with code
// as the password. The code goes in the password, not in an access
// token: Mumble keeps access tokens per server for good and sends them at
// every later login, where a spent code would only be noise.
func MumbleURL(name, code, hostPort string) string {
	u := url.URL{Scheme: "mumble", User: url.UserPassword(name, code), Host: hostPort, Path: "/", RawQuery: "version=1.2.0"}
	return u.String()
}

// DefaultMumbleHost is the host of redirectURL with the Mumble port.
func DefaultMumbleHost(redirectURL, port string) string {
	u, err := url.Parse(redirectURL)
	if err != nil {
		return ""
	}
	if port == "" {
		port = DefaultMumblePort
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// limit cuts s to at most n bytes, at a character boundary.
func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type pageData struct {
	Problem string
	Retry   bool

	Name, Groups, Code string
	Mumble             template.URL // mumble: is no scheme html/template trusts by itself
	Minutes            int
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Plenum sign-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5}
code{font-size:1.3em;background:#eee;padding:.1em .3em}a.button{display:inline-block;padding:.5em 1em;margin:.3em 0;background:#245;color:#fff;text-decoration:none;border-radius:.3em}</style>
</head><body>
{{if .Problem}}<h1>Sign-in</h1><p id="problem">{{.Problem}}</p>{{if .Retry}}<p><a class="button" href="/auth/oidc/login">Sign in again</a></p>{{end}}
{{else}}<h1>Signed in as <span id="name">{{.Name}}</span></h1>
{{if .Groups}}<p>Groups: <span id="groups">{{.Groups}}</span></p>{{end}}
<p><a class="button" id="join" href="/">Join in the browser</a></p>
<p><a class="button" id="mumble" href="{{.Mumble}}">Open in Mumble</a></p>
<p>Or connect your Mumble client with this code as the password (it can be used once, within {{.Minutes}} minutes):<br>
<code id="code">{{.Code}}</code></p>{{end}}
</body></html>
`))

func (h *Handler) page(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, d); err != nil {
		h.log.Debug("writing the sign-in page failed", "err", err)
	}
}
