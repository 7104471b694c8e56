package oidcauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"sync"
	"time"

	"github.com/plenum-voice/plenum/auth"
)

// codePrefix starts every code and browser token, so that a password
// that looks like one but is not valid is refused with a clear reason
// rather than passed on as someone's password.
const codePrefix = "sso-"

// maxGrants bounds the grants kept; beyond it the oldest go first.
const maxGrants = 50000

// DefaultReconnectTTL is how long a used code stays good for reconnects
// of the client that used it (Mumble reconnects with the same password
// after every network hiccup; the page reconnects its WebSocket).
const DefaultReconnectTTL = 12 * time.Hour

// Identity is who the provider said signed in.
type Identity struct {
	Subject     string // the provider's "sub"
	Name        string // the login name for the mumble:// link
	DisplayName string
	Groups      []string // Plenum groups, already mapped
}

// Grants are the one-time codes and browser tokens the sign-in hands
// out, in memory only, each standing for an Identity. A grant is first
// good for CodeTTL; its first use binds it to that client's certificate
// hash and connection kind, and from then on it is good for
// ReconnectTTL, for that client only. Grants are found by a SHA-256 of
// the code, so memory holds no code.
//
// Grants is the auth.Authenticator the Mumble side asks: a password that
// is a valid grant accepts, one that looks like a code but is not
// refuses, anything else is unknown.
type Grants struct {
	CodeTTL      time.Duration
	ReconnectTTL time.Duration
	Now          func() time.Time // nil means time.Now; tests replace it

	mu     sync.Mutex
	grants map[[32]byte]*grant
}

type grant struct {
	id       Identity
	issued   time.Time
	expires  time.Time
	used     bool
	certHash string
	kind     auth.Kind
}

// NewGrants returns an empty store whose codes wait codeTTL for their
// first use.
func NewGrants(codeTTL time.Duration) *Grants {
	return &Grants{CodeTTL: codeTTL, ReconnectTTL: DefaultReconnectTTL, grants: map[[32]byte]*grant{}}
}

func (g *Grants) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Issue makes a new code for id.
func (g *Grants) Issue(id Identity) string {
	var b [20]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	code := codePrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.grants) >= maxGrants {
		g.dropLocked(now)
	}
	g.grants[sha256.Sum256([]byte(code))] = &grant{id: id, issued: now, expires: now.Add(g.CodeTTL)}
	return code
}

// dropLocked drops expired grants and, if that is not enough, the oldest
// half.
func (g *Grants) dropLocked(now time.Time) {
	var oldest []time.Time
	for k, v := range g.grants {
		if now.After(v.expires) {
			delete(g.grants, k)
		} else {
			oldest = append(oldest, v.issued)
		}
	}
	if len(g.grants) < maxGrants {
		return
	}
	cut := now
	if len(oldest) > 0 {
		var sum time.Duration
		for _, t := range oldest {
			sum += now.Sub(t)
		}
		cut = now.Add(-sum / time.Duration(len(oldest)))
	}
	for k, v := range g.grants {
		if v.issued.Before(cut) {
			delete(g.grants, k)
		}
	}
}

// Refusals a client reads.
const (
	refusedExpired = "This sign-in code has expired: sign in again on the web page"
	refusedUsed    = "This sign-in code was already used by another client: sign in again on the web page"
)

// Authenticate implements auth.Authenticator for codes given as the
// password.
func (g *Grants) Authenticate(_ context.Context, r auth.Request) (auth.Answer, error) {
	if !strings.HasPrefix(r.Password, codePrefix) {
		return auth.Answer{Verdict: auth.Unknown}, nil
	}
	key := sha256.Sum256([]byte(r.Password))
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	gr, ok := g.grants[key]
	switch {
	case !ok || now.After(gr.expires):
		delete(g.grants, key)
		return auth.Answer{Verdict: auth.Refuse, Reason: refusedExpired}, nil
	case gr.used && (gr.certHash != r.CertHash || gr.kind != r.Kind):
		return auth.Answer{Verdict: auth.Refuse, Reason: refusedUsed}, nil
	case !gr.used:
		gr.used, gr.certHash, gr.kind = true, r.CertHash, r.Kind
		gr.expires = now.Add(g.ReconnectTTL)
	}
	id := gr.id
	return auth.Answer{Verdict: auth.Accept, Subject: id.Subject, DisplayName: id.DisplayName, Groups: append([]string(nil), id.Groups...)}, nil
}

// Len is the number of grants held, for tests.
func (g *Grants) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.grants)
}
