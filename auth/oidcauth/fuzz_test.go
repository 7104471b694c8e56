package oidcauth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/auth"
)

// FuzzClaims: whatever claims a verified ID token carries, the identity
// read from them has a login name the default username pattern accepts
// and only usable groups.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(`{"preferred_username":"ada","name":"Ada Lovelace","groups":["/delegates","board"]}`))
	f.Add([]byte(`{"email":"bo@example.org","groups":"board"}`))
	f.Add([]byte(`{"preferred_username":["x"],"name":7,"groups":{"a":1}}`))
	h, err := NewHandler(Config{Issuer: "https://sso.example.org", ClientID: "c", RedirectURL: "https://p.example.org" + CallbackPath,
		Groups: map[string]string{"/delegates": "delegates", "board": "presidium"}}, NewGrants(time.Minute))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		id := h.identityOf("sub", claims)
		if id.Name == "" || notInName.MatchString(id.Name) || len(id.Name) > 64 {
			t.Errorf("login name %q", id.Name)
		}
		for _, g := range id.Groups {
			if !auth.ValidGroupName(g) {
				t.Errorf("group %q", g)
			}
		}
	})
}
