package admin

// Who may use the admin API (/api/v1) and for what. A request presents a
// token as "Authorization: Bearer TOKEN": the admin token (admin_token,
// or the generated one) is named "admin" and may do everything; the
// [[admin_token]] tables of the configuration name further tokens, each
// with a scope. The file holds their hashes, so the presented token is
// hashed and compared with each, in constant time. Removing a table
// revokes its token at the next reload.

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/plenum-voice/plenum/conf"
)

// scope is what a token may do; each includes the ones below it.
type scope int

const (
	scopeRead     scope = iota // look
	scopeModerate              // also act on users: mute, move, kick, ban, message
	scopeAdmin                 // everything: channels, ACLs, registrations, configuration
)

func (s scope) String() string { return conf.APIScopes[s] }

func parseScope(name string) (scope, bool) {
	for i, n := range conf.APIScopes {
		if n == name {
			return scope(i), true
		}
	}
	return 0, false
}

// apiCaller is who made a request: the token's name and scope.
type apiCaller struct {
	name  string
	scope scope
}

// adminTokenName is how the log names the admin token.
const adminTokenName = "admin"

// caller finds the token r presents; ok is false for none or an unknown
// one. Every configured token is compared, so the time taken does not
// tell which one matched.
func (l *Listener) caller(r *http.Request) (apiCaller, bool) {
	kind, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(kind, "Bearer") || tok == "" {
		return apiCaller{}, false
	}
	found, who := false, apiCaller{}
	if tokenEqual(tok, l.token()) {
		found, who = true, apiCaller{adminTokenName, scopeAdmin}
	}
	if l.cfg.Tokens == nil {
		return who, found
	}
	hash := []byte(conf.HashAPIToken(tok))
	for _, t := range l.cfg.Tokens() {
		match := subtle.ConstantTimeCompare(hash, []byte(strings.ToLower(t.Hash))) == 1
		if sc, valid := parseScope(t.Scope); match && valid && !found {
			found, who = true, apiCaller{t.Name, sc}
		}
	}
	return who, found
}
