package conf

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Auth is the [auth] table: sign-in with an organisation's own accounts
// (docs/AUTH.md). Each provider that is configured is asked in the order
// oidc (its one-time codes), webhook, ldap; the first that knows the name
// decides.
type Auth struct {
	// Unknown is what happens to a name no provider knows: "local" (the
	// default) goes on as without [auth] (registered users, the server
	// password, unregistered guests); "refuse" refuses it.
	Unknown string `toml:"unknown"`
	// Unavailable is what happens when a provider cannot be reached or
	// does not answer within its timeout: "refuse" (the default) or
	// "guest", which goes on as for an unknown name with "local".
	Unavailable string `toml:"unavailable"`

	Webhook *Webhook `toml:"webhook"`
	LDAP    *LDAP    `toml:"ldap"`
	OIDC    *OIDC    `toml:"oidc"`
}

// Defaults of the [auth] providers.
const (
	DefaultAuthTimeout  = 5 * time.Second
	DefaultAuthCacheTTL = 5 * time.Minute
	DefaultOIDCCodeTTL  = 10 * time.Minute
)

// Fall-through choices.
const (
	AuthLocal  = "local"
	AuthRefuse = "refuse"
	AuthGuest  = "guest"
)

// OIDCOrNil is [auth.oidc], nil when a is nil or has none.
func (a *Auth) OIDCOrNil() *OIDC {
	if a == nil {
		return nil
	}
	return a.OIDC
}

// UnknownChoice is Unknown with its default.
func (a *Auth) UnknownChoice() string {
	if a == nil || a.Unknown == "" {
		return AuthLocal
	}
	return a.Unknown
}

// UnavailableChoice is Unavailable with its default.
func (a *Auth) UnavailableChoice() string {
	if a == nil || a.Unavailable == "" {
		return AuthRefuse
	}
	return a.Unavailable
}

// Webhook is [auth.webhook]: Plenum POSTs the login as JSON to URL and
// reads the verdict (the contract is in docs/AUTH.md).
type Webhook struct {
	URL string `toml:"url"`
	// BearerToken, when set, is sent as "Authorization: Bearer ..." so
	// that the endpoint knows the request is Plenum's.
	BearerToken string    `toml:"bearer_token"`
	Timeout     Duration  `toml:"timeout"`   // default 5s
	CacheTTL    *Duration `toml:"cache_ttl"` // positive answers are kept this long; default 5m; "0s" keeps none
}

// LDAP is [auth.ldap]: bind as the user, either directly with a DN made
// from BindDNTemplate, or after finding the user's entry with a service
// account (BindDN, BindPassword) under BaseDN with UserFilter.
type LDAP struct {
	URL      string `toml:"url"`       // ldap://host:389 or ldaps://host:636
	StartTLS bool   `toml:"start_tls"` // upgrade an ldap:// connection with StartTLS
	CAFile   string `toml:"ca_file"`   // PEM CAs for ldaps or StartTLS; empty means the system's

	// BindDNTemplate, e.g. "uid={name},ou=people,dc=example,dc=org":
	// {name} is the login name, escaped for a DN.
	BindDNTemplate string `toml:"bind_dn_template"`

	// The search: a service account, where users are and how a name is
	// found ({name} is escaped for a filter); default "(uid={name})".
	BindDN       string `toml:"bind_dn"`
	BindPassword string `toml:"bind_password"`
	BaseDN       string `toml:"base_dn"`
	UserFilter   string `toml:"user_filter"`

	// DisplayNameAttribute is where the display name comes from (e.g.
	// "displayName" or "cn"); empty keeps the login name.
	DisplayNameAttribute string `toml:"display_name_attribute"`
	// IDAttribute is the stable id of an entry; default "entryUUID".
	// When the entry has none, a hash of its DN is used (docs/AUTH.md).
	IDAttribute string `toml:"id_attribute"`

	// Groups: the user's groups are read from MemberOfAttribute of the
	// user's entry (default "memberOf"), or, when GroupBaseDN is set, by
	// searching there with GroupFilter (default
	// "(|(member={dn})(uniqueMember={dn})(memberUid={name}))").
	MemberOfAttribute string `toml:"member_of_attribute"`
	GroupBaseDN       string `toml:"group_base_dn"`
	GroupFilter       string `toml:"group_filter"`
	// Groups maps directory groups (by DN, or by the value of their cn)
	// to Plenum groups; groups not listed are ignored.
	Groups map[string]string `toml:"groups"`

	Timeout  Duration  `toml:"timeout"`   // for the whole sign-in; default 5s
	CacheTTL *Duration `toml:"cache_ttl"` // default 5m; "0s" keeps none
}

// OIDC is [auth.oidc]: a sign-in link on the web listener that logs the
// person in with an OpenID Connect provider, then gives them a one-time
// code for their Mumble client.
type OIDC struct {
	Issuer       string `toml:"issuer"`
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"`
	// RedirectURL is this server's callback as registered with the
	// provider: the web listener's address followed by /auth/oidc/callback.
	RedirectURL string   `toml:"redirect_url"`
	Scopes      []string `toml:"scopes"` // beyond "openid"; default ["profile"]
	// NameClaim is the claim the Mumble name comes from; default
	// "preferred_username".
	NameClaim string `toml:"name_claim"`
	// GroupsClaim holds the provider's groups; default "groups".
	GroupsClaim string `toml:"groups_claim"`
	// Groups maps the provider's groups to Plenum groups; groups not
	// listed are ignored.
	Groups map[string]string `toml:"groups"`
	// MumbleHost is the host (and port) the mumble:// link points at;
	// default the host of RedirectURL with the default Mumble port.
	MumbleHost string   `toml:"mumble_host"`
	CodeTTL    Duration `toml:"code_ttl"` // how long a one-time code may wait to be used; default 10m
}

// durationOr is d, or def when d was not set (zero).
func durationOr(d Duration, def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

// TimeoutOrDefault is the webhook's timeout.
func (w *Webhook) TimeoutOrDefault() time.Duration { return durationOr(w.Timeout, DefaultAuthTimeout) }

// CacheTTLOrDefault is the webhook's cache time; an explicit zero keeps none.
func (w *Webhook) CacheTTLOrDefault() time.Duration { return cacheTTL(w.CacheTTL) }

// CacheTTLOrDefault is the directory's cache time; an explicit zero keeps none.
func (l *LDAP) CacheTTLOrDefault() time.Duration { return cacheTTL(l.CacheTTL) }

// TimeoutOrDefault is the directory's timeout.
func (l *LDAP) TimeoutOrDefault() time.Duration { return durationOr(l.Timeout, DefaultAuthTimeout) }

// CodeTTLOrDefault is how long a one-time code lives.
func (o *OIDC) CodeTTLOrDefault() time.Duration { return durationOr(o.CodeTTL, DefaultOIDCCodeTTL) }

func cacheTTL(d *Duration) time.Duration {
	if d == nil {
		return DefaultAuthCacheTTL
	}
	return d.Duration
}

// validateAuth checks the [auth] table.
func (v *validator) auth() {
	a := v.c.Auth
	if a == nil {
		return
	}
	bad := func(key, format string, args ...any) {
		line, ok := v.c.authLines[key]
		if !ok {
			table, _, _ := strings.Cut(key, ".")
			line = v.c.authLines[table]
		}
		v.errs = append(v.errs, &Error{File: v.c.File, Line: line, Key: "auth." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if a.Unknown != "" && a.Unknown != AuthLocal && a.Unknown != AuthRefuse {
		bad("unknown", "want %q or %q, got %q", AuthLocal, AuthRefuse, a.Unknown)
	}
	if a.Unavailable != "" && a.Unavailable != AuthRefuse && a.Unavailable != AuthGuest {
		bad("unavailable", "want %q or %q, got %q", AuthRefuse, AuthGuest, a.Unavailable)
	}
	negative := func(key string, d *Duration) {
		if d != nil && d.Duration < 0 {
			bad(key, "must not be negative")
		}
	}
	if w := a.Webhook; w != nil {
		checkURL(bad, "webhook.url", w.URL, "http", "https")
		negative("webhook.timeout", &w.Timeout)
		negative("webhook.cache_ttl", w.CacheTTL)
	}
	if l := a.LDAP; l != nil {
		checkURL(bad, "ldap.url", l.URL, "ldap", "ldaps")
		switch {
		case l.BindDNTemplate == "" && l.BaseDN == "":
			bad("ldap", "set bind_dn_template (bind as the user) or base_dn (search, then bind)")
		case l.BindDNTemplate != "" && !strings.Contains(l.BindDNTemplate, "{name}"):
			bad("ldap.bind_dn_template", "must contain {name}")
		case l.UserFilter != "" && !strings.Contains(l.UserFilter, "{name}"):
			bad("ldap.user_filter", "must contain {name}")
		}
		if (l.BindDN == "") != (l.BindPassword == "") {
			bad("ldap.bind_dn", "bind_dn and bind_password go together")
		}
		if l.StartTLS && strings.HasPrefix(l.URL, "ldaps:") {
			bad("ldap.start_tls", "ldaps:// is TLS already")
		}
		v.groupMap("ldap.groups", l.Groups, bad)
		negative("ldap.timeout", &l.Timeout)
		negative("ldap.cache_ttl", l.CacheTTL)
	}
	if o := a.OIDC; o != nil {
		checkURL(bad, "oidc.issuer", o.Issuer, "http", "https")
		checkURL(bad, "oidc.redirect_url", o.RedirectURL, "http", "https")
		if u, err := url.Parse(o.RedirectURL); err == nil && u.Host != "" && u.Path != "/auth/oidc/callback" {
			bad("oidc.redirect_url", "must end in /auth/oidc/callback (the web listener's callback), got %q", o.RedirectURL)
		}
		if o.ClientID == "" {
			bad("oidc.client_id", "required")
		}
		v.groupMap("oidc.groups", o.Groups, bad)
		negative("oidc.code_ttl", &o.CodeTTL)
	}
}

func checkURL(bad func(string, string, ...any), key, s string, schemes ...string) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		bad(key, "required")
	case err != nil:
		bad(key, "%v", err)
	case u.Host == "":
		bad(key, "want %s://host..., got %q", schemes[0], s)
	default:
		for _, sc := range schemes {
			if u.Scheme == sc {
				return
			}
		}
		bad(key, "want a %s URL, got %q", strings.Join(schemes, " or "), s)
	}
}

// groupMap checks that every Plenum group a map names could be used in an
// ACL's group spec as a plain group.
func (v *validator) groupMap(key string, m map[string]string, bad func(string, string, ...any)) {
	for _, k := range sortedKeys(m) {
		g := m[k]
		if g == "" || strings.ContainsAny(g[:1], "!~#$") || builtinGroup(g) {
			bad(key, "%q maps to %q, which is not a name a channel group can have", k, g)
		}
	}
}

func builtinGroup(g string) bool {
	switch g {
	case "all", "none", "auth", "strong", "in", "out", "sub":
		return true
	}
	return strings.HasPrefix(g, "sub,")
}

// attachAuthLines records the lines of the [auth] keys, by their path
// below [auth] ("unavailable", "ldap.url"; a table by its own path).
func (c *Config) attachAuthLines(pos positions) {
	c.authLines = map[string]int{}
	for _, sub := range []string{"", "webhook", "ldap", "oidc", "ldap.groups", "oidc.groups"} {
		path := pathKey(append([]string{"auth"}, strings.Split(sub, ".")...)...)
		prefix := sub + "."
		if sub == "" {
			path, prefix = pathKey("auth"), ""
		}
		if l := pos.line(path); l > 0 {
			c.authLines[sub] = l
		}
		for k, l := range pos.keysUnder(path) {
			c.authLines[prefix+k] = l
		}
	}
}

// writeAuth writes the [auth] tables back, with the keys that are set.
func (w *tomlWriter) auth(a *Auth) {
	if a == nil {
		return
	}
	w.table("auth", reflect.ValueOf(a).Elem())
}

// table writes [name] with the struct's set keys, then its sub-tables.
func (w *tomlWriter) table(name string, v reflect.Value) {
	w.printf("\n[%s]\n", name)
	t := v.Type()
	var subs []func()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || key == "" || key == "-" {
			continue
		}
		fv := v.Field(i)
		switch {
		case fv.Type() == reflect.TypeFor[*Duration]():
			if !fv.IsNil() {
				w.key("", key, scalar(fv.Elem()))
			}
		case fv.Kind() == reflect.Pointer:
			if !fv.IsNil() {
				subs = append(subs, func() { w.table(name+"."+key, fv.Elem()) })
			}
		case fv.Kind() == reflect.Map:
			if fv.Len() > 0 {
				m := fv.Interface().(map[string]string)
				subs = append(subs, func() {
					w.printf("\n[%s.%s]\n", name, key)
					keys := make([]string, 0, len(m))
					for k := range m {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						w.key("", k, tomlString(m[k]))
					}
				})
			}
		case fv.Kind() == reflect.Slice:
			w.strings("", key, fv.Interface().([]string))
		case !fv.IsZero():
			w.key("", key, scalar(fv))
		}
	}
	for _, s := range subs {
		s()
	}
}
