// Package auth is the seam between the server and an organisation's own
// accounts: one small interface, Authenticator, that takes what a client
// sends at login (name, password, certificate hash) and answers accept,
// refuse or "not mine", with a stable user id, a display name and groups.
// The providers live in packages of their own (auth/webhook, auth/ldapauth,
// auth/oidcauth); this package also holds what they share: the cache of
// positive answers (Cache) and the order in which several are asked
// (Chain).
//
// The contract is the one Murmur's Ice authenticator has: a name it does
// not know falls through to the server's own registrations (or is
// refused, as configured); the groups it returns are the session's
// temporary members of the root channel's groups, which the ACLs use. A
// provider that cannot be reached is an error, which the server turns into
// a refusal or a guest, as configured.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the kind of connection a login arrives on.
type Kind int

const (
	// Mumble is a Mumble client over TLS; it may send a certificate.
	Mumble Kind = iota
	// Web is a browser on the web listener.
	Web
)

func (k Kind) String() string {
	if k == Web {
		return "web"
	}
	return "mumble"
}

// Request is what a client sent at login. Password must never be logged or
// kept beyond the call.
type Request struct {
	Name     string
	Password string
	CertHash string // lowercase hex SHA-1 of the client certificate, "" if none
	Kind     Kind
}

// Verdict is a provider's answer.
type Verdict int

const (
	// Unknown means the provider does not know the name: the next
	// provider, then the configured fall-through decides.
	Unknown Verdict = iota
	// Accept means the provider vouches for the person.
	Accept
	// Refuse means the provider knows the name and says no (a wrong
	// password, a locked account).
	Refuse
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Refuse:
		return "refuse"
	}
	return "unknown"
}

// Answer is a provider's verdict and, when it accepts, who the person is.
type Answer struct {
	Verdict Verdict
	// Reason is shown to a refused client; empty means a generic text.
	Reason string
	// Subject is the provider's stable id of the person (an LDAP
	// entryUUID, a membership number): the same person gets the same
	// Subject at every login, even after a rename. Required to accept.
	Subject string
	// DisplayName is the name the person appears under; empty keeps the
	// name they logged in with.
	DisplayName string
	// Groups are the Plenum groups the session gets.
	Groups []string
	// GroupSources names, for a Plenum group a provider mapped from its
	// own groups, the provider's group(s) it came from (for Explain:
	// "cn=delegates,ou=groups,dc=example,dc=org"); nil when the provider
	// gives Plenum groups directly.
	GroupSources map[string]string
	// Provider names the provider that answered ("ldap", "webhook",
	// "oidc"); Chain fills it in.
	Provider string
}

// Authenticator is one provider of identities. Authenticate must honour
// ctx (its deadline is the configured timeout) and return an error only
// when it could not reach a verdict: the provider is unreachable, times
// out, or answers nonsense. It is called concurrently.
type Authenticator interface {
	Authenticate(ctx context.Context, r Request) (Answer, error)
}

// ErrUnavailable marks errors that mean the provider could not be asked
// or did not answer in time. Providers wrap their errors with it.
var ErrUnavailable = errors.New("the sign-in provider is unavailable")

// Named is an Authenticator with the name Chain reports it under.
type Named struct {
	Name string
	Authenticator
}

// Chain asks providers in order: the first that accepts or refuses
// decides; Unknown passes to the next. An error also ends the walk, since
// the provider that failed might have known the name.
type Chain []Named

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, r Request) (Answer, error) {
	for _, p := range c {
		a, err := p.Authenticate(ctx, r)
		if err != nil {
			return Answer{Provider: p.Name}, err
		}
		if a.Verdict == Accept && a.Subject == "" {
			return Answer{Provider: p.Name}, errors.New(p.Name + ": accepted without a user id")
		}
		if a.Verdict != Unknown {
			a.Provider = p.Name
			return a, nil
		}
	}
	return Answer{Verdict: Unknown}, nil
}

// CleanGroups drops empty and duplicate group names and names Plenum's
// group specs could not express (they would be read as prefixes or
// built-in groups), keeping the order. Providers pass what they got
// through it, so a directory cannot smuggle "all" or "!x" into a session.
func CleanGroups(groups []string) []string {
	out := make([]string, 0, len(groups))
	seen := map[string]bool{}
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if !ValidGroupName(g) || seen[g] {
			continue
		}
		seen[g] = true
		out = append(out, g)
	}
	return out
}

// ValidGroupName reports whether g can be a sign-in group: not empty, not
// starting with one of the spec prefixes ! ~ # $, not a built-in group
// (all, none, auth, strong, in, out, sub...), at most 64 bytes, without
// control characters.
func ValidGroupName(g string) bool {
	if g == "" || len(g) > 64 || strings.ContainsAny(g[:1], "!~#$") {
		return false
	}
	switch g {
	case "all", "none", "auth", "strong", "in", "out", "sub":
		return false
	}
	if strings.HasPrefix(g, "sub,") {
		return false
	}
	for _, r := range g {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// WithTimeout bounds each question to a by d, so a provider that hangs
// costs a login d at most (and a chain the sum of its timeouts).
func WithTimeout(a Authenticator, d time.Duration) Authenticator {
	return timeoutAuth{a, d}
}

type timeoutAuth struct {
	Authenticator
	d time.Duration
}

func (t timeoutAuth) Authenticate(ctx context.Context, r Request) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	a, err := t.Authenticator.Authenticate(ctx, r)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: no answer within %v", ErrUnavailable, t.d)
	}
	return a, err
}
