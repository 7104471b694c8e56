package server

// The status page and the admin API on the admin listener:
//
//	GET  /              the status page: server-rendered HTML that updates
//	                    itself from /api/events (no build step, no assets)
//	GET  /api/status    the Status as JSON
//	GET  /api/events    server-sent events: the Status twice a second
//	POST /api/floor     a chair's action on a hall; needs admin_token

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// statusEvery is how often /api/events sends the status.
const statusEvery = 500 * time.Millisecond

// maxStatusStreams bounds the open /api/events streams: each takes the
// server's lock twice a second to build the status.
const maxStatusStreams = 16

func (s *Server) routeStatus(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.serveStatusPage)
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /api/events", s.serveEvents)
	mux.HandleFunc("POST /api/floor", s.serveFloorAction)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// serveEvents streams the status until the client goes or the server
// stops.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case s.statusStreams <- struct{}{}:
		defer func() { <-s.statusStreams }()
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
		data, err := json.Marshal(s.Status())
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
		case <-s.closing:
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

func (s *Server) serveFloorAction(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this needs the server's admin_token as Authorization: Bearer TOKEN"})
		return
	}
	var req floorRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	msg, err := s.FloorAction(req.Channel, req.Action, req.Arg)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": msg})
}

// authorized checks the bearer token; with no admin_token set, nothing is.
func (s *Server) authorized(r *http.Request) bool {
	want := s.cfg().AdminToken
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return want != "" && ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// FloorAction carries out a chair's action on the hall at path, as the
// admin API does.
func (s *Server) FloorAction(path, action, arg string) (string, error) {
	s.mu.Lock()
	defer s.unlock()
	hall := s.livePathsLocked()[path]
	if hall == nil || hall.floor == nil {
		return "", fmt.Errorf("no floor-controlled hall %q", path)
	}
	if action == "" {
		return "", errors.New("no action")
	}
	return s.floorActionLocked(hall, action, arg)
}

func (s *Server) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	st := s.Status()
	initial, _ := json.Marshal(st)
	statusPage.Execute(w, struct {
		Name    string
		Status  Status
		Initial template.JS
	}{s.cfg().Name, st, template.JS(initial)})
}

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
