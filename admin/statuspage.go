package admin

// The status page and the admin API on the admin listener, all for the
// operator only (auth.go):
//
//	GET  /              the status page: server-rendered HTML that updates
//	                    itself from /api/events (no build step, no assets);
//	                    /?token=TOKEN gives the browser the cookie
//	GET  /api/status    the Status as JSON
//	GET  /api/events    server-sent events: the Status twice a second
//	POST /api/floor     a chair's action on a hall; the bearer token only

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

// statusEvery is how often /api/events sends the status.
const statusEvery = 500 * time.Millisecond

// maxStatusStreams bounds the open /api/events streams: each takes the
// server's lock twice a second to build the status.
const maxStatusStreams = 16

func (l *Listener) routeStatus(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", l.serveStatusPage)
	mux.Handle("GET /api/status", l.operatorOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.cfg.Server.Status())
	})))
	// Only the operator's streams take one of the few slots.
	mux.Handle("GET /api/events", l.operatorOnly(http.HandlerFunc(l.serveEvents)))
	mux.HandleFunc("POST /api/floor", l.serveFloorAction)
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
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		data, err := json.Marshal(l.cfg.Server.Status())
		if err != nil {
			return
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) // the server's WriteTimeout would end the stream
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
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
	if r.URL.Query().Has("token") {
		if !tokenEqual(r.URL.Query().Get("token"), l.token()) {
			askForToken(w, "That is not the admin token.")
			return
		}
		l.setOperatorCookie(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !l.isOperator(r) {
		askForToken(w, "")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	st := l.cfg.Server.Status()
	initial, _ := json.Marshal(st)
	statusPage.Execute(w, struct {
		Name    string
		Status  Status
		Initial template.JS
	}{l.cfg.Settings().Name, st, template.JS(initial)})
}

// askForToken answers a browser without the cookie: 401 and a form that
// presents the token as /?token=.
func askForToken(w http.ResponseWriter, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("WWW-Authenticate", `Bearer realm="plenum admin"`)
	w.WriteHeader(http.StatusUnauthorized)
	tokenPage.Execute(w, problem)
}

var tokenPage = template.Must(template.New("token").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plenum status</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:40em}</style></head><body>
<h1>Plenum status</h1>
{{if .}}<p><b>{{.}}</b></p>{{end}}
<p>The status page is for the server's operator. Open it once with the admin token:
it is <code>admin_token</code> in the server's configuration or, when that is not set,
in the file <code>admin_token</code> in the server's data directory.</p>
<form method="get" action="/"><input type="password" name="token" placeholder="admin token" autofocus> <button>Open</button></form>
</body></html>
`))

// statusPage renders the status once on the server (so the page shows it
// without JavaScript) and then re-renders it from every event.
var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}} · Plenum status</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse} td,th{padding:.15em .8em .15em 0;text-align:left}
th{font-weight:600;color:#555} .talking{font-weight:700;color:#0a7d2c}
.talking::before{content:"▶ "} .silenced{color:#999} .rec{color:#c00;font-weight:700}
.floor{background:#f4f4f8;padding:.4em .6em;border-radius:4px;display:inline-block}
.minutes{margin:.4em 0 .6em;font-size:.93em} .minutes caption{text-align:left;color:#555}
</style></head><body>
<h1>{{.Name}}</h1>
<div id="status">{{range .Status.Channels}}
<h2>{{.Path}}{{if .Recording}} <span class="rec">● recording</span>{{end}}{{if .Mixing}} (mixed){{end}}</h2>
{{with .Floor}}<div class="floor">Floor: {{if .Holder}}<b>{{.Holder}}</b>{{if .LeftSec}} ({{printf "%.0f" .LeftSec}} s left){{end}}{{else}}nobody{{end}}{{if .Queue}} · Queue: {{range $i, $n := .Queue}}{{if $i}}, {{end}}{{$n}}{{end}}{{end}}{{if .MuteAll}} · everyone muted{{end}}</div>
{{if .MinutesKept}}<table class="minutes"><caption>Minutes: turns on the floor</caption><tr><th>from</th><th>speaker</th><th>length</th></tr>
{{range .Minutes}}<tr><td>{{.Start.Format "15:04:05"}}</td><td>{{.Name}}</td><td>{{printf "%.0f" .Seconds}} s</td></tr>
{{end}}</table>{{end}}{{end}}
<table><tr><th>name</th><th>voice</th><th>ping</th><th>loss</th><th>floor time</th></tr>
{{range .Users}}<tr><td class="{{if .Talking}}talking{{else if .Silenced}}silenced{{end}}">{{.Name}}</td><td>{{.Transport}}</td><td>{{printf "%.0f" .PingMs}} ms</td><td>{{printf "%.1f" .LossPct}} %</td><td>{{printf "%.0f" .FloorSec}} s</td></tr>
{{end}}</table>{{end}}
</div>
<p id="updated"></p>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
function render(st) {
  let h = "";
  for (const c of st.channels || []) {
    h += "<h2>" + esc(c.path) + (c.recording ? ' <span class="rec">● recording</span>' : "") + (c.mixing ? " (mixed)" : "") + "</h2>";
    if (c.floor) {
      const f = c.floor;
      h += '<div class="floor">Floor: ' + (f.holder ? "<b>" + esc(f.holder) + "</b>" + (f.left_s ? " (" + Math.round(f.left_s) + " s left)" : "") : "nobody") +
        (f.queue.length ? " · Queue: " + f.queue.map(esc).join(", ") : "") + (f.mute_all ? " · everyone muted" : "") + "</div>";
      if (f.minutes_kept) {
        h += '<table class="minutes"><caption>Minutes: turns on the floor</caption><tr><th>from</th><th>speaker</th><th>length</th></tr>';
        for (const m of f.minutes || []) {
          h += "<tr><td>" + new Date(m.start).toLocaleTimeString() + "</td><td>" + esc(m.name) + "</td><td>" + Math.round(m.seconds) + " s</td></tr>";
        }
        h += "</table>";
      }
    }
    h += "<table><tr><th>name</th><th>voice</th><th>ping</th><th>loss</th><th>floor time</th></tr>";
    for (const u of c.users || []) {
      const cls = u.talking ? "talking" : (u.silenced ? "silenced" : "");
      h += '<tr><td class="' + cls + '">' + esc(u.name) + "</td><td>" + u.transport + "</td><td>" + Math.round(u.ping_ms) +
        " ms</td><td>" + (u.loss_pct || 0).toFixed(1) + " %</td><td>" + Math.round(u.floor_s || 0) + " s</td></tr>";
    }
    h += "</table>";
  }
  document.getElementById("status").innerHTML = h;
  document.getElementById("updated").textContent = "Updated " + new Date(st.time).toLocaleTimeString();
}
render({{.Initial}});
new EventSource("/api/events").onmessage = e => render(JSON.parse(e.data));
</script>
</body></html>
`))
