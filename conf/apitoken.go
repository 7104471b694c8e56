package conf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// APIToken is one token of the admin API, an [[admin_token]] table. The
// file keeps the token's SHA-256, never the token: whoever reads the file
// (or a backup of it) cannot use the API. Tokens are 128 random bits, so
// one round of SHA-256 is as good as a slow hash here.
type APIToken struct {
	// Name says whose token it is; every change made with it is logged
	// under this name.
	Name string `toml:"name"`
	// Scope is what the token may do: "read" (look), "moderate" (also
	// act on users: mute, move, kick, ban, message) or "admin"
	// (everything, channels, ACLs and the configuration included).
	Scope string `toml:"scope"`
	// Hash is "sha256:" and the token's SHA-256 in hex (HashAPIToken).
	Hash string `toml:"hash"`
	Line int    `toml:"-"` // line of its table in the file (0 if unknown)
}

// The scopes of an API token, from least to most.
var APIScopes = []string{"read", "moderate", "admin"}

// apiHashPrefix marks the kind of hash, so that another may follow.
const apiHashPrefix = "sha256:"

// HashAPIToken is what [[admin_token]] hash holds for token.
func HashAPIToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return apiHashPrefix + hex.EncodeToString(sum[:])
}

// checkAPIToken says what is wrong with t, or "" if nothing is.
func checkAPIToken(t *APIToken) (key, problem string) {
	switch {
	case strings.TrimSpace(t.Name) == "":
		return "name", "must not be empty: changes made with the token are logged under its name"
	case !validScope(t.Scope):
		return "scope", fmt.Sprintf("must be one of %s (got %q)", strings.Join(APIScopes, ", "), t.Scope)
	}
	hexSum, ok := strings.CutPrefix(t.Hash, apiHashPrefix)
	if b, err := hex.DecodeString(hexSum); !ok || err != nil || len(b) != sha256.Size {
		return "hash", "want \"sha256:\" and 64 hex digits, as `plenum token create` prints (the file never holds the token itself)"
	}
	return "", ""
}

func validScope(s string) bool {
	for _, v := range APIScopes {
		if s == v {
			return true
		}
	}
	return false
}

// apiTokens checks the [[admin_token]] tables: each valid, names and
// hashes each used once.
func (v *validator) apiTokens() {
	names, hashes := map[string]bool{}, map[string]bool{}
	for i := range v.c.AdminTokens {
		t := &v.c.AdminTokens[i]
		add := func(key, msg string) {
			v.errs = append(v.errs, &Error{File: v.c.File, Line: t.Line, Key: fmt.Sprintf("admin_token[%d].%s", i, key), Msg: msg})
		}
		if key, problem := checkAPIToken(t); problem != "" {
			add(key, problem)
			continue
		}
		if names[t.Name] {
			add("name", fmt.Sprintf("%q names another token too", t.Name))
		}
		if hashes[strings.ToLower(t.Hash)] {
			add("hash", "the same token is listed twice")
		}
		names[t.Name], hashes[strings.ToLower(t.Hash)] = true, true
	}
}

// apiTokens writes the [[admin_token]] tables.
func (w *tomlWriter) apiTokens(tokens []APIToken) {
	for _, t := range tokens {
		w.printf("\n[[admin_token]]\n")
		w.key("", "name", tomlString(t.Name))
		w.key("", "scope", tomlString(t.Scope))
		w.key("", "hash", tomlString(t.Hash))
	}
}
