package admin

// The admin API: /api/v1 on the admin listener, for scripts and tools
// doing what Murmur's admins do through its Ice interface. Every route
// is one entry of apiRoutes, which both registers it and describes it in
// the OpenAPI document (openapi.go); a test holds the two together.
//
// Requests carry a token (apiauth.go) whose scope must reach the route's.
// Bodies are JSON, decoded strictly (an unknown field is an error) and
// bounded; answers are JSON, errors {"error": "..."}. Every change is
// logged with the token's name, never with the client's address.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// maxAPIStreams bounds the open /api/v1/events streams.
const maxAPIStreams = 16

// maxAPIBody bounds a request body; a configuration file is the largest.
const maxAPIBody = 4 << 20

// apiRoute is one route of the API.
type apiRoute struct {
	method, path string // path as http.ServeMux and OpenAPI both write it, e.g. /api/v1/users/{session}
	scope        scope  // the least scope that may use it
	open         bool   // answered without a token (the OpenAPI document)
	summary      string
	request      any    // a value of the body's type (JSON), or nil
	requestText  string // the body's media type when it is text, e.g. application/toml
	example      string // an example body
	response     any    // a value of the answer's type
	responseText string // the answer's media type when it is not JSON
	created      bool   // answers 201
	stream       bool   // the event stream (serveAPIEvents) instead of handle
	handle       func(l *Listener, c apiCaller, r *http.Request, body any) (any, error)
}

// changes reports whether the route changes something, so that it is
// logged.
func (rt *apiRoute) changes() bool { return rt.method != http.MethodGet }

func (l *Listener) routeAPI(mux *http.ServeMux) {
	for i := range apiRoutes {
		rt := &apiRoutes[i]
		pattern := rt.method + " " + rt.path
		mux.Handle(pattern, l.apiHandler(rt))
		l.apiPatterns = append(l.apiPatterns, pattern)
	}
}

// APIPatterns are the patterns the listener registered for /api/v1, for
// the test that compares them with the OpenAPI document.
func (l *Listener) APIPatterns() []string { return l.apiPatterns }

// apiHandler checks the token and its scope, decodes the body, calls the
// route and writes its answer.
func (l *Listener) apiHandler(rt *apiRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c apiCaller
		if !rt.open {
			var ok bool
			if c, ok = l.caller(r); !ok {
				unauthorized(w)
				return
			}
			if c.scope < rt.scope {
				writeJSON(w, http.StatusForbidden, APIError{fmt.Sprintf("the token %q has scope %s; this needs %s", c.name, c.scope, rt.scope)})
				return
			}
		}
		if rt.stream {
			l.serveAPIEvents(w, r)
			return
		}
		body, err := decodeBody(rt, w, r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, APIError{err.Error()})
			return
		}
		out, err := rt.handle(l, c, r, body)
		code := http.StatusOK
		if rt.created {
			code = http.StatusCreated
		}
		if err != nil {
			code = errorCode(err)
		}
		if rt.changes() {
			l.logChange(c, rt, r, code, err)
		}
		switch {
		case err != nil:
			writeJSON(w, code, APIError{err.Error()})
		case out == nil: // the handler wrote the answer (a stream)
		default:
			if text, ok := out.([]byte); ok {
				w.Header().Set("Content-Type", rt.responseText)
				w.WriteHeader(code)
				w.Write(text)
				return
			}
			writeJSON(w, code, out)
		}
	})
}

// logChange logs a change made through the API under the token's name.
// The path has ids only; the client's address is not logged.
func (l *Listener) logChange(c apiCaller, rt *apiRoute, r *http.Request, code int, err error) {
	attrs := []any{"token", c.name, "scope", c.scope.String(), "method", rt.method, "path", r.URL.Path, "status", code}
	if err != nil {
		attrs = append(attrs, "err", err)
		l.cfg.Log.Warn("admin API change refused", attrs...)
		return
	}
	l.cfg.Log.Info("admin API change", attrs...)
}

// errorCode is the HTTP code for an error of the API.
func errorCode(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrRefused):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// decodeBody reads the body a route takes: JSON into a new value of its
// type, strictly, or text as []byte.
func decodeBody(rt *apiRoute, w http.ResponseWriter, r *http.Request) (any, error) {
	if rt.request == nil && rt.requestText == "" {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if rt.requestText != "" {
		return data, nil
	}
	return DecodeJSON(data, rt.request)
}

// DecodeJSON decodes data into a new value of like's type: exactly one
// JSON value, no unknown field. It is what every JSON body goes
// through, and what the fuzz target exercises.
func DecodeJSON(data []byte, like any) (any, error) {
	v := newLike(like)
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("the body is not the JSON this takes: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON value")
	}
	return v, nil
}

// newLike returns a pointer to a new zero value of like's type.
func newLike(like any) any { return reflect.New(reflect.TypeOf(like)).Interface() }

// pathID reads the path value name as a uint32.
func pathID(r *http.Request, name string) (uint32, error) {
	n, err := strconv.ParseUint(r.PathValue(name), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s must be a number", ErrInvalid, name)
	}
	return uint32(n), nil
}

func done(err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return Done{OK: true}, nil
}

// WhoAmI is the answer of GET /api/v1/token: the token's name and scope.
type WhoAmI struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// apiRoutes is the API. Order is the document's.
var apiRoutes = []apiRoute{
	{method: "GET", path: "/api/v1/openapi.json", open: true, summary: "This API described in OpenAPI 3.", response: map[string]any{}},
	{method: "GET", path: "/api/v1/token", scope: scopeRead, summary: "The name and scope of the token used.", response: WhoAmI{},
		handle: func(_ *Listener, c apiCaller, _ *http.Request, _ any) (any, error) {
			return WhoAmI{c.name, c.scope.String()}, nil
		}},

	{method: "GET", path: "/api/v1/users", scope: scopeRead, summary: "The connected users and their state.", response: []APIUser{},
		handle: func(l *Listener, _ apiCaller, _ *http.Request, _ any) (any, error) { return l.cfg.API.Users(), nil }},
	{method: "PATCH", path: "/api/v1/users/{session}", scope: scopeModerate,
		summary: "Mute, deafen, suppress, make priority speaker or move a user (fields left out stay).",
		request: UserChange{}, example: `{"mute": true, "channel": 1}`, response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			s, err := pathID(r, "session")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.SetUser(c.name, s, *body.(*UserChange)))
		}},
	{method: "POST", path: "/api/v1/users/{session}/kick", scope: scopeModerate, summary: "Kick a user.",
		request: KickRequest{}, example: `{"reason": "please reconnect"}`, response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			return kick(l, c, r, body, false)
		}},
	{method: "POST", path: "/api/v1/users/{session}/ban", scope: scopeModerate,
		summary: "Ban a user's address (and, if registered, certificate) and kick them.",
		request: KickRequest{}, example: `{"reason": "spam"}`, response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			return kick(l, c, r, body, true)
		}},

	{method: "GET", path: "/api/v1/channels", scope: scopeRead, summary: "Every channel.", response: []APIChannel{},
		handle: func(l *Listener, _ apiCaller, _ *http.Request, _ any) (any, error) { return l.cfg.API.Channels(), nil }},
	{method: "POST", path: "/api/v1/channels", scope: scopeAdmin, summary: "Create a permanent channel.", created: true,
		request: ChannelCreate{}, example: `{"parent": 0, "name": "Press", "description": "For journalists"}`, response: APIChannel{},
		handle: func(l *Listener, c apiCaller, _ *http.Request, body any) (any, error) {
			ch, err := l.cfg.API.CreateChannel(c.name, *body.(*ChannelCreate))
			if err != nil {
				return nil, err
			}
			return ch, nil
		}},
	{method: "PATCH", path: "/api/v1/channels/{id}", scope: scopeAdmin,
		summary: "Rename, move, describe, reposition or link a channel (fields left out stay).",
		request: ChannelEdit{}, example: `{"name": "Press room", "links_add": [1]}`, response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.EditChannel(c.name, id, *body.(*ChannelEdit)))
		}},
	{method: "DELETE", path: "/api/v1/channels/{id}", scope: scopeAdmin, summary: "Remove a channel and its subchannels.", response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, _ any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.RemoveChannel(c.name, id))
		}},
	{method: "GET", path: "/api/v1/channels/{id}/acl", scope: scopeRead, summary: "A channel's groups and ACL entries, and those it inherits.", response: APIACL{},
		handle: func(l *Listener, _ apiCaller, r *http.Request, _ any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			a, err := l.cfg.API.ChannelACL(id)
			if err != nil {
				return nil, err
			}
			return a, nil
		}},
	{method: "PUT", path: "/api/v1/channels/{id}/acl", scope: scopeAdmin,
		summary: "Replace a channel's groups and ACL entries, as Mumble's ACL editor does; saved to the configuration file.",
		request: APIACL{}, example: `{"groups": {"speakers": {"add": ["alice"]}}, "entries": [{"group": "all", "deny": ["Speak"]}, {"group": "speakers", "allow": ["Speak"]}]}`,
		response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.SetChannelACL(c.name, id, *body.(*APIACL)))
		}},

	{method: "GET", path: "/api/v1/registrations", scope: scopeRead, summary: "The registered users (SuperUser left out).", response: []Registration{},
		handle: func(l *Listener, _ apiCaller, _ *http.Request, _ any) (any, error) { return l.cfg.API.Registrations() }},
	{method: "PATCH", path: "/api/v1/registrations/{id}", scope: scopeAdmin, summary: "Rename a registered user.",
		request: RenameRequest{}, example: `{"name": "alice2"}`, response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, body any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.RenameRegistration(c.name, id, body.(*RenameRequest).Name))
		}},
	{method: "DELETE", path: "/api/v1/registrations/{id}", scope: scopeAdmin, summary: "Delete a registration.", response: Done{},
		handle: func(l *Listener, c apiCaller, r *http.Request, _ any) (any, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return nil, err
			}
			return done(l.cfg.API.DeleteRegistration(c.name, id))
		}},

	{method: "GET", path: "/api/v1/bans", scope: scopeModerate, summary: "The bans.", response: BanList{},
		handle: func(l *Listener, _ apiCaller, _ *http.Request, _ any) (any, error) {
			bans, err := l.cfg.API.Bans()
			if err != nil {
				return nil, err
			}
			return BanList{Bans: bans}, nil
		}},
	{method: "POST", path: "/api/v1/bans", scope: scopeModerate, summary: "Add a ban.", created: true,
		request: APIBan{}, example: `{"address": "192.0.2.0", "bits": 24, "reason": "raid", "duration_s": 3600}`, response: Done{},
		handle: func(l *Listener, c apiCaller, _ *http.Request, body any) (any, error) {
			return done(l.cfg.API.AddBan(c.name, *body.(*APIBan)))
		}},
	{method: "PUT", path: "/api/v1/bans", scope: scopeModerate, summary: "Replace the bans, as Mumble's ban editor does.",
		request: BanList{}, example: `{"bans": [{"address": "2001:db8::1", "bits": 128, "reason": "kept"}]}`, response: Done{},
		handle: func(l *Listener, c apiCaller, _ *http.Request, body any) (any, error) {
			return done(l.cfg.API.SetBans(c.name, body.(*BanList).Bans))
		}},

	{method: "POST", path: "/api/v1/messages", scope: scopeModerate, summary: "Send a text message to users, channels or channel trees.",
		request: Message{}, example: `{"message": "The session resumes in 5 minutes.", "channels": [0]}`, response: Done{},
		handle: func(l *Listener, c apiCaller, _ *http.Request, body any) (any, error) {
			return done(l.cfg.API.SendMessage(c.name, *body.(*Message)))
		}},

	{method: "GET", path: "/api/v1/config", scope: scopeAdmin, summary: "The configuration file.", responseText: "application/toml",
		handle: func(l *Listener, _ apiCaller, _ *http.Request, _ any) (any, error) {
			data, err := l.cfg.API.ConfigFile()
			if err != nil {
				return nil, err
			}
			return data, nil
		}},
	{method: "POST", path: "/api/v1/config/validate", scope: scopeAdmin, summary: "Check a configuration file without applying it.",
		requestText: "application/toml", example: "[server]\nname = \"Plenary\"\n", response: ConfigCheck{},
		handle: func(l *Listener, _ apiCaller, _ *http.Request, body any) (any, error) {
			return configCheck(l.cfg.API.ValidateConfig(body.([]byte))), nil
		}},
	{method: "PUT", path: "/api/v1/config", scope: scopeAdmin,
		summary:     "Replace the configuration file and apply it live; an invalid file is refused with its problems and changes nothing.",
		requestText: "application/toml", example: "[server]\nname = \"Plenary\"\n", response: ConfigCheck{},
		handle: func(l *Listener, c apiCaller, _ *http.Request, body any) (any, error) {
			problems, err := l.cfg.API.ApplyConfig(c.name, body.([]byte))
			if err != nil {
				return nil, err
			}
			check := configCheck(problems)
			if !check.Valid {
				return nil, fmt.Errorf("%w: the configuration is not valid: %s", ErrInvalid, problemText(problems))
			}
			return check, nil
		}},

	{method: "GET", path: "/api/v1/events", scope: scopeRead,
		summary:  "Server-sent events: users connecting, leaving, changing state; channel changes; floor changes; text messages with admin_events_text.",
		response: Event{}, responseText: "text/event-stream", stream: true},
}

// The document describes apiRoutes, so its route is given its handler
// once they exist.
func init() {
	apiRoutes[0].handle = func(*Listener, apiCaller, *http.Request, any) (any, error) { return OpenAPI(), nil }
}

func kick(l *Listener, c apiCaller, r *http.Request, body any, ban bool) (any, error) {
	s, err := pathID(r, "session")
	if err != nil {
		return nil, err
	}
	return done(l.cfg.API.Kick(c.name, s, body.(*KickRequest).Reason, ban))
}

func configCheck(problems []ConfigProblem) ConfigCheck {
	if problems == nil {
		problems = []ConfigProblem{}
	}
	return ConfigCheck{Valid: len(problems) == 0, Problems: problems}
}

func problemText(problems []ConfigProblem) string {
	var b strings.Builder
	for i, p := range problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// serveAPIEvents streams events until the client goes, the server
// stops or the stream falls too far behind (the server then ends it).
// A comment line every 15 s keeps proxies from closing a quiet stream.
func (l *Listener) serveAPIEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case l.apiStreams <- struct{}{}:
		defer func() { <-l.apiStreams }()
	default:
		writeJSON(w, http.StatusServiceUnavailable, APIError{"too many event streams open"})
		return
	}
	events, stop := l.cfg.API.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := w.Write(b)
		return err == nil && rc.Flush() == nil
	}
	if !write([]byte(": plenum events\n\n")) {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case e, ok := <-events:
			if !ok {
				write([]byte("event: overflow\ndata: {}\n\n"))
				return
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue
			}
			if !write(fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)) {
				return
			}
		}
	}
}
