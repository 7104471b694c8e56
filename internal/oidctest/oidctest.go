// Package oidctest runs a real OpenID Connect provider for tests: ory
// hydra v2.3.0 (built from its module by scripts/hydra-build), with an
// in-memory SQLite database on loopback ports, and the login and consent
// app hydra leaves to its users, serving a password form for the people
// a test adds. Browser follows the sign-in as a browser would, cookies
// and redirects included.
//
// Tests skip, saying why, when the hydra binary is not there.
package oidctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/freeport"
)

// HydraVersion is the version scripts/hydra-build builds.
const HydraVersion = "v2.3.0"

// Binary is the hydra to run: $PLENUM_HYDRA, else where scripts/hydra-build
// puts it ($XDG_CACHE_HOME or ~/.cache, plenum/hydra-v2.3.0/hydra); ""
// when there is none.
func Binary() string {
	if p := os.Getenv("PLENUM_HYDRA"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(dir, "plenum", "hydra-"+HydraVersion, "hydra")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// User is a person the login app knows.
type User struct {
	Password    string
	Subject     string // the "sub" of their ID token
	Name        string // preferred_username
	DisplayName string // name
	Groups      []string
}

// Provider is a running hydra with its login and consent app.
type Provider struct {
	Issuer string // the public URL, as the discovery document names it
	admin  string
	t      testing.TB
	app    *httptest.Server
	cmd    *exec.Cmd
	done   chan struct{}
	log    *bytes.Buffer

	mu    sync.Mutex
	users map[string]User
}

// Start runs hydra until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("ory hydra " + HydraVersion + " is not built: run scripts/hydra-build (scripts/test does)")
	}
	p := &Provider{t: t, log: &bytes.Buffer{}, done: make(chan struct{}), users: map[string]User{}}
	p.app = httptest.NewServer(p.appHandler())
	t.Cleanup(p.app.Close)
	public, admin := freeport.TCP(t), freeport.TCP(t)
	p.Issuer = "http://127.0.0.1:" + strconv.Itoa(public)
	p.admin = "http://127.0.0.1:" + strconv.Itoa(admin)
	p.cmd = exec.Command(bin, "serve", "all", "--dev")
	p.cmd.Env = append(os.Environ(),
		"DSN=memory", // SQLite in memory
		"URLS_SELF_ISSUER="+p.Issuer,
		"URLS_LOGIN="+p.app.URL+"/login",
		"URLS_CONSENT="+p.app.URL+"/consent",
		"SECRETS_SYSTEM=plenum-test-system-secret-0123456789",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+strconv.Itoa(public),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+strconv.Itoa(admin),
		"LOG_LEVEL=warn", "SQA_OPT_OUT=true",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Dir = t.TempDir()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting hydra: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	if err := p.waitReady(60 * time.Second); err != nil {
		t.Fatalf("hydra did not come up: %v\n%s", err, p.log)
	}
	return p
}

func (p *Provider) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(p.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("ready: %s", resp.Status)
		}
		select {
		case <-p.done:
			return fmt.Errorf("hydra exited: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Provider) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// AddUser lets login sign in with u.Password.
func (p *Provider) AddUser(login string, u User) {
	p.mu.Lock()
	p.users[login] = u
	p.mu.Unlock()
}

// AddClient registers an OAuth 2 client for the authorization code flow
// with redirectURL, and returns its id and secret.
func (p *Provider) AddClient(redirectURL string) (id, secret string) {
	p.t.Helper()
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	err := p.adminCall(http.MethodPost, "/admin/clients", map[string]any{
		"client_name":                "plenum",
		"redirect_uris":              []string{redirectURL},
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
		"scope":                      "openid profile groups",
		"token_endpoint_auth_method": "client_secret_basic",
	}, &out)
	if err != nil {
		p.t.Fatalf("registering the client: %v\n%s", err, p.log)
	}
	return out.ClientID, out.ClientSecret
}

// adminCall calls hydra's admin API with a JSON body and decodes the
// answer into out (if not nil).
func (p *Provider) adminCall(method, path string, body, out any) error {
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(method, p.admin+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra %s %s: %s: %s", method, path, resp.Status, answer)
	}
	if out != nil {
		return json.Unmarshal(answer, out)
	}
	return nil
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html><title>Example SSO</title>
<form method="post" action="/login"><input type="hidden" name="challenge" value="{{.Challenge}}">
{{if .Problem}}<p>{{.Problem}}</p>{{end}}
<input name="login"><input name="password" type="password"><button>Sign in</button></form>`))

// appHandler is the login and consent app: a password form for the
// login, and consent given to every client, with the person's name and
// groups in the ID token.
func (p *Provider) appHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		loginForm.Execute(w, map[string]string{"Challenge": r.URL.Query().Get("login_challenge")})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		challenge, login, password := r.FormValue("challenge"), r.FormValue("login"), r.FormValue("password")
		p.mu.Lock()
		u, ok := p.users[login]
		p.mu.Unlock()
		if !ok || u.Password != password {
			loginForm.Execute(w, map[string]string{"Challenge": challenge, "Problem": "wrong login or password"})
			return
		}
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		err := p.adminCall(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
			map[string]any{"subject": u.Subject}, &out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("consent_challenge")
		var req struct {
			Subject        string   `json:"subject"`
			RequestedScope []string `json:"requested_scope"`
			Audience       []string `json:"requested_access_token_audience"`
		}
		if err := p.adminCall(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var u User
		p.mu.Lock()
		for _, v := range p.users {
			if v.Subject == req.Subject {
				u = v
			}
		}
		p.mu.Unlock()
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		err := p.adminCall(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge), map[string]any{
			"grant_scope":                 req.RequestedScope,
			"grant_access_token_audience": req.Audience,
			"session": map[string]any{"id_token": map[string]any{
				"preferred_username": u.Name, "name": u.DisplayName, "groups": u.Groups,
			}},
		}, &out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	})
	return mux
}

// Browser is a browser in a test: it keeps cookies and follows
// redirects.
type Browser struct {
	*http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{&http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

var challengeField = regexp.MustCompile(`name="challenge" value="([^"]*)"`)

// SignIn opens start (a sign-in link), fills the provider's login form
// with login and password, and returns the page it ends on and its URL.
func (b *Browser) SignIn(ctx context.Context, start, login, password string) (page string, at *url.URL, status int, err error) {
	form, formURL, _, err := b.get(ctx, start)
	if err != nil {
		return "", nil, 0, err
	}
	m := challengeField.FindStringSubmatch(form)
	if m == nil {
		return form, formURL, 0, fmt.Errorf("no login form at %s", formURL)
	}
	values := url.Values{"challenge": {m[1]}, "login": {login}, "password": {password}}
	post := *formURL
	post.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, post.String(), strings.NewReader(values.Encode()))
	if err != nil {
		return "", nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *Browser) get(ctx context.Context, u string) (string, *url.URL, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, 0, err
	}
	return b.do(req)
}

func (b *Browser) do(req *http.Request) (string, *url.URL, int, error) {
	resp, err := b.Do(req)
	if err != nil {
		return "", nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.Request.URL, resp.StatusCode, err
}
