package server

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

// adminTokenFile holds the generated admin token inside the data directory.
const adminTokenFile = "admin_token"

// prepareAdminAccess loads (or, on first start, generates) the admin token
// when admin_token is not set, and warns when the listener is reachable
// from other machines without a token the operator chose.
func (s *Server) prepareAdminAccess(sc *conf.Server) error {
	if sc.AdminListen == "" || sc.AdminToken != "" {
		return nil
	}
	path := filepath.Join(sc.DataDir, adminTokenFile)
	tok, err := loadAdminToken(path)
	if err != nil {
		return err
	}
	s.adminFileToken = tok
	if !loopbackListen(sc.AdminListen) {
		s.log.Warn("admin listener not on loopback and admin_token not set: it takes the generated token, sent over plain HTTP; "+
			"set admin_token (and admin_hosts), or keep admin_listen on loopback", "admin_listen", sc.AdminListen, "token_file", path)
	}
	return nil
}

// loadAdminToken returns the token kept at path, generating it when the
// file is missing or empty. An operator may write a token of their own
// into the file.
func loadAdminToken(path string) (string, error) {
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

// AdminTokenFile is the file that holds the admin token, or "" when the
// token is admin_token from the configuration (or there is no listener).
func (s *Server) AdminTokenFile() string {
	if s.adminFileToken == "" || s.cfg().AdminToken != "" {
		return ""
	}
	return filepath.Join(s.cfg().DataDir, adminTokenFile)
}

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

// adminToken is the token the admin listener accepts: admin_token, or the
// generated one; "" accepts nothing.
func (s *Server) adminToken() string {
	if t := s.cfg().AdminToken; t != "" {
		return t
	}
	return s.adminFileToken
}

// tokenEqual compares in constant time, over digests so that the length of
// the token does not show either.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// hasBearer reports whether r carries the admin token as
// "Authorization: Bearer TOKEN".
func (s *Server) hasBearer(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && tokenEqual(strings.TrimSpace(tok), s.adminToken())
}

// adminCookie is the name of the status page's cookie. Cookies are not
// kept per port, so the port is in the name: two servers on one machine do
// not overwrite each other's.
func (s *Server) adminCookie() string {
	return "plenum_admin_" + strconv.Itoa(int(s.AdminAddr().Port()))
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
func (s *Server) hasCookie(r *http.Request) bool {
	c, err := r.Cookie(s.adminCookie())
	tok := s.adminToken()
	return err == nil && tok != "" && tokenEqual(c.Value, cookieValue(tok))
}

// isOperator reports whether r proves it comes from the operator: the
// token as a bearer token, or the cookie.
func (s *Server) isOperator(r *http.Request) bool {
	return s.hasBearer(r) || s.hasCookie(r)
}

// setOperatorCookie gives a browser that presented the token the cookie:
// HttpOnly (no script reads it), SameSite=Strict (no other site's page
// makes the browser send it), for the browser's session.
func (s *Server) setOperatorCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.adminCookie(),
		Value:    cookieValue(s.adminToken()),
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
func (s *Server) hostAllowed(hostport string) bool {
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
	cfg := s.cfg()
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
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			// Not logged with the host: a request may name any address there.
			s.log.Debug("admin listener: refused a request for a host it does not answer to")
			http.Error(w, "This server does not answer to that host name. The operator may add it to admin_hosts.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// operatorOnly lets the operator's requests through to h and answers
// others 401.
func (s *Server) operatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.isOperator(r) {
			unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// localOrOperator lets through requests from this machine and the
// operator's from anywhere: for /metrics.
func (s *Server) localOrOperator(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil && peer.Addr().Unmap().IsLoopback() || s.isOperator(r) {
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
