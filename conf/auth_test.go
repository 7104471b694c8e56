package conf

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const authExample = `
[server]
listen = ":64738"

[auth]
unknown = "refuse"
unavailable = "guest"

[auth.webhook]
url = "https://members.example.org/plenum/auth"
bearer_token = "s3cret"
timeout = "3s"
cache_ttl = "0s"

[auth.ldap]
url = "ldap://127.0.0.1:389"
bind_dn_template = "uid={name},ou=people,dc=example,dc=org"
display_name_attribute = "cn"

[auth.ldap.groups]
"cn=delegates,ou=groups,dc=example,dc=org" = "delegates"
board = "presidium"

[auth.oidc]
issuer = "https://sso.example.org"
client_id = "plenum"
redirect_url = "https://plenum.example.org/auth/oidc/callback"
scopes = ["profile", "groups"]

[auth.oidc.groups]
"/delegates" = "delegates"
`

func TestAuthRoundTrip(t *testing.T) {
	c, err := Parse([]byte(authExample), "auth.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Auth
	if a.UnknownChoice() != AuthRefuse || a.UnavailableChoice() != AuthGuest {
		t.Errorf("choices %q %q", a.UnknownChoice(), a.UnavailableChoice())
	}
	if a.Webhook.TimeoutOrDefault() != 3*time.Second || a.Webhook.CacheTTLOrDefault() != 0 {
		t.Errorf("webhook times %v %v", a.Webhook.TimeoutOrDefault(), a.Webhook.CacheTTLOrDefault())
	}
	if a.LDAP.CacheTTLOrDefault() != DefaultAuthCacheTTL || a.LDAP.TimeoutOrDefault() != DefaultAuthTimeout {
		t.Errorf("ldap defaults %v %v", a.LDAP.CacheTTLOrDefault(), a.LDAP.TimeoutOrDefault())
	}
	if a.LDAP.Groups["board"] != "presidium" || len(a.LDAP.Groups) != 2 {
		t.Errorf("ldap groups %v", a.LDAP.Groups)
	}
	out, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "auth.toml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back.Auth, c.Auth) {
		t.Errorf("round trip changed [auth]:\n%s", out)
	}
	if (&Auth{}).UnknownChoice() != AuthLocal || (*Auth)(nil).UnavailableChoice() != AuthRefuse {
		t.Error("defaults of the choices")
	}
}

func TestAuthValidation(t *testing.T) {
	cases := []struct{ toml, want string }{
		{"[auth]\nunknown = \"maybe\"\n", `auth.toml:2: auth.unknown: want "local" or "refuse"`},
		{"[auth]\nunavailable = \"local\"\n", `auth.toml:2: auth.unavailable: want "refuse" or "guest"`},
		{"[auth.webhook]\nurl = \"ftp://x\"\n", `auth.toml:2: auth.webhook.url: want a http or https URL`},
		{"[auth.webhook]\nurl = \"http://x\"\ntimeout = \"-1s\"\n", `auth.toml:3: auth.webhook.timeout: must not be negative`},
		{"[auth.ldap]\nurl = \"ldap://x\"\n", `auth.toml:1: auth.ldap: set bind_dn_template`},
		{"[auth.ldap]\nurl = \"ldap://x\"\nbind_dn_template = \"uid=x\"\n", `auth.toml:3: auth.ldap.bind_dn_template: must contain {name}`},
		{"[auth.ldap]\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=svc\"\n", `auth.ldap.bind_dn: bind_dn and bind_password go together`},
		{"[auth.ldap]\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\n[auth.ldap.groups]\nx = \"all\"\n", `auth.ldap.groups: "x" maps to "all"`},
		{"[auth.oidc]\nissuer = \"https://sso\"\nredirect_url = \"https://p/cb\"\n", `auth.oidc.client_id: required`},
		{"[auth]\nbogus = 1\n", `auth.bogus: unknown key`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.toml), "auth.toml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.toml, err, c.want)
		}
	}
}

// everyAuthField sets every [auth] key, for the round trip of everyField.
func everyAuthField() *Auth {
	d := func(x time.Duration) *Duration { return &Duration{x} }
	return &Auth{
		Unknown: AuthRefuse, Unavailable: AuthGuest,
		Webhook: &Webhook{URL: "https://members.example.org/auth", BearerToken: "t\"ok", Timeout: Duration{2 * time.Second}, CacheTTL: d(0)},
		LDAP: &LDAP{
			URL: "ldap://127.0.0.1:3389", StartTLS: true, CAFile: "/etc/ssl/ca.pem",
			BindDNTemplate: "uid={name},ou=people,dc=example,dc=org",
			BindDN:         "cn=plenum,dc=example,dc=org", BindPassword: "pw", BaseDN: "dc=example,dc=org", UserFilter: "(mail={name})",
			DisplayNameAttribute: "displayName", IDAttribute: "employeeNumber", MemberOfAttribute: "isMemberOf",
			GroupBaseDN: "ou=groups,dc=example,dc=org", GroupFilter: "(member={dn})",
			Groups:  map[string]string{"cn=delegates,ou=groups,dc=example,dc=org": "delegates", "board": "presidium"},
			Timeout: Duration{3 * time.Second}, CacheTTL: d(time.Minute),
		},
		OIDC: &OIDC{
			Issuer: "https://sso.example.org/realms/x", ClientID: "plenum", ClientSecret: "cs",
			RedirectURL: "https://plenum.example.org/auth/oidc/callback", Scopes: []string{"profile", "groups"},
			NameClaim: "name", GroupsClaim: "roles", Groups: map[string]string{"/delegates": "delegates"},
			MumbleHost: "plenum.example.org:64738", CodeTTL: Duration{time.Minute},
		},
	}
}
