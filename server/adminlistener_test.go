package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/conf"
)

// adminRequest is one request to the admin listener.
type adminRequest struct {
	method, path string
	host         string // the Host header; "" for the listener's address
	bearer       string // sent as Authorization: Bearer
	cookie       *http.Cookie
	body         string
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// admin sends req to the admin listener; the caller closes the body.
func (s *testServer) admin(t *testing.T, req adminRequest) *http.Response {
	t.Helper()
	resp, err := s.sendAdmin(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *testServer) sendAdmin(req adminRequest) (*http.Response, error) {
	if req.method == "" {
		req.method = http.MethodGet
	}
	r, err := http.NewRequest(req.method, "http://"+s.AdminAddr().String()+req.path, strings.NewReader(req.body))
	if err != nil {
		return nil, err
	}
	if req.host != "" {
		r.Host = req.host
	}
	if req.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+req.bearer)
	}
	if req.cookie != nil {
		r.AddCookie(req.cookie)
	}
	return noRedirects.Do(r)
}

// adminCode sends req and returns the status code and the body (the first
// event of an event stream).
func (s *testServer) adminCode(t *testing.T, req adminRequest) (int, string) {
	t.Helper()
	resp := s.admin(t, req)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil {
			t.Fatalf("%s: reading the first event: %v", req.path, err)
		}
		return resp.StatusCode, line
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

var operatorPaths = []string{"/", "/api/status", "/api/events", "/metrics"}

// TestAdminListenerAnswersOnlyTheOperator: the status page, /api/status
// and /api/events answer a request with the admin token and refuse one
// without it or with a wrong one, without showing who is connected;
// /metrics answers this machine without a token (and names nobody
// unregistered); and a request naming a host the listener does not answer
// to is refused even with the token, while loopback addresses, localhost
// and admin_hosts are answered.
func TestAdminListenerAnswersOnlyTheOperator(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Server.AdminToken = "s3cret"
		c.Server.AdminHosts = []string{"plenum.example.org"}
	})
	s.join(t, "alice", nil)
	for _, path := range operatorPaths[:3] {
		for _, token := range []string{"", "s3cre", "s3cret2", "S3CRET"} {
			code, body := s.adminCode(t, adminRequest{path: path, bearer: token})
			if code != http.StatusUnauthorized || strings.Contains(body, "alice") {
				t.Errorf("GET %s with token %q: HTTP %d %q, want 401 without the status", path, token, code, body)
			}
		}
		code, body := s.adminCode(t, adminRequest{path: path, bearer: "s3cret"})
		if code != http.StatusOK || !strings.Contains(body, "alice") {
			t.Errorf("GET %s with the token: HTTP %d %q, want 200 with alice", path, code, body)
		}
	}
	// Open to this machine, the metrics name no unregistered user and no
	// address.
	if code, body := s.adminCode(t, adminRequest{path: "/metrics"}); code != http.StatusOK || !strings.Contains(body, "plenum_users 1") {
		t.Errorf("GET /metrics from loopback without a token: HTTP %d", code)
	} else if strings.Contains(body, "alice") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("the metrics name alice or her address:\n%s", body)
	}
	if code, _ := s.adminCode(t, adminRequest{method: "POST", path: "/api/floor", body: `{"channel":"Nope","action":"next"}`}); code != http.StatusUnauthorized {
		t.Errorf("POST /api/floor without the token: HTTP %d", code)
	}
	if code, _ := s.adminCode(t, adminRequest{method: "POST", path: "/api/floor", bearer: "s3cret", body: `{"channel":"Nope","action":"next"}`}); code != http.StatusBadRequest {
		t.Errorf("POST /api/floor with the token for no hall: HTTP %d, want 400", code)
	}

	port := ":" + strconv.Itoa(int(s.AdminAddr().Port()))
	for _, host := range []string{"evil.example", "evil.example" + port, "plenum.example.org.evil.example", "0.0.0.0" + port, "192.0.2.1", "[2001:db8::1]" + port, "localhost.evil.example"} {
		for _, path := range operatorPaths {
			if code, body := s.adminCode(t, adminRequest{path: path, host: host, bearer: "s3cret"}); code != http.StatusForbidden || strings.Contains(body, "alice") {
				t.Errorf("GET %s for host %q with the token: HTTP %d, want 403", path, host, code)
			}
		}
		if code, _ := s.adminCode(t, adminRequest{method: "POST", path: "/api/floor", host: host, bearer: "s3cret", body: `{}`}); code != http.StatusForbidden {
			t.Errorf("POST /api/floor for host %q with the token: HTTP %d, want 403", host, code)
		}
	}
	for _, host := range []string{"localhost" + port, "LocalHost", "127.0.0.2" + port, "[::1]" + port, "[::1]", "plenum.example.org" + port, "Plenum.Example.Org.", s.AdminAddr().String()} {
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status", host: host, bearer: "s3cret"}); code != http.StatusOK {
			t.Errorf("GET /api/status for host %q with the token: HTTP %d, want 200", host, code)
		}
	}
}

// TestStatusPageCookie: a browser presents the token once as /?token=, is
// sent on to / with an HttpOnly, SameSite=Strict cookie that is not the
// token, and the cookie alone then opens the page and its API (but not the
// floor actions); a wrong token or a forged cookie opens nothing.
func TestStatusPageCookie(t *testing.T) {
	s := startServer(t, func(c *conf.Config) { c.Server.AdminToken = "s3cret" })
	s.join(t, "alice", nil)

	resp := s.admin(t, adminRequest{path: "/?token=wrong"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("a wrong token: HTTP %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp = s.admin(t, adminRequest{path: "/?token=s3cret"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(resp.Cookies()) != 1 {
		t.Fatalf("the token: HTTP %d to %q, cookies %v; want 303 to / with a cookie", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || strings.Contains(cookie.Value, "s3cret") {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not holding the token", cookie)
	}

	for _, path := range operatorPaths[:3] {
		if code, body := s.adminCode(t, adminRequest{path: path, cookie: cookie}); code != http.StatusOK || !strings.Contains(body, "alice") {
			t.Errorf("GET %s with the cookie: HTTP %d, want 200 with alice", path, code)
		}
		forged := *cookie
		forged.Value = cookie.Value[:len(cookie.Value)-1] + "x"
		if forged.Value == cookie.Value {
			forged.Value = cookie.Value[:len(cookie.Value)-1] + "y"
		}
		if code, _ := s.adminCode(t, adminRequest{path: path, cookie: &forged}); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a forged cookie: HTTP %d, want 401", path, code)
		}
		token := &http.Cookie{Name: cookie.Name, Value: "s3cret"}
		if code, _ := s.adminCode(t, adminRequest{path: path, cookie: token}); code != http.StatusUnauthorized {
			t.Errorf("GET %s with the token as the cookie: HTTP %d, want 401", path, code)
		}
	}
	if code, _ := s.adminCode(t, adminRequest{method: "POST", path: "/api/floor", cookie: cookie, body: `{"channel":"Nope","action":"next"}`}); code != http.StatusUnauthorized {
		t.Errorf("POST /api/floor with the cookie only: HTTP %d, want 401", code)
	}
	code, body := s.adminCode(t, adminRequest{path: "/"})
	if code != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) || strings.Contains(body, "alice") {
		t.Errorf("the page without the cookie: HTTP %d, want 401 with a form for the token and no status:\n%s", code, body)
	}
}

// TestAdminTokenGeneratedOnFirstStart: without admin_token the server
// generates a token on first start, keeps it in the data directory (mode
// 0600) and takes it after a restart; an admin_token in the configuration
// replaces it.
func TestAdminTokenGeneratedOnFirstStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin_token")
	var token string
	t.Run("first start", func(t *testing.T) {
		s := startTestServer(t, testOpts{dataDir: dir})
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		token = strings.TrimSpace(string(data))
		if len(token) < 20 {
			t.Fatalf("generated token %q", token)
		}
		if s.AdminTokenFile() != path {
			t.Errorf("AdminTokenFile() = %q, want %q", s.AdminTokenFile(), path)
		}
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status"}); code != http.StatusUnauthorized {
			t.Errorf("without the token: HTTP %d", code)
		}
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status", bearer: token}); code != http.StatusOK {
			t.Errorf("with the generated token: HTTP %d", code)
		}
		if code, _ := s.adminCode(t, adminRequest{method: "POST", path: "/api/floor", bearer: token, body: `{"channel":"Nope","action":"next"}`}); code != http.StatusBadRequest {
			t.Errorf("a floor action with the generated token: HTTP %d, want 400 (no such hall)", code)
		}
	})
	t.Run("restart", func(t *testing.T) {
		s := startTestServer(t, testOpts{dataDir: dir})
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status", bearer: token}); code != http.StatusOK {
			t.Errorf("the token of the first start after a restart: HTTP %d", code)
		}
	})
	t.Run("admin_token set", func(t *testing.T) {
		s := startTestServer(t, testOpts{dataDir: dir, edit: func(c *conf.Config) { c.Server.AdminToken = "chosen" }})
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status", bearer: token}); code != http.StatusUnauthorized {
			t.Errorf("the generated token with admin_token set: HTTP %d, want 401", code)
		}
		if code, _ := s.adminCode(t, adminRequest{path: "/api/status", bearer: "chosen"}); code != http.StatusOK {
			t.Errorf("admin_token: HTTP %d", code)
		}
		if s.AdminTokenFile() != "" {
			t.Errorf("AdminTokenFile() = %q with admin_token set", s.AdminTokenFile())
		}
	})
}

// TestEventStreamSlotsAreTheOperators: requests without the token, or for
// another host, never take one of the 16 event-stream slots: with 40 of
// them open at once, the operator still opens all 16 streams.
func TestEventStreamSlotsAreTheOperators(t *testing.T) {
	s := startServer(t, func(c *conf.Config) { c.Server.AdminToken = "s3cret" })
	var (
		mu        sync.Mutex
		strangers []*http.Response
		wg        sync.WaitGroup
	)
	defer func() {
		for _, r := range strangers {
			r.Body.Close()
		}
	}()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := adminRequest{path: "/api/events"}
			if i%2 == 1 {
				req.host, req.bearer = "evil.example", "s3cret"
			}
			resp, err := s.sendAdmin(req)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			strangers = append(strangers, resp)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(strangers) != 40 {
		t.Fatalf("%d of 40 strangers' requests were answered", len(strangers))
	}
	for _, r := range strangers {
		if r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusForbidden {
			t.Fatalf("a stranger's event stream: HTTP %d", r.StatusCode)
		}
	}

	var streams []*http.Response
	defer func() {
		for _, r := range streams {
			r.Body.Close()
		}
	}()
	for i := range 17 {
		resp := s.admin(t, adminRequest{path: "/api/events", bearer: "s3cret"})
		streams = append(streams, resp)
		if i < 16 && resp.StatusCode != http.StatusOK || i == 16 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("the operator's event stream %d: HTTP %d", i+1, resp.StatusCode)
		}
	}
	line, _ := bufio.NewReader(streams[15].Body).ReadString('\n')
	var st admin.Status
	if data, ok := strings.CutPrefix(line, "data: "); !ok || json.Unmarshal([]byte(data), &st) != nil || st.Time.IsZero() {
		t.Fatalf("the operator's 16th stream sent %q", line)
	}
}

// TestAdminTokenReload: a new admin_token takes effect on reload and the
// old one stops working; removing admin_token from a server that started
// with one locks the listener (no token was generated at start) and says
// so, rather than leaving it open.
func TestAdminTokenReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plenum.toml")
	withToken := func(line string) []byte {
		return []byte(strings.Replace(string(conf.DefaultTOML()), `admin_token = ""`, line, 1))
	}
	if err := os.WriteFile(path, withToken(`admin_token = "first"`), 0o600); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	s := startTestServer(t, testOpts{configFile: path, dataDir: filepath.Join(dir, "data"),
		logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	status := func(token string) int {
		code, _ := s.adminCode(t, adminRequest{path: "/api/status", bearer: token})
		return code
	}
	if status("first") != http.StatusOK {
		t.Fatal("admin_token does not open /api/status")
	}
	reload := func(line string) {
		t.Helper()
		if err := os.WriteFile(path, withToken(line), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload(`admin_token = "second"`)
	if status("first") != http.StatusUnauthorized || status("second") != http.StatusOK {
		t.Errorf("after the token changed: the old one HTTP %d, the new one HTTP %d", status("first"), status("second"))
	}
	reload(`admin_token = ""`)
	if status("first") != http.StatusUnauthorized || status("second") != http.StatusUnauthorized || status("") != http.StatusUnauthorized {
		t.Error("with admin_token removed, a token still opens /api/status")
	}
	if !strings.Contains(log.String(), "admin_token removed") {
		t.Errorf("no warning that the listener is locked:\n%s", log.String())
	}
}
