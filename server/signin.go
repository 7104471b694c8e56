package server

// Sign-in with an organisation's accounts ([auth], package auth): before
// the server's own registrations, the configured providers are asked
// about a login. What they answer becomes the user's identity: a user id
// of the external range (store.ExternalUserID), the display name as the
// user's name, and the groups as temporary members of the root's groups
// for this session (acl.Subject.SignInGroups), as Murmur does with the
// groups of its Ice authenticator.

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/auth/oidcauth"
	"github.com/plenum-voice/plenum/auth/providers"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/web"
)

// signIn is the sign-in in force: the providers, in order, and what to do
// with names they do not know and when they cannot be reached. A reload
// of a changed [auth] swaps it whole.
type signIn struct {
	conf        *conf.Auth // as built from; nil for Options.Authenticator
	providers   auth.Authenticator
	unknown     string // conf.AuthLocal or conf.AuthRefuse
	unavailable string // conf.AuthRefuse or conf.AuthGuest
	timeout     time.Duration
}

// signInState is the server's part: the sign-in in force, and a context
// that ends with the server, so a slow provider does not hold up a stop.
type signInState struct {
	current    atomic.Pointer[signIn]
	signInCtx  context.Context
	stopSignIn context.CancelFunc
	// grants are the single sign-on's one-time codes and browser tokens
	// (auth/oidcauth); nil without [auth.oidc] at the start.
	grants *oidcauth.Grants
}

// Messages a refused client reads.
const (
	refusedByProvider = "Wrong user name or password"
	refusedUnknown    = "Unknown user name: sign in with your organisation's account"
	refusedNoProvider = "The sign-in service cannot be reached; try again later"
)

// initSignIn sets up the sign-in from the configuration or from override.
func (s *Server) initSignIn(cfg *conf.Config, override auth.Authenticator) error {
	s.signInCtx, s.stopSignIn = context.WithCancel(context.Background())
	if o := cfg.Auth.OIDCOrNil(); o != nil {
		s.grants = oidcauth.NewGrants(o.CodeTTLOrDefault())
		if s.cfg().WebListen == "" {
			s.log.Warn("[auth.oidc] needs the web listener for its sign-in link, and web_listen is off")
		}
	}
	if override != nil {
		s.current.Store(&signIn{providers: override, unknown: cfg.Auth.UnknownChoice(), unavailable: cfg.Auth.UnavailableChoice(), timeout: conf.DefaultAuthTimeout})
		return nil
	}
	si, err := s.buildSignIn(cfg.Auth)
	if err != nil {
		return fmt.Errorf("[auth]: %w", err)
	}
	s.current.Store(si)
	return nil
}

// reloadSignInLocked follows a changed [auth] of a reloaded file. Building
// does no I/O (providers connect per login), so it may run under the lock.
func (s *Server) reloadSignInLocked(a *conf.Auth) {
	cur := s.current.Load()
	if cur == nil || cur.conf == nil && cur.providers != nil || reflect.DeepEqual(cur.conf, a) {
		return // a test's own authenticator, or nothing changed
	}
	si, err := s.buildSignIn(a)
	if err != nil {
		s.log.Error("[auth] not reloaded, the running one stays", "err", err)
		return
	}
	s.current.Store(si)
	s.log.Info("[auth] reloaded")
}

// buildSignIn makes the providers [auth] configures, each with its
// timeout and cache; nil providers when there are none.
func (s *Server) buildSignIn(a *conf.Auth) (*signIn, error) {
	si := &signIn{conf: a, unknown: a.UnknownChoice(), unavailable: a.UnavailableChoice()}
	var codes auth.Authenticator
	if s.grants != nil {
		codes = s.grants
	} else if a.OIDCOrNil() != nil {
		s.log.Warn("[auth.oidc] added: it takes effect at the next start")
	}
	built, err := providers.Build(a, codes)
	if err != nil {
		return nil, err
	}
	if built.Chain != nil {
		si.providers, si.timeout = built.Chain, built.Timeout
	}
	return si, nil
}

// signInIdentify is identify with the providers asked first: an accept is
// the identity, a refusal refuses, an unknown name or an unreachable
// provider goes on as configured. SuperUser is never asked of a provider.
func (s *Server) signInIdentify(name, password, certHash string, kind auth.Kind, browserToken string) (identity, mumblepb.Reject_RejectType, string) {
	if ident, ok := s.browserIdentity(browserToken, name); ok {
		return ident, mumblepb.Reject_None, ""
	}
	si := s.current.Load()
	if si == nil || si.providers == nil || strings.EqualFold(name, superUserName) {
		return s.identify(name, password, certHash)
	}
	ctx, cancel := context.WithTimeout(s.signInCtx, si.timeout+time.Second)
	defer cancel()
	a, err := si.providers.Authenticate(ctx, auth.Request{Name: name, Password: password, CertHash: certHash, Kind: kind})
	if err != nil {
		// The error names the provider and what failed, never the password.
		if si.unavailable == conf.AuthGuest {
			s.log.Warn("sign-in provider unavailable; admitting as a guest", "provider", a.Provider, "err", err)
			return s.identify(name, password, certHash)
		}
		s.log.Warn("sign-in provider unavailable; login refused", "provider", a.Provider, "err", err)
		return identity{}, mumblepb.Reject_AuthenticatorFail, refusedNoProvider
	}
	switch a.Verdict {
	case auth.Accept:
		ident, err := s.externalIdentity(a, name)
		if err != nil {
			return identity{}, mumblepb.Reject_AuthenticatorFail, refusedNoProvider
		}
		return ident, mumblepb.Reject_None, ""
	case auth.Refuse:
		reason := a.Reason
		if reason == "" || !utf8.ValidString(reason) || len(reason) > 200 {
			reason = refusedByProvider
		}
		return identity{}, mumblepb.Reject_WrongUserPW, reason
	}
	if si.unknown == conf.AuthRefuse {
		return identity{}, mumblepb.Reject_WrongUserPW, refusedUnknown
	}
	return s.identify(name, password, certHash)
}

// externalIdentity is the identity of someone a provider accepted.
func (s *Server) externalIdentity(a auth.Answer, name string) (identity, error) {
	id, err := s.store.ExternalUserID(a.Provider, a.Subject)
	if err != nil {
		s.log.Error("recording the user id of a signed-in user failed", "provider", a.Provider, "err", err)
		return identity{}, err
	}
	return identity{userID: id, name: displayName(a.DisplayName, name), groups: auth.CleanGroups(a.Groups), signInBy: a.Provider, signInSources: a.GroupSources}, nil
}

// browserIdentity is who a browser's single sign-on token says it is:
// the join page logs in as that person whatever name it typed. A token
// that is no longer good leaves the login to the name and password.
func (s *Server) browserIdentity(token, name string) (identity, bool) {
	if token == "" || s.grants == nil {
		return identity{}, false
	}
	a, _ := s.grants.Authenticate(s.signInCtx, auth.Request{Password: token, Kind: auth.Web})
	if a.Verdict != auth.Accept {
		return identity{}, false
	}
	a.Provider = "oidc"
	ident, err := s.externalIdentity(a, name)
	return ident, err == nil
}

// addWebSignIn serves [auth.oidc]'s sign-in link on the web listener.
func (s *Server) addWebSignIn(h *web.Handler) {
	o := s.config.Auth.OIDCOrNil()
	if o == nil || s.grants == nil {
		return
	}
	host := o.MumbleHost
	if host == "" {
		host = oidcauth.DefaultMumbleHost(o.RedirectURL, strconv.Itoa(int(s.Addr().Port())))
	}
	oh, err := oidcauth.NewHandler(oidcauth.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Scopes: o.Scopes, NameClaim: o.NameClaim, GroupsClaim: o.GroupsClaim, Groups: o.Groups,
		MumbleHost: host, Log: s.log,
	}, s.grants)
	if err != nil {
		s.log.Error("[auth.oidc] not served", "err", err)
		return
	}
	h.SignIn = oh
	h.SignInToken = func(r *http.Request) string {
		if c, err := r.Cookie(oidcauth.TokenCookie); err == nil {
			return c.Value
		}
		return ""
	}
}

// displayName is the provider's name for the person when it is one a
// client can show, else the name they logged in with.
func displayName(given, login string) string {
	given = strings.TrimSpace(given)
	if given == "" || len(given) > maxUsernameLen || !utf8.ValidString(given) {
		return login
	}
	for _, r := range given {
		if r < 0x20 || r == 0x7f {
			return login
		}
	}
	return given
}
