package admin

// The OpenAPI 3 document of /api/v1, made from apiRoutes and the Go types
// of the bodies, so that it cannot describe a route the listener does not
// register or a field the decoder does not take. A test checks it
// against the listener's behaviour.

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"
)

// OpenAPI returns the document as a JSON-ready value.
func OpenAPI() map[string]any {
	openAPIOnce.Do(func() { openAPIDoc = buildOpenAPI() })
	return openAPIDoc
}

var (
	openAPIOnce sync.Once
	openAPIDoc  map[string]any
)

// ScopeKey is the extension that names an operation's least scope.
const ScopeKey = "x-plenum-scope"

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func buildOpenAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]any{}
	for i := range apiRoutes {
		rt := &apiRoutes[i]
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = g.operation(rt)
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Plenum admin API",
			"version":     "1",
			"description": "What admins do with Murmur's Ice interface, over HTTP and JSON on the admin listener. See docs/ADMIN-API.md.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{
				"token": map[string]any{"type": "http", "scheme": "bearer",
					"description": "admin_token (scope admin) or a token of an [[admin_token]] table; the scopes are read < moderate < admin"},
			},
		},
		"security": []any{map[string]any{"token": []any{}}},
	}
}

func (g *schemaGen) operation(rt *apiRoute) map[string]any {
	op := map[string]any{
		"summary":     rt.summary,
		"operationId": operationID(rt),
	}
	if rt.open {
		op["security"] = []any{}
	} else {
		op[ScopeKey] = rt.scope.String()
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"schema": map[string]any{"type": "integer", "minimum": 0, "maximum": 4294967295}})
	}
	if params != nil {
		op["parameters"] = params
	}
	switch {
	case rt.request != nil:
		media := map[string]any{"schema": g.schema(reflect.TypeOf(rt.request))}
		if rt.example != "" {
			media["example"] = rawJSON(rt.example)
		}
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": media}}
	case rt.requestText != "":
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			rt.requestText: map[string]any{"schema": map[string]any{"type": "string"}, "example": rt.example}}}
	}
	ok := map[string]any{"description": "done"}
	switch {
	case rt.stream:
		ok["content"] = map[string]any{rt.responseText: map[string]any{"schema": map[string]any{"type": "string",
			"description": "server-sent events; each event is named after its type and its data is an Event: " + refOf("Event")}}}
		g.schema(reflect.TypeOf(rt.response))
	case rt.responseText != "":
		ok["content"] = map[string]any{rt.responseText: map[string]any{"schema": map[string]any{"type": "string"}}}
	case rt.response != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.response))}}
	}
	code := "200"
	if rt.created {
		code = "201"
	}
	errResp := func(d string) map[string]any {
		return map[string]any{"description": d, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeFor[APIError]())}}}
	}
	responses := map[string]any{code: ok}
	if !rt.open {
		responses["401"] = errResp("no token, or an unknown one")
		responses["403"] = errResp("the token's scope is below " + rt.scope.String())
	}
	if rt.request != nil || rt.requestText != "" || len(params) > 0 {
		responses["400"] = errResp("the request is malformed")
	}
	if len(params) > 0 {
		responses["404"] = errResp("no such user, channel or registration")
	}
	if rt.changes() {
		responses["409"] = errResp("the server's rules refuse it (a name taken, a limit)")
	}
	op["responses"] = responses
	return op
}

// operationID is the method and the path's words, e.g. patchUsersSession.
func operationID(rt *apiRoute) string {
	id := strings.ToLower(rt.method)
	for _, part := range strings.Split(strings.TrimPrefix(rt.path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		part = strings.NewReplacer(".", "_").Replace(part)
		for _, w := range strings.Split(part, "_") {
			if w != "" {
				id += strings.ToUpper(w[:1]) + w[1:]
			}
		}
	}
	return id
}

// rawJSON decodes an example so that the document holds it as JSON.
func rawJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	return v
}

func refOf(name string) string { return "#/components/schemas/" + name }

// schemaGen makes JSON schemas (OpenAPI 3.0's dialect) of Go types: a
// named struct once, in the components, and referenced.
type schemaGen struct{ defs map[string]any }

var timeType = reflect.TypeFor[time.Time]()

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if t == nil {
		return map[string]any{}
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.schema(t.Elem())
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s := map[string]any{"type": "integer"}
		if t.Bits() == 32 {
			s["format"] = "int32"
		} else {
			s["format"] = "int64"
		}
		return s
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s := map[string]any{"type": "integer", "minimum": 0}
		if t.Bits() == 32 {
			s["maximum"] = 4294967295
		}
		return s
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := t.Name()
		if _, done := g.defs[name]; !done {
			g.defs[name] = map[string]any{} // a placeholder against recursion
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": refOf(name)}
	}
	panic("openapi: no schema for " + t.String())
}

// object is the schema of a struct: its JSON fields, those without
// omitempty or omitzero required, nothing else allowed (the decoder
// refuses unknown fields).
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			required = append(required, name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		s["required"] = required
	}
	return s
}
