package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestFloorActionReachesTheServer: POST /api/floor with the bearer token
// hands the hall, the action and its argument to the server and answers
// with what the server says, as JSON; the server's refusal, a body that
// is not JSON or one over 4 KiB is a 400, and a request without the
// bearer token (the status page's cookie included) never reaches the
// server.
func TestFloorActionReachesTheServer(t *testing.T) {
	var log bytes.Buffer
	l, fake := newListener(t, "s3cret", &log)
	post := func(body string, auth func(*http.Request)) (int, map[string]string) {
		t.Helper()
		req := httptest.NewRequest("POST", "http://127.0.0.1/api/floor", strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		auth(req)
		rec := httptest.NewRecorder()
		l.handler.ServeHTTP(rec, req)
		var answer map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("POST /api/floor %s: HTTP %d, not JSON: %q", body, rec.Code, rec.Body.String())
		}
		return rec.Code, answer
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	cookie := func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: l.cookieName(), Value: cookieValue("s3cret")})
	}

	if code, a := post(`{"channel":"Hall","action":"give","arg":"alice"}`, bearer("s3cret")); code != http.StatusOK || a["result"] != "done: give" {
		t.Errorf("a floor action with the token: HTTP %d %v", code, a)
	}
	if code, a := post(`{"channel":"Nope","action":"next"}`, bearer("s3cret")); code != http.StatusBadRequest || a["error"] != "no floor-controlled hall" {
		t.Errorf("a floor action the server refuses: HTTP %d %v", code, a)
	}
	if code, a := post(`{"channel":`, bearer("s3cret")); code != http.StatusBadRequest || !strings.HasPrefix(a["error"], "body: ") {
		t.Errorf("a body that is not JSON: HTTP %d %v", code, a)
	}
	big := `{"channel":"Hall","action":"give","arg":"` + strings.Repeat("x", 4096) + `"}`
	if code, a := post(big, bearer("s3cret")); code != http.StatusBadRequest || !strings.HasPrefix(a["error"], "body: ") {
		t.Errorf("a body over 4 KiB: HTTP %d %v", code, a)
	}
	for name, auth := range map[string]func(*http.Request){"no token": func(*http.Request) {}, "a wrong token": bearer("wrong"), "the cookie": cookie} {
		if code, _ := post(`{"channel":"Hall","action":"next"}`, auth); code != http.StatusUnauthorized {
			t.Errorf("a floor action with %s: HTTP %d, want 401", name, code)
		}
	}
	if got, want := fake.done(), []string{"Hall give alice"}; !slices.Equal(got, want) {
		t.Errorf("the server was asked for %q, want %q", got, want)
	}
}
