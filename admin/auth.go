package admin

// Who may use the admin listener. The status page and its API show who is
// in the meeting, so they answer the operator only: a request must name a
// host the operator uses, and carry the admin token, as a bearer token or
// as the cookie a browser gets for presenting the token once. /metrics
// holds counts, not names or addresses, and stays open to the same
// machine so that a local Prometheus scrapes it without credentials.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/atomicfile"
)

// tokenFileName is the file that holds the generated admin token inside
// the data directory.
const tokenFileName = "admin_token"

// prepareAccess loads (or, on first start, generates) the admin token
// when admin_token is not set, and warns when the listener is reachable
// from other machines without a token the operator chose.
func (l *Listener) prepareAccess(sc *conf.Server) error {
	if sc.AdminListen == "" || sc.AdminToken != "" {
		return nil
	}
	path := filepath.Join(sc.DataDir, tokenFileName)
	tok, err := loadToken(path)
	if err != nil {
		return err
	}
	l.fileToken, l.tokenFile = tok, path
	if !loopbackListen(sc.AdminListen) {
		l.cfg.Log.Warn("admin listener not on loopback and admin_token not set: it takes the generated token, sent over plain HTTP; "+
			"set admin_token (and admin_hosts), or keep admin_listen on loopback", "admin_listen", sc.AdminListen, "token_file", path)
	}
	return nil
}

// loadToken returns the token kept at path, generating it when the
// file is missing or empty. An operator may write a token of their own
// into the file.
func loadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if tok := strings.TrimSpace(string(data)); tok != "" {
		return tok, nil
	}
	tok := rand.Text() // 128 random bits in 26 characters safe in a URL
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return tok, nil
}

// TokenFile is the file that holds the admin token, or "" when the token
// is admin_token from the configuration.
func (l *Listener) TokenFile() string {
	if l.fileToken == "" || l.cfg.Settings().AdminToken != "" {
		return ""
	}
	return l.tokenFile
}

// HasGeneratedToken reports whether admin_token was not set at start, so
// that the token in the data directory was loaded or generated. Only
// then does the listener have a token to fall back on when a reload
// removes admin_token.
func (l *Listener) HasGeneratedToken() bool { return l.fileToken != "" }

// loopbackListen reports whether admin_listen names a loopback address
// (or localhost). Any other host, a name included, may be reachable from
// other machines.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// token is the token the listener accepts: admin_token, or the generated
// one; "" accepts nothing.
func (l *Listener) token() string {
	if t := l.cfg.Settings().AdminToken; t != "" {
		return t
	}
	return l.fileToken
}

// tokenEqual compares in constant time, over digests so that the length of
// the token does not show either.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// hasBearer reports whether r carries the admin token as
// "Authorization: Bearer TOKEN".
func (l *Listener) hasBearer(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && tokenEqual(strings.TrimSpace(tok), l.token())
}

// cookieName is the name of the status page's cookie. Cookies are not
// kept per port, so the port is in the name: two servers on one machine do
// not overwrite each other's.
func (l *Listener) cookieName() string {
	return "plenum_admin_" + strconv.Itoa(int(l.Addr().Port()))
}

// cookieValue is what the cookie holds: derived from the token, so that
// the cookie opens the page but is not the token itself (the floor
// actions take the token only), and changes when the token does.
func cookieValue(token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("plenum status page cookie"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// hasCookie reports whether r carries the status page's cookie.
func (l *Listener) hasCookie(r *http.Request) bool {
	c, err := r.Cookie(l.cookieName())
	tok := l.token()
	return err == nil && tok != "" && tokenEqual(c.Value, cookieValue(tok))
}

// isOperator reports whether r proves it comes from the operator: the
// token as a bearer token, or the cookie.
func (l *Listener) isOperator(r *http.Request) bool {
	return l.hasBearer(r) || l.hasCookie(r)
}

// setOperatorCookie gives a browser that presented the token the cookie:
// HttpOnly (no script reads it), SameSite=Strict (no other site's page
// makes the browser send it), for the browser's session.
func (l *Listener) setOperatorCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     l.cookieName(),
		Value:    cookieValue(l.token()),
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// hostAllowed reports whether the Host a request names is one the
// operator reaches the listener by: a loopback address, localhost, the
// host of admin_listen or a name in admin_hosts. A web page that gets its
// own name to resolve to this machine (DNS rebinding) sends that name, and
// is refused.
func (l *Listener) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	name, err := conf.AdminHost(host)
	if err != nil {
		return false
	}
	if name == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(name); err == nil && a.IsLoopback() {
		return true
	}
	cfg := l.cfg.Settings()
	if h, _, err := net.SplitHostPort(cfg.AdminListen); err == nil {
		if own, err := conf.AdminHost(h); err == nil && own == name {
			return true
		}
	}
	for _, h := range cfg.AdminHosts {
		if allowed, err := conf.AdminHost(h); err == nil && allowed == name {
			return true
		}
	}
	return false
}

// checkHost refuses, before anything else, a request for a host the
// listener does not answer to.
func (l *Listener) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.hostAllowed(r.Host) {
			// Not logged with the host: a request may name any address there.
			l.cfg.Log.Debug("admin listener: refused a request for a host it does not answer to")
			http.Error(w, "This server does not answer to that host name. The operator may add it to admin_hosts.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// operatorOnly lets the operator's requests through to h and answers
// others 401.
func (l *Listener) operatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.isOperator(r) {
			unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// localOrOperator lets through requests from this machine and the
// operator's from anywhere: for /metrics.
func (l *Listener) localOrOperator(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil && peer.Addr().Unmap().IsLoopback() || l.isOperator(r) {
			h.ServeHTTP(w, r)
			return
		}
		unauthorized(w)
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="plenum admin"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this needs the admin token as Authorization: Bearer TOKEN"})
}
