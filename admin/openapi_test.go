package admin

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/prometheus/client_golang/prometheus"
)

// sampleAPI answers the API's reads with a little of everything, so that
// the answers can be checked against the document; changes do nothing.
type sampleAPI struct{ API }

func (sampleAPI) Users() []APIUser {
	return []APIUser{{Session: 3, Name: "alice", UserID: new(int64(7)), Channel: 1, ChannelPath: "Plenary", Mute: true}, {Session: 4, Name: "bob"}}
}
func (sampleAPI) Channels() []APIChannel {
	return []APIChannel{{ID: 0, Name: "Root", Links: []uint32{}}, {ID: 1, Name: "Plenary", Path: "Plenary", Parent: new(uint32(0)), Links: []uint32{2}, Users: 1}}
}
func (sampleAPI) ChannelACL(uint32) (APIACL, error) {
	return APIACL{InheritACL: new(true), Groups: map[string]*APIGroup{"chair": {Add: []string{"alice"}}},
		Entries:   []APIACLEntry{{Group: "all", ApplyHere: new(true), ApplySubs: new(false), Deny: []string{"Speak"}}},
		Inherited: []APIACLEntry{{Group: "admin", Allow: []string{"Write"}, Channel: new(uint32(0))}}}, nil
}
func (sampleAPI) Registrations() ([]Registration, error) {
	return []Registration{{ID: 7, Name: "alice", LastSeen: "2026-12-06T01:02:03"}}, nil
}
func (sampleAPI) Bans() ([]APIBan, error) {
	return []APIBan{{Address: "2001:db8::1", Bits: 128, Reason: "spam", Start: time.Now()}}, nil
}
func (sampleAPI) ConfigFile() ([]byte, error) { return []byte("[server]\n"), nil }
func (sampleAPI) ValidateConfig([]byte) []ConfigProblem {
	return []ConfigProblem{{Line: 2, Key: "server.x", Msg: "unknown key"}}
}

// apiListener is a listener on sampleAPI with the admin token "s3cret".
func apiListener(t *testing.T) *Listener {
	t.Helper()
	sc := conf.Default().Server
	sc.AdminListen, sc.AdminToken, sc.DataDir = "127.0.0.1:0", "s3cret", t.TempDir()
	l, err := New(Config{Server: &fakeServer{}, Settings: func() *conf.Server { return &sc }, API: sampleAPI{},
		Metrics: newTestGauge(), Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func served(t *testing.T, h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr, r.Host = "127.0.0.1:40000", "localhost"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// document is the OpenAPI document as a client reads it.
func document(t *testing.T, l *Listener) map[string]any {
	t.Helper()
	w := served(t, l.handler, "GET", "/api/v1/openapi.json", "", "")
	if w.Code != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d", w.Code)
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIMatchesTheRoutes: the document served lists exactly the
// routes the listener registered under /api/v1, method for method; a
// method the document does not list for a path is refused by the router
// (405); every route but the document's own needs a token.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	l := apiListener(t)
	doc := document(t, l)
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi: %v", doc["openapi"])
	}
	var documented []string
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			_, hasScope := op.(map[string]any)[ScopeKey]
			if open := path == "/api/v1/openapi.json"; hasScope == open {
				t.Errorf("%s %s: %s present: %v", method, path, ScopeKey, hasScope)
			}
		}
	}
	registered := slices.Clone(l.APIPatterns())
	sort.Strings(documented)
	sort.Strings(registered)
	if !slices.Equal(documented, registered) {
		t.Fatalf("documented:\n%s\nregistered:\n%s", strings.Join(documented, "\n"), strings.Join(registered, "\n"))
	}
	for path, item := range doc["paths"].(map[string]any) {
		concrete := strings.NewReplacer("{session}", "3", "{id}", "1").Replace(path)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if _, ok := item.(map[string]any)[strings.ToLower(m)]; ok {
				continue
			}
			if w := served(t, l.handler, m, concrete, "s3cret", "{}"); w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s, not in the document: %d, want 405", m, concrete, w.Code)
			}
		}
	}
	if w := served(t, l.handler, "GET", "/api/v1/nothing", "s3cret", ""); w.Code != 404 {
		t.Errorf("a path not in the document: %d", w.Code)
	}
}

// TestOpenAPIExamplesAndAnswersFitTheSchemas: each route's example body
// fits its schema in the document and is taken by the handler's strict
// decoder; the answers of the reads fit their schemas; a body with a
// field the schema does not have is refused by both.
func TestOpenAPIExamplesAndAnswersFitTheSchemas(t *testing.T) {
	l := apiListener(t)
	doc := document(t, l)
	v := &validator{doc: doc}
	for _, rt := range apiRoutes {
		op := doc["paths"].(map[string]any)[rt.path].(map[string]any)[strings.ToLower(rt.method)].(map[string]any)
		if rt.request != nil {
			media := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)
			if err := v.check(media["schema"].(map[string]any), media["example"], "example"); err != nil {
				t.Errorf("%s %s: the example does not fit the schema: %v", rt.method, rt.path, err)
			}
			if _, err := DecodeJSON([]byte(rt.example), rt.request); err != nil {
				t.Errorf("%s %s: the handler refuses the example: %v", rt.method, rt.path, err)
			}
			var extra map[string]any
			json.Unmarshal([]byte(rt.example), &extra)
			if extra != nil {
				extra["no_such_field"] = 1
				data, _ := json.Marshal(extra)
				if _, err := DecodeJSON(data, rt.request); err == nil {
					t.Errorf("%s %s: the decoder takes an unknown field", rt.method, rt.path)
				}
				if v.check(media["schema"].(map[string]any), extra, "body") == nil {
					t.Errorf("%s %s: the schema takes an unknown field", rt.method, rt.path)
				}
			}
		}
		if rt.method != "GET" || rt.stream || rt.responseText != "" {
			continue
		}
		path := strings.NewReplacer("{session}", "3", "{id}", "1").Replace(rt.path)
		w := served(t, l.handler, "GET", path, "s3cret", "")
		if w.Code != 200 {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
			continue
		}
		var answer any
		json.Unmarshal(w.Body.Bytes(), &answer)
		schema := op["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
		if err := v.check(schema, answer, "answer"); err != nil {
			t.Errorf("GET %s: the answer does not fit the schema: %v\n%s", path, err, w.Body)
		}
	}
}

// validator checks JSON values against the document's schemas: the
// part of JSON Schema the document uses.
type validator struct{ doc map[string]any }

func (v *validator) check(s map[string]any, x any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		def, ok := v.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: no schema %s", at, ref)
		}
		return v.check(def, x, at)
	}
	switch s["type"] {
	case nil:
		return nil
	case "object":
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", at, x)
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: %s missing", at, r)
			}
		}
		for k, val := range m {
			ps, known := props[k].(map[string]any)
			if !known {
				if extra, ok := s["additionalProperties"].(map[string]any); ok {
					ps = extra
				} else if s["additionalProperties"] == false {
					return fmt.Errorf("%s: unknown field %q", at, k)
				} else {
					continue
				}
			}
			if err := v.check(ps, val, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		list, ok := x.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", at, x)
		}
		for i, e := range list {
			if err := v.check(s["items"].(map[string]any), e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := x.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %T", at, x)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return fmt.Errorf("%s: %v", at, err)
			}
		}
	case "boolean":
		if _, ok := x.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %T", at, x)
		}
	case "integer":
		n, ok := x.(float64)
		if !ok || n != math.Trunc(n) {
			return fmt.Errorf("%s: want an integer, got %v", at, x)
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			return fmt.Errorf("%s: %v below %v", at, n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			return fmt.Errorf("%s: %v above %v", at, n, hi)
		}
	default:
		return fmt.Errorf("%s: the validator does not know type %v", at, s["type"])
	}
	return nil
}

func asList(x any) []any {
	l, _ := x.([]any)
	return l
}

// TestAPIScopeOrder: a token's scope reaches a route's when it is the
// same or above; an unknown scope in a table matches nothing.
func TestAPIScopeOrder(t *testing.T) {
	sc := conf.Default().Server
	sc.AdminToken, sc.DataDir = "s3cret", t.TempDir()
	tokens := []conf.APIToken{
		{Name: "r", Scope: "read", Hash: conf.HashAPIToken("tr")},
		{Name: "m", Scope: "moderate", Hash: conf.HashAPIToken("tm")},
		{Name: "x", Scope: "root", Hash: conf.HashAPIToken("tx")},
	}
	l, err := New(Config{Server: &fakeServer{}, Settings: func() *conf.Server { return &sc }, API: sampleAPI{},
		Tokens: func() []conf.APIToken { return tokens }, Metrics: newTestGauge(), Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		code  int
	}{{"tr", 403}, {"tm", 400}, {"s3cret", 400}, {"tx", 401}, {"", 401}} {
		if w := served(t, l.handler, "PATCH", "/api/v1/users/3", c.token, `{"bad": 1}`); w.Code != c.code {
			t.Errorf("token %q: %d %s, want %d", c.token, w.Code, w.Body, c.code)
		}
	}
	// Revoked: gone from the tables, refused at once.
	tokens = tokens[1:]
	if w := served(t, l.handler, "GET", "/api/v1/users", "tr", ""); w.Code != 401 {
		t.Errorf("a revoked token: %d", w.Code)
	}
}

// FuzzAPIDecode: no body crashes the decoder of any route, and what it
// takes encodes again.
func FuzzAPIDecode(f *testing.F) {
	for _, rt := range apiRoutes {
		if rt.request != nil {
			f.Add(uint8(0), []byte(rt.example))
		}
	}
	f.Add(uint8(3), []byte(`{"groups": {"x": null}, "entries": [{}]}`))
	f.Add(uint8(1), []byte(`{"mute": true} {"mute": false}`))
	var bodies []any
	for _, rt := range apiRoutes {
		if rt.request != nil {
			bodies = append(bodies, rt.request)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		like := bodies[int(which)%len(bodies)]
		v, err := DecodeJSON(data, like)
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", data, err)
		}
	})
}

func newTestGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: "plenum_users", Help: "Authenticated users connected."})
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
