package web

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Handler serves the join page and the WebSocket.
type Handler struct {
	// Page holds index.html and its files (web/page.FS).
	Page fs.FS
	// Origins returns the allowed origins besides the request's own host,
	// in conf.WebOrigin's form; nil for none.
	Origins func() []string
	// Admit decides, before the upgrade, whether a WebSocket from addr
	// may open (the per-address limit on unauthenticated connections).
	// It returns false to refuse with 503.
	Admit func(addr netip.AddrPort) bool
	// Serve runs one browser's connection until it ends; nc carries one
	// Mumble frame per binary message (see FrameConn). It is called in the
	// request's goroutine after Admit said yes, and must release what
	// Admit took.
	Serve func(nc net.Conn, remote netip.AddrPort)
	// MaxMessage bounds one WebSocket message: a Mumble frame and its
	// header.
	MaxMessage int64
	// SignIn, when set, serves the single sign-on's pages under /auth/
	// (auth/oidcauth).
	SignIn http.Handler
	// SignInToken, when set, reads the single sign-on's browser token
	// from a WebSocket's upgrade request; Serve finds it in the
	// FrameConn's SignInToken.
	SignInToken func(r *http.Request) string
}

// connKey is the context key of the request's connection.
type connKey struct{}

// NewServer returns an HTTP server for h whose handlers can tell whether
// their connection is TLS (for the Origin check).
func NewServer(h *Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: quietLog,
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == "/ws" {
		h.serveWebSocket(w, r)
		return
	}
	if h.SignIn != nil && strings.HasPrefix(r.URL.Path, "/auth/") {
		h.SignIn.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" || !strings.Contains(path.Base(name), ".") {
		name = "index.html" // "/", "/?channel=Plenary", "/Plenary"
	}
	if name == "index.html" {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
	}
	http.ServeFileFS(w, r, h.Page, name)
}

func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !h.originAllowed(r) {
		http.Error(w, "this page may not open the WebSocket (Origin not allowed)", http.StatusForbidden)
		return
	}
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "bad address", http.StatusBadRequest)
		return
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !h.Admit(remote) {
		http.Error(w, "Too many connections from your network are logging in at this moment. Please try again in a few seconds", http.StatusServiceUnavailable)
		return
	}
	// The origin was checked above, against web_origins as well, which
	// the library's host patterns cannot express.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		h.Serve(nil, remote) // releases what Admit took
		return
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	if h.MaxMessage > 0 {
		ws.SetReadLimit(h.MaxMessage)
	}
	fc := NewFrameConn(nc)
	if h.SignInToken != nil {
		fc.SignInToken = h.SignInToken(r)
	}
	fc.RejoinKey = RejoinKey(r.URL.Query().Get("rejoin"))
	h.Serve(fc, remote)
}

// originAllowed checks the Origin a browser sends with the upgrade: the
// page's own scheme and host, or one of Origins. A request without Origin
// comes from no browser page (a browser always sends one for a
// WebSocket), so no page can misuse it, and it is allowed.
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok && IsTLS(c) {
		scheme = "https"
	}
	if strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if h.Origins != nil {
		lower := strings.ToLower(origin)
		for _, o := range h.Origins() {
			if o == lower {
				return true
			}
		}
	}
	return false
}
