package conf

import (
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
)

// ACMEDomains returns the names of acme_domain, in lower case and in the
// order written: the first is the one served to clients that name no
// host (Mumble clients connecting by address). None means ACME is off.
func (s *Server) ACMEDomains() []string {
	var names []string
	for _, f := range strings.FieldsFunc(s.ACMEDomain, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		names = append(names, strings.TrimSuffix(strings.ToLower(f), "."))
	}
	return names
}

// acme checks the ACME keys: names a public CA can issue for by the
// TLS-ALPN-01 challenge, not together with a certificate file.
func (v *validator) acme() {
	s := &v.c.Server
	names := s.ACMEDomains()
	if len(names) == 0 {
		return
	}
	if s.Certificate != "" || s.Key != "" {
		v.serverErr("acme_domain", "acme_domain and certificate/key are both set; use either a certificate file or ACME, not both")
	}
	seen := map[string]bool{}
	for i, n := range names {
		if err := checkACMEName(n); err != nil {
			v.serverErr("acme_domain", "name %d: %v", i+1, err)
		} else if seen[n] {
			v.serverErr("acme_domain", "name %d: %q is given twice", i+1, n)
		}
		seen[n] = true
	}
	if s.ACMEEmail != "" {
		if a, err := mail.ParseAddress(s.ACMEEmail); err != nil || a.Name != "" || a.Address != s.ACMEEmail {
			v.serverErr("acme_email", "%q is not a plain e-mail address (e.g. \"admin@example.org\")", s.ACMEEmail)
		}
	}
	if u, err := url.Parse(s.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.serverErr("acme_directory", "%q is not an https:// URL (Let's Encrypt's is %q)", s.ACMEDirectory, DefaultACMEDirectory)
	}
}

// checkACMEName accepts a DNS name a CA can validate over TLS-ALPN-01:
// at least two labels, no address, no wildcard, ASCII (Punycode for
// international names).
func checkACMEName(n string) error {
	switch {
	case strings.HasPrefix(n, "*."):
		return fmt.Errorf("%q: wildcard names need the DNS-01 challenge, which Plenum does not do; name each host", n)
	case strings.ContainsAny(n, ":/"):
		return fmt.Errorf("%q is not a host name (no scheme, port or path: e.g. \"voice.example.org\")", n)
	}
	if _, err := netip.ParseAddr(n); err == nil {
		return fmt.Errorf("%q is an IP address; ACME needs a DNS name that points at this server", n)
	}
	if !strings.Contains(n, ".") {
		return fmt.Errorf("%q is not a fully qualified name (e.g. \"voice.example.org\")", n)
	}
	if len(n) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", n)
	}
	for label := range strings.SplitSeq(n, ".") {
		if !acmeLabel(label) {
			return fmt.Errorf("%q is not a valid DNS name (letters, digits and '-', Punycode \"xn--\" for other letters)", n)
		}
	}
	return nil
}

// acmeLabel reports whether l is a DNS label as public CAs accept it
// (no underscore, unlike the internal names admin_hosts allows).
func acmeLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
