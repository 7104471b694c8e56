package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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

// get asks the listener for path as the operator, in the language of
// acceptLanguage, and returns the answer.
func get(t *testing.T, l *Listener, path, acceptLanguage string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "http://127.0.0.1"+path, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer s3cret")
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	rec := httptest.NewRecorder()
	l.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

func figure(v float64) *float64 { return &v }

// hall is a hall of numbered members with figures and without.
func hall(n int) []ChannelStatus {
	cs := ChannelStatus{ID: 7, Path: "Hall", Floor: &FloorStatus{Holder: "m3", LeftSec: 90, Queue: []string{"m10", "m2"}}, Recording: true}
	for i := 1; i <= n; i++ {
		u := UserStatus{Session: uint32(i), Name: fmt.Sprintf("m%d", i), Transport: "udp", TalkSec: float64(i)}
		switch i % 4 {
		case 0: // no figures yet
		case 1:
			u.PingMs, u.LossPct = figure(30), figure(0.5)
		case 2:
			u.PingMs, u.LossPct = figure(0.3), figure(float64(i)) // a LAN, and loss that grows with the number
		case 3:
			u.PingMs, u.Transport = figure(250), "tcp"
		}
		u.Talking = i == 3
		cs.Users = append(cs.Users, u)
	}
	return []ChannelStatus{cs, {ID: 8, Path: "Lobby", Users: []UserStatus{{Session: 100, Name: "zoe", Transport: "udp"}}}}
}

// rows returns the names in the member rows of html, in order.
func rows(html string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`<tr[^>]*><td class="[a-z]*">([^<]*)</td>`).FindAllStringSubmatch(html, -1) {
		names = append(names, m[1])
	}
	return names
}

// TestStatusPageViews: the page answers in the browser's language (or
// ?lang=), shows the summary's counts, collapses a hall over the
// collapse size until it is opened, lists members naturally or by their
// worst figure (figures they lack last, shown as a dash rather than 0),
// and with a filter lists the people who match across channels.
func TestStatusPageViews(t *testing.T) {
	var log bytes.Buffer
	l, fake := newListener(t, "s3cret", &log)
	fake.show(hall(40))

	for _, tc := range []struct{ accept, query, want string }{
		{"", "", "Participants"},
		{"de-DE,de;q=0.9,en;q=0.8", "", "Teilnehmende"},
		{"fr-FR,en;q=0.5,de;q=0.7", "", "Teilnehmende"},
		{"en-GB,de;q=0.5", "", "Participants"},
		{"de", "?lang=en", "Participants"},
	} {
		rec := get(t, l, "/"+tc.query, tc.accept)
		if body := rec.Body.String(); !strings.Contains(body, tc.want) || strings.Contains(body, "⟦") {
			t.Errorf("Accept-Language %q %s: the page does not say %q (or misses a text)", tc.accept, tc.query, tc.want)
		}
	}

	page := get(t, l, "/", "").Body.String()
	for _, want := range []string{`<b id="h-participants">41</b>`, `<span id="h-udp">31</span>`, `<span id="h-tcp">10</span>`,
		`<b id="h-talking">1</b>`, `<b id="h-bad">`, "1:30 left", "2 waiting", "● Hall", "show members",
		"Plenum 1.5.735, running since 2026-12-06 07:42"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if got := rows(page); !slices.Equal(got, []string{"zoe"}) {
		t.Errorf("collapsed, the page lists %q; want only the lobby's zoe", got)
	}

	open := get(t, l, "/?t=7", "").Body.String()
	got := rows(open)
	if len(got) != 41 || got[0] != "m1" || got[1] != "m2" || got[9] != "m10" || got[39] != "m40" {
		t.Errorf("opened, the hall lists %d members: %q", len(got), got)
	}
	if !strings.Contains(open, `<td class="num">0.3 ms</td>`) || !strings.Contains(open, `<td class="num">–</td>`) ||
		strings.Contains(open, ">0 ms<") {
		t.Error("a ping on a LAN does not show as 0.3 ms, or a missing figure not as a dash")
	}

	byLoss := rows(get(t, l, "/?t=7&sort=loss", "").Body.String())
	if byLoss[0] != "m38" || byLoss[1] != "m34" || byLoss[len(byLoss)-2] != "m40" {
		t.Errorf("by loss: %q; want m38, m34 first and those without a figure last", byLoss)
	}

	found := get(t, l, "/?q=M1", "").Body.String()
	if got := rows(strings.ReplaceAll(found, `<td><a href="#ch-7">Hall</a></td>`, "")); len(got) != 11 || got[0] != "m1" || got[1] != "m10" {
		t.Errorf("the filter M1 finds %q; want m1 and m10..m19", got)
	}
	if bad := get(t, l, "/?show=bad&sort=loss", "").Body.String(); !strings.Contains(bad, "19 of 41 participants") {
		t.Errorf("the bad connections: %s", regexp.MustCompile(`<p class="found"[^<]*`).FindString(bad))
	}
}

// TestPageStreamSendsWhatChanged: the page's event stream starts with the
// parts that differ from those the page was rendered with, then sends a
// part again only when it changed, and a large one at most every 3 s;
// the JSON stream likewise skips a status in which only the time moved,
// and sends a large one at most every 3 s.
func TestPageStreamSendsWhatChanged(t *testing.T) {
	var log bytes.Buffer
	l, fake := newListener(t, "s3cret", &log)
	fake.show(hall(5))
	m := l.model(parseView(httptest.NewRequest("GET", "/", nil)))
	seen := map[string]uint64{}
	for _, p := range pageParts {
		seen[p] = hashOf(renderPart(p, m))
	}
	next := l.pageEvents(m.V, parseSeen(seenValue(seen)), time.Now)
	first := string(next())
	// The summary shows the time to the second, which may have moved.
	if strings.Contains(first, "event: channels") || strings.Contains(first, "event: charts") {
		t.Errorf("the first events repeat what the page has:\n%s", first)
	}
	users := hall(5)
	users[0].Users[0].Talking = true
	fake.show(users)
	if got := string(next()); !strings.Contains(got, "event: channels\ndata: ") {
		t.Errorf("after a change the stream sends no channels:\n%s", got)
	}
	if got := string(next()); strings.Contains(got, "event: channels") {
		t.Errorf("the stream sends the channels again unchanged:\n%s", got)
	}

	// A hall of 1000, open, changes every second but is sent every 3 s.
	big := hall(1000)
	fake.show(big)
	clock := time.Now()
	next = l.pageEvents(parseView(httptest.NewRequest("GET", "/?t=7", nil)), map[string]uint64{}, func() time.Time { return clock })
	for s := 0; s <= 6; s++ {
		big[0].Users[s].Talking = !big[0].Users[s].Talking
		fake.show(big)
		got := next()
		if sent := bytes.Contains(got, []byte("event: channels")); sent != (s%3 == 0) {
			t.Errorf("at %d s the open hall of 1000 was sent: %v, want every 3 s", s, sent)
		}
		clock = clock.Add(time.Second)
	}

	js := l.jsonEvents(time.Now)
	if got := js(); !bytes.HasPrefix(got, []byte("data: {")) {
		t.Errorf("the JSON stream starts with %q", got)
	}
	if got := js(); got != nil {
		t.Errorf("the JSON stream sends an unchanged status again: %q", got)
	}
	fake.show(hall(6))
	if got := js(); !bytes.Contains(got, []byte(`"name":"m6"`)) {
		t.Errorf("the JSON stream misses a change: %q", got)
	}
	// The status of 1000, changing every second, goes every 3 s.
	clock = time.Now()
	js = l.jsonEvents(func() time.Time { return clock })
	for s := 0; s <= 6; s++ {
		big[0].Users[s].Talking = !big[0].Users[s].Talking
		fake.show(big)
		if sent := js() != nil; sent != (s%3 == 0) {
			t.Errorf("at %d s the JSON status of 1000 was sent: %v, want every 3 s", s, sent)
		}
		clock = clock.Add(time.Second)
	}
}

// TestTokenRedirectKeepsTheView: presenting the token sends the browser
// on to the same view, without the token in the address.
func TestTokenRedirectKeepsTheView(t *testing.T) {
	var log bytes.Buffer
	l, _ := newListener(t, "s3cret", &log)
	req := httptest.NewRequest("GET", "http://127.0.0.1/?token=s3cret&lang=de&show=bad", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	l.handler.ServeHTTP(rec, req)
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/?lang=de&show=bad" {
		t.Errorf("HTTP %d to %q", rec.Code, loc)
	}
	req = httptest.NewRequest("GET", "http://127.0.0.1/?lang=de", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec = httptest.NewRecorder()
	l.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Admin-Token") {
		t.Errorf("without the token, in German: HTTP %d %s", rec.Code, rec.Body)
	}
}
