package server

// The "strong" group. Murmur 1.5 marks every connection as verified and
// takes the mark away only when Qt reports that the client's certificate
// does not verify (Server::sslError: self-signed, unknown issuer, expired,
// not yet valid...). A client without a certificate raises no such error,
// so it is strong; the self-signed certificate every Mumble client makes
// for itself is not. The certificate is checked against the system's
// trusted CAs, to which Murmur adds the server's own certificate (as a
// root) and the intermediates of its chain; its key usage is not checked
// (Murmur lets InvalidPurpose pass).

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// trustStore is what client certificates are verified against, built for
// one server certificate.
type trustStore struct {
	cert          *tls.Certificate // the server certificate it was built for
	roots         *x509.CertPool
	intermediates []*x509.Certificate // of the server's chain
}

// newTrustStore adds the server's certificate chain to base (cloned; nil
// means the system's CAs): its leaf as a root, the rest as intermediates.
func newTrustStore(base *x509.CertPool, cert *tls.Certificate) *trustStore {
	var roots *x509.CertPool
	if base != nil {
		roots = base.Clone()
	} else if sys, err := x509.SystemCertPool(); err == nil {
		roots = sys
	} else {
		roots = x509.NewCertPool() // no system store: only the server's own chain
	}
	ts := &trustStore{cert: cert, roots: roots}
	for i, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue // tls.X509KeyPair parsed the leaf; an odd extra is skipped
		}
		if i == 0 {
			roots.AddCert(c)
		} else {
			ts.intermediates = append(ts.intermediates, c)
		}
	}
	return ts
}

// verifies reports whether chain (leaf first, as the client sent it)
// verifies at now.
func (ts *trustStore) verifies(chain []*x509.Certificate, now time.Time) bool {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, c := range ts.intermediates {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         ts.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}

// strongCertificate reports whether a client with this certificate chain
// is in the "strong" group (Murmur's bVerified): true without a
// certificate, else whether it verifies.
func (s *Server) strongCertificate(chain []*x509.Certificate) bool {
	if len(chain) == 0 {
		return true
	}
	cert := s.cert.Load()
	ts := s.trust.Load()
	if ts == nil || ts.cert != cert {
		ts = newTrustStore(s.trustedRoots, cert)
		s.trust.Store(ts) // a race with a reload only builds it twice
	}
	return ts.verifies(chain, time.Now())
}
