// Package providers builds the sign-in providers an [auth] table
// configures (the single sign-on's codes, webhook, ldap), each with its
// timeout and cache, in the order they are asked. The server and `plenum acl explain -signin`
// use it, so both ask the same providers the same way.
package providers

import (
	"time"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/auth/ldapauth"
	"github.com/plenum-voice/plenum/auth/webhook"
	"github.com/plenum-voice/plenum/conf"
)

// Built is the providers of an [auth] table.
type Built struct {
	Chain   auth.Chain    // nil when none is configured
	Timeout time.Duration // the sum of their timeouts: a login waits at most this
}

// Build makes the providers a configures. codes, when not nil, is asked
// as "oidc" when [auth.oidc] is configured (the single sign-on's codes,
// which live in the server's memory).
func Build(a *conf.Auth, codes auth.Authenticator) (Built, error) {
	var b Built
	if a == nil {
		return b, nil
	}
	add := func(name string, p auth.Authenticator, timeout, ttl time.Duration) {
		b.Chain = append(b.Chain, auth.Named{Name: name, Authenticator: auth.NewCache(auth.WithTimeout(p, timeout), ttl)})
		b.Timeout += timeout
	}
	if a.OIDC != nil && codes != nil {
		// First: a code is recognised by its prefix and must never be
		// sent to a webhook or tried as someone's directory password. The
		// codes are in memory and each is used once: no cache.
		add("oidc", codes, time.Second, 0)
	}
	if w := a.Webhook; w != nil {
		add("webhook", webhook.New(w.URL, w.BearerToken), w.TimeoutOrDefault(), w.CacheTTLOrDefault())
	}
	if l := a.LDAP; l != nil {
		c, err := ldapauth.FromConf(l)
		if err != nil {
			return b, err
		}
		d, err := ldapauth.New(c)
		if err != nil {
			return b, err
		}
		add("ldap", d, l.TimeoutOrDefault(), l.CacheTTLOrDefault())
	}
	return b, nil
}
