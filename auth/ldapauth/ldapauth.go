// Package ldapauth signs people in against an organisation's directory
// (LDAP): it binds as the user, either with a DN made from a template or
// after finding their entry with a service account, reads their display
// name, a stable id and their groups, and maps the directory's groups to
// Plenum groups.
//
// Every step runs against the caller's deadline: the dial, each request
// (Conn.SetTimeout) and, should the directory stall mid-answer, the
// connection is closed when the context ends, so a dead or blackholed
// directory costs a login its timeout and never hangs it.
package ldapauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/conf"
)

// Defaults of the optional settings.
const (
	DefaultUserFilter  = "(uid={name})"
	DefaultIDAttribute = "entryUUID"
	DefaultMemberOf    = "memberOf"
	DefaultGroupFilter = "(|(member={dn})(uniqueMember={dn})(memberUid={name}))"
)

// maxGroups bounds the groups read for one person.
const maxGroups = 1000

// Config is what the directory is and how people are found in it; see
// conf.LDAP for the meaning of each field.
type Config struct {
	URL                  string
	StartTLS             bool
	RootCAs              *x509.CertPool // nil means the system's
	BindDNTemplate       string
	BindDN, BindPassword string
	BaseDN, UserFilter   string
	DisplayNameAttribute string
	IDAttribute          string
	MemberOfAttribute    string
	GroupBaseDN          string
	GroupFilter          string
	Groups               map[string]string
}

// FromConf converts [auth.ldap], reading its CA file.
func FromConf(l *conf.LDAP) (Config, error) {
	c := Config{
		URL: l.URL, StartTLS: l.StartTLS,
		BindDNTemplate: l.BindDNTemplate, BindDN: l.BindDN, BindPassword: l.BindPassword,
		BaseDN: l.BaseDN, UserFilter: l.UserFilter,
		DisplayNameAttribute: l.DisplayNameAttribute, IDAttribute: l.IDAttribute,
		MemberOfAttribute: l.MemberOfAttribute, GroupBaseDN: l.GroupBaseDN, GroupFilter: l.GroupFilter,
		Groups: l.Groups,
	}
	if l.CAFile != "" {
		pem, err := os.ReadFile(l.CAFile)
		if err != nil {
			return c, fmt.Errorf("ldap ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("ldap ca_file %s: no PEM certificate in it", l.CAFile)
		}
	}
	return c, nil
}

// Directory is the provider.
type Directory struct {
	c      Config
	host   string // for TLS server name checks
	groups []groupKey
}

// groupKey is one entry of Config.Groups: a directory group, by DN or by
// name (the value of its first RDN, usually cn).
type groupKey struct {
	dn     *ldap.DN // nil for a name
	name   string
	plenum string
}

// New checks c and returns the provider. It does not connect.
func New(c Config) (*Directory, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("ldap url %q: want ldap://host:port or ldaps://host:port", c.URL)
	}
	if c.BindDNTemplate == "" && c.BaseDN == "" {
		return nil, errors.New("ldap: set bind_dn_template or base_dn")
	}
	if c.UserFilter == "" {
		c.UserFilter = DefaultUserFilter
	}
	if c.IDAttribute == "" {
		c.IDAttribute = DefaultIDAttribute
	}
	if c.MemberOfAttribute == "" {
		c.MemberOfAttribute = DefaultMemberOf
	}
	if c.GroupFilter == "" {
		c.GroupFilter = DefaultGroupFilter
	}
	d := &Directory{c: c, host: u.Hostname()}
	for k, g := range c.Groups {
		key := groupKey{plenum: g}
		if strings.Contains(k, "=") {
			dn, err := ldap.ParseDN(k)
			if err != nil {
				return nil, fmt.Errorf("ldap groups: %q is not a DN: %w", k, err)
			}
			key.dn = dn
		} else {
			key.name = k
		}
		d.groups = append(d.groups, key)
	}
	// A fixed order, so a person's groups come in the same order each time.
	slices.SortFunc(d.groups, func(a, b groupKey) int { return strings.Compare(a.plenum+a.name, b.plenum+b.name) })
	return d, nil
}

// person is what the directory says about someone.
type person struct {
	dn          string
	displayName string
	id          string
	memberOf    []string
}

// Authenticate implements auth.Authenticator.
func (d *Directory) Authenticate(ctx context.Context, r auth.Request) (auth.Answer, error) {
	if r.Name == "" || len(r.Name) > 256 {
		return auth.Answer{Verdict: auth.Unknown}, nil
	}
	conn, err := d.dial(ctx)
	if err != nil {
		return auth.Answer{}, err
	}
	defer conn.Close()
	// Should the directory stall mid-answer past the deadline, closing
	// the connection ends every request on it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var p *person
	var verdict auth.Verdict
	if d.c.BindDNTemplate != "" {
		p, verdict, err = d.bindAsUser(conn, r)
	} else {
		p, verdict, err = d.searchThenBind(conn, r)
	}
	if err != nil {
		return auth.Answer{}, unavailable(ctx, err)
	}
	if verdict != auth.Accept {
		return auth.Answer{Verdict: verdict}, nil
	}
	groups, sources, err := d.groupsOf(conn, p, r.Name)
	if err != nil {
		return auth.Answer{}, unavailable(ctx, err)
	}
	return auth.Answer{Verdict: auth.Accept, Subject: p.id, DisplayName: p.displayName, Groups: groups, GroupSources: sources}, nil
}

// unavailable marks err as the directory's failure, saying so plainly
// when it was the deadline.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: the directory did not answer in time: %w", auth.ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
}

// dial connects (and upgrades with StartTLS) within ctx's deadline, and
// makes every request on the connection time out with it.
func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(conf.DefaultAuthTimeout)
	}
	tlsConf := &tls.Config{ServerName: d.host, RootCAs: d.c.RootCAs, MinVersion: tls.VersionTLS12}
	conn, err := ldap.DialURL(d.c.URL,
		ldap.DialWithDialer(&net.Dialer{Deadline: deadline}),
		ldap.DialWithTLSConfig(tlsConf))
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	conn.SetTimeout(time.Until(deadline))
	if d.c.StartTLS {
		if err := conn.StartTLS(tlsConf); err != nil {
			conn.Close()
			return nil, unavailable(ctx, fmt.Errorf("StartTLS: %w", err))
		}
	}
	return conn, nil
}

// bindAsUser binds with the DN the template makes of the name, then
// reads the user's own entry. A directory answers a bind with an unknown
// DN as with a wrong password, so in this mode every name is the
// directory's: a failed bind refuses.
func (d *Directory) bindAsUser(conn *ldap.Conn, r auth.Request) (*person, auth.Verdict, error) {
	if r.Password == "" {
		return nil, auth.Refuse, nil // an empty password would be an anonymous bind
	}
	dn := strings.ReplaceAll(d.c.BindDNTemplate, "{name}", ldap.EscapeDN(r.Name))
	if err := conn.Bind(dn, r.Password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, auth.Refuse, nil
		}
		return nil, 0, fmt.Errorf("bind: %w", err)
	}
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", d.attributes(), nil))
	if err != nil || len(res.Entries) != 1 {
		return nil, 0, fmt.Errorf("reading the user's own entry: %w", orNoEntry(err))
	}
	return d.personOf(res.Entries[0]), auth.Accept, nil
}

// searchThenBind finds the entry with the service account (or
// anonymously), then binds as it with the password.
func (d *Directory) searchThenBind(conn *ldap.Conn, r auth.Request) (*person, auth.Verdict, error) {
	if d.c.BindDN != "" {
		if err := conn.Bind(d.c.BindDN, d.c.BindPassword); err != nil {
			return nil, 0, fmt.Errorf("service account bind: %w", err)
		}
	}
	filter := strings.ReplaceAll(d.c.UserFilter, "{name}", ldap.EscapeFilter(r.Name))
	res, err := conn.Search(ldap.NewSearchRequest(d.c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, d.attributes(), nil))
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil, auth.Refuse, nil // the name is ambiguous: nobody in particular
		}
		return nil, 0, fmt.Errorf("finding the user: %w", err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, auth.Unknown, nil
	case 1:
	default:
		return nil, auth.Refuse, nil
	}
	p := d.personOf(res.Entries[0])
	if r.Password == "" {
		return nil, auth.Refuse, nil // the directory's name, without its password
	}
	if err := conn.Bind(p.dn, r.Password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, auth.Refuse, nil
		}
		return nil, 0, fmt.Errorf("bind: %w", err)
	}
	if d.c.BindDN != "" && d.c.GroupBaseDN != "" {
		// Groups are read as the service account, like the user was.
		if err := conn.Bind(d.c.BindDN, d.c.BindPassword); err != nil {
			return nil, 0, fmt.Errorf("service account bind: %w", err)
		}
	}
	return p, auth.Accept, nil
}

func orNoEntry(err error) error {
	if err == nil {
		return errors.New("no entry")
	}
	return err
}

func (d *Directory) attributes() []string {
	attrs := []string{d.c.IDAttribute, d.c.MemberOfAttribute}
	if d.c.DisplayNameAttribute != "" {
		attrs = append(attrs, d.c.DisplayNameAttribute)
	}
	return attrs
}

// personOf reads an entry. The stable id is the configured attribute
// (entryUUID: it survives renames and moves), else a hash of the DN.
func (d *Directory) personOf(e *ldap.Entry) *person {
	p := &person{dn: e.DN, memberOf: e.GetAttributeValues(d.c.MemberOfAttribute)}
	if d.c.DisplayNameAttribute != "" {
		p.displayName = e.GetAttributeValue(d.c.DisplayNameAttribute)
	}
	if id := e.GetAttributeValue(d.c.IDAttribute); id != "" {
		p.id = strings.ToLower(d.c.IDAttribute) + ":" + id
	} else {
		p.id = "dn-sha256:" + dnHash(e.DN)
	}
	return p
}

// dnHash hashes the DN in a normal form (attribute types and values
// folded to lower case, no spaces around separators), so that the same
// entry spelled differently gets the same id.
func dnHash(dn string) string {
	norm := strings.ToLower(dn)
	if parsed, err := ldap.ParseDN(dn); err == nil {
		var rdns []string
		for _, rdn := range parsed.RDNs {
			var parts []string
			for _, a := range rdn.Attributes {
				parts = append(parts, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
			}
			rdns = append(rdns, strings.Join(parts, "+"))
		}
		norm = strings.Join(rdns, ",")
	}
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:16])
}

// dirGroup is a directory group the person is in: its DN (nil if it did
// not parse) and its names (cn values and its first RDN's values).
type dirGroup struct {
	raw   string // as the directory wrote it
	dn    *ldap.DN
	names []string
}

// groupsOf finds the person's directory groups (memberOf, or a search
// under GroupBaseDN) and maps them to Plenum groups.
func (d *Directory) groupsOf(conn *ldap.Conn, p *person, name string) ([]string, map[string]string, error) {
	if d.c.GroupBaseDN == "" {
		groups, sources := d.mapGroups(memberOfGroups(p.memberOf))
		return groups, sources, nil
	}
	filter := strings.NewReplacer("{dn}", ldap.EscapeFilter(p.dn), "{name}", ldap.EscapeFilter(name)).Replace(d.c.GroupFilter)
	res, err := conn.Search(ldap.NewSearchRequest(d.c.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, maxGroups, 0, false,
		filter, []string{"cn"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return nil, nil, fmt.Errorf("finding the user's groups: %w", err)
	}
	var found []dirGroup
	if res != nil {
		for _, e := range res.Entries {
			g := dirGroup{raw: e.DN, names: e.GetAttributeValues("cn")}
			if dn, err := ldap.ParseDN(e.DN); err == nil {
				g.dn = dn
				g.names = append(g.names, firstRDNValues(dn)...)
			}
			found = append(found, g)
		}
	}
	groups, sources := d.mapGroups(found)
	return groups, sources, nil
}

// memberOfGroups reads the DNs of a memberOf attribute; values that are
// no DN are skipped.
func memberOfGroups(values []string) []dirGroup {
	var out []dirGroup
	for _, v := range values {
		if len(out) == maxGroups {
			break
		}
		if dn, err := ldap.ParseDN(v); err == nil {
			out = append(out, dirGroup{raw: v, dn: dn, names: firstRDNValues(dn)})
		}
	}
	return out
}

// mapGroups maps directory groups to the Plenum groups Config.Groups
// names for them, and says which directory groups gave each.
func (d *Directory) mapGroups(found []dirGroup) ([]string, map[string]string) {
	var out []string
	sources := map[string]string{}
	for _, g := range found {
		for _, k := range d.groups {
			if (k.dn != nil && g.dn != nil && k.dn.EqualFold(g.dn)) || (k.dn == nil && containsFold(g.names, k.name)) {
				out = append(out, k.plenum)
				if prev := sources[k.plenum]; prev == "" {
					sources[k.plenum] = g.raw
				} else if !strings.Contains(prev, g.raw) {
					sources[k.plenum] = prev + "; " + g.raw
				}
			}
		}
	}
	out = auth.CleanGroups(out)
	for g := range sources {
		if !slices.Contains(out, g) {
			delete(sources, g)
		}
	}
	if len(sources) == 0 {
		sources = nil
	}
	return out, sources
}

func firstRDNValues(dn *ldap.DN) []string {
	if len(dn.RDNs) == 0 {
		return nil
	}
	var out []string
	for _, a := range dn.RDNs[0].Attributes {
		out = append(out, a.Value)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
