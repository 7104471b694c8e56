package admin

// The status page and the admin API on the admin listener, all for the
// operator only (auth.go):
//
//	GET  /              the status page: server-rendered HTML (the view
//	                    in its query, view.go) that updates itself from
//	                    /api/events?view=page (no build step, no assets);
//	                    /?token=TOKEN gives the browser the cookie
//	GET  /api/status    the Status as JSON, with its summary
//	GET  /api/events    server-sent events: the Status as JSON once a
//	                    second when it changed (every 3 s when large);
//	                    with ?view=page and the page's query, the parts
//	                    of the page that changed
//	POST /api/floor     a chair's action on a hall; the bearer token only

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusEvery is how often /api/events looks at the status. A stream
// sends only what changed since, so a quiet hall costs a few hundred
// bytes a second however many are in it.
const statusEvery = time.Second

// maxStatusStreams bounds the open /api/events streams: each takes the
// server's lock once a second to build the status.
const maxStatusStreams = 16

func (l *Listener) routeStatus(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", l.serveStatusPage)
	mux.Handle("GET /api/status", l.operatorOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.status())
	})))
	// Only the operator's streams take one of the few slots.
	mux.Handle("GET /api/events", l.operatorOnly(http.HandlerFunc(l.serveEvents)))
	mux.HandleFunc("POST /api/floor", l.serveFloorAction)
}

// status is the server's status with its summary.
func (l *Listener) status() Status {
	st := l.cfg.Server.Status()
	var latest *Sample
	if s, ok := l.cfg.Server.History().Latest(); ok {
		latest = &s
	}
	summarize(&st, latest)
	return st
}

// model is the page's model for the view.
func (l *Listener) model(v view) *pageModel {
	return arrange(l.cfg.Settings().Name, l.status(), v, l.cfg.Server.History())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// OpenStreams is the number of /api/events streams open.
func (l *Listener) OpenStreams() int { return len(l.streams) }

// serveEvents streams the status until the client goes or the server
// stops (Serve's context ends the request's).
func (l *Listener) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case l.streams <- struct{}{}:
		defer func() { <-l.streams }()
	default:
		http.Error(w, "too many status streams open", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	next := l.jsonEvents(time.Now)
	if r.URL.Query().Get("view") == "page" {
		next = l.pageEvents(parseView(r), parseSeen(r.URL.Query().Get("seen")), time.Now)
	}
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		if events := next(); len(events) > 0 {
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) // the server's WriteTimeout would end the stream
			if _, err := w.Write(events); err != nil || rc.Flush() != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// jsonEvents returns the stream of the Status as JSON: the first time,
// and then whenever more than its time changed; a status over bigPart
// (hundreds of people, whose figures always change) at most every
// bigPartEvery, on the clock now.
func (l *Listener) jsonEvents(now func() time.Time) func() []byte {
	var last uint64
	var sent time.Time
	return func() []byte {
		st := l.status()
		at := st.Time
		st.Time = time.Time{}
		data, err := json.Marshal(st)
		if err != nil {
			return nil
		}
		h := hashOf(data)
		if h == last || len(data) > bigPart && now().Sub(sent) < bigPartEvery {
			return nil
		}
		last, sent = h, now()
		st.Time = at
		data, _ = json.Marshal(st)
		return fmt.Appendf(nil, "data: %s\n\n", data)
	}
}

// pageParts are the parts of the page the stream updates, by the id of
// their element and the template that renders them.
var pageParts = []string{"summary", "charts", "channels"}

// pageEvents returns the stream of the page's parts for v: each part as
// an event named after it, when it differs from what the page has (seen:
// the hashes of the parts the page was rendered with). A part over
// bigPart is sent at most every bigPartEvery, on the clock now.
func (l *Listener) pageEvents(v view, seen map[string]uint64, now func() time.Time) func() []byte {
	sent := map[string]time.Time{}
	return func() []byte {
		m := l.model(v)
		var out bytes.Buffer
		for _, part := range pageParts {
			html := renderPart(part, m)
			h := hashOf(html)
			if h == seen[part] || len(html) > bigPart && now().Sub(sent[part]) < bigPartEvery {
				continue
			}
			seen[part], sent[part] = h, now()
			writeEvent(&out, part, html)
		}
		return out.Bytes()
	}
}

// A channel open with hundreds of members changes with every talker and
// every ping: resending its 250 KB every second to each open page is
// waste, so a part that large, or a JSON status that large, is sent at
// most every 3 s. (The page's header, with the counts, still changes
// every second.)
const (
	bigPart      = 64 << 10
	bigPartEvery = 3 * time.Second
)

// writeEvent writes one server-sent event; each line of data is a data
// field, which the browser joins with newlines again.
func writeEvent(out *bytes.Buffer, name string, data []byte) {
	fmt.Fprintf(out, "event: %s\n", name)
	for line := range bytes.Lines(data) {
		out.WriteString("data: ")
		out.Write(bytes.TrimRight(line, "\r\n"))
		out.WriteByte('\n')
	}
	out.WriteByte('\n')
}

func renderPart(part string, m *pageModel) []byte {
	var b bytes.Buffer
	if err := pageTemplates[m.L].ExecuteTemplate(&b, part, m); err != nil {
		fmt.Fprintf(&b, "<p>%s</p>", err)
	}
	return b.Bytes()
}

func hashOf(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// seenValue and parseSeen carry the hashes of the parts a page was
// rendered with into its event stream, as part:hash,part:hash, so that
// the stream starts with what changed rather than the whole page again.
func seenValue(hashes map[string]uint64) string {
	var parts []string
	for _, p := range pageParts {
		parts = append(parts, p+":"+strconv.FormatUint(hashes[p], 36))
	}
	return strings.Join(parts, ",")
}

func parseSeen(s string) map[string]uint64 {
	seen := map[string]uint64{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, ":")
		if h, err := strconv.ParseUint(v, 36, 64); err == nil && len(seen) < len(pageParts) {
			seen[k] = h
		}
	}
	return seen
}

// floorRequest is the body of POST /api/floor.
type floorRequest struct {
	Channel string `json:"channel"` // the hall's path, e.g. "Plenary"
	Action  string `json:"action"`  // next, give, revoke, clear, extend, muteall, unmuteall
	Arg     string `json:"arg"`     // give: the name; extend: a duration such as "2m"
}

// serveFloorAction takes the token as a bearer token only, never the
// status page's cookie: another site's form cannot act for the operator's
// browser.
func (l *Listener) serveFloorAction(w http.ResponseWriter, r *http.Request) {
	if !l.hasBearer(r) {
		unauthorized(w)
		return
	}
	var req floorRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	msg, err := l.cfg.Server.FloorAction(req.Channel, req.Action, req.Arg)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": msg})
}

// serveStatusPage shows the page to the operator. A browser presents the
// token once as /?token=TOKEN and is sent on to / with the cookie, so the
// token leaves the address bar.
func (l *Listener) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	lang := chooseLang(r)
	if r.URL.Query().Has("token") {
		if !tokenEqual(r.URL.Query().Get("token"), l.token()) {
			askForToken(w, lang, lang.t("token wrong"))
			return
		}
		l.setOperatorCookie(w)
		q := r.URL.Query()
		q.Del("token")
		to := "/"
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	if !l.isOperator(r) {
		askForToken(w, lang, "")
		return
	}
	v := parseView(r)
	m := l.model(v)
	parts := map[string]template.HTML{}
	hashes := map[string]uint64{}
	for _, p := range pageParts {
		html := renderPart(p, m)
		parts[p], hashes[p] = template.HTML(html), hashOf(html)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang.code())
	w.Header().Set("Vary", "Accept-Language")
	pageTemplates[v.Lang].ExecuteTemplate(w, "page", struct {
		*pageModel
		Parts map[string]template.HTML
		Seen  string
	}{m, parts, seenValue(hashes)})
}

// askForToken answers a browser without the cookie: 401 and a form that
// presents the token as /?token=.
func askForToken(w http.ResponseWriter, l lang, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("WWW-Authenticate", `Bearer realm="plenum admin"`)
	w.WriteHeader(http.StatusUnauthorized)
	pageTemplates[l].ExecuteTemplate(w, "token", problem)
}
